"""The built-in simulated tenant of `--demo`: realistic, slowly drifting numbers, no network at all.

It simulates the modern report's records (with no personal data) and sums them with the same Tally
as the real `details` source, so the demo exercises the same snapshot -> collector -> HTTP path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from exporter.snapshot import Report
from exporter.sources.details import Tally

_METHODS_BY_STRENGTH = (
    ("email",),
    ("mobilePhone", "email"),
    ("microsoftAuthenticatorPush", "softwareOneTimePasscode"),
    ("microsoftAuthenticatorPush", "mobilePhone", "windowsHelloForBusiness"),
    ("fido2", "microsoftAuthenticatorPasswordless", "windowsHelloForBusiness"),
)


@dataclass
class _User:
    user_type: str
    admin: bool | None
    mfa: bool
    sspr: bool
    methods: tuple[str, ...]

    def record(self) -> dict[str, Any]:
        strong = len(self.methods) > 2
        return {
            "userType": self.user_type,
            "isAdmin": self.admin,
            "isSsprRegistered": self.sspr,
            "isSsprEnabled": self.user_type == "member",
            "isSsprCapable": self.sspr and self.user_type == "member",
            "isMfaRegistered": self.mfa,
            "isMfaCapable": self.mfa,
            "isPasswordlessCapable": "fido2" in self.methods or (strong and "windowsHelloForBusiness" in self.methods),
            "methodsRegistered": list(self.methods),
        }


class DemoSource:
    """A tenant of about 4,800 users (a few hundred guests, a few dozen admins) slowly rolling out MFA."""

    name = "demo"

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._users = [self._new_user() for _ in range(4812)]

    def _new_user(self) -> _User:
        rng = self._rng
        user_type = "guest" if rng.random() < 0.08 else "member"
        admin = None if rng.random() < 0.01 else (user_type == "member" and rng.random() < 0.008)
        mfa = rng.random() < (0.93 if admin else 0.74)
        methods = rng.choice(_METHODS_BY_STRENGTH[2:] if mfa else _METHODS_BY_STRENGTH[:2])
        return _User(user_type, admin, mfa, sspr=mfa or rng.random() < 0.4, methods=methods)

    def fetch(self, deadline: float) -> Report:
        rng = self._rng
        # The rollout: a few users register MFA each poll; people join and leave; now and then a reset.
        for user in rng.sample(self._users, 6):
            user.mfa, user.sspr = True, True
            user.methods = rng.choice(_METHODS_BY_STRENGTH[2:])
        for _ in range(rng.randint(0, 3)):
            self._users.pop(rng.randrange(len(self._users)))
        self._users.extend(self._new_user() for _ in range(rng.randint(0, 3)))
        if rng.random() < 0.2:
            rng.choice(self._users).mfa = False
        tally = Tally()
        tally.add(user.record() for user in self._users)
        return tally.report(self.name)
