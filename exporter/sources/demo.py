"""The built-in simulated tenant of `--demo`: realistic, slowly drifting numbers, no network at all.

It simulates the modern report's records (with no personal data) and sums them with the same Tally
as the real `details` source, so the demo exercises the same snapshot -> collector -> HTTP path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from exporter.snapshot import Report
from exporter.sources.details import Tally
from exporter.sources.records import Record

# Weakest first; the first two are not MFA. Grades none, phone, app, passwordless, phishing_resistant,
# phishing_resistant.
_METHODS_BY_STRENGTH = (
    ("email",),
    ("mobilePhone", "email"),
    ("microsoftAuthenticatorPush", "softwareOneTimePasscode"),
    ("microsoftAuthenticatorPasswordless", "microsoftAuthenticatorPush", "mobilePhone"),
    ("microsoftAuthenticatorPush", "mobilePhone", "windowsHelloForBusiness"),
    ("fido2", "microsoftAuthenticatorPasswordless", "windowsHelloForBusiness"),
)
_MFA = 2  # the index of the first MFA method list


@dataclass
class _User:
    user_type: str
    admin: bool | None
    mfa: bool
    sspr: bool
    methods: tuple[str, ...]

    def record(self) -> Record:
        return Record(
            userType=self.user_type,
            isAdmin=self.admin,
            isSsprRegistered=self.sspr,
            isSsprEnabled=self.user_type == "member",
            isSsprCapable=self.sspr and self.user_type == "member",
            isMfaRegistered=self.mfa,
            isMfaCapable=self.mfa,
            isPasswordlessCapable=bool({"fido2", "windowsHelloForBusiness"} & set(self.methods)),
            methodsRegistered=self.methods,
        )


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
        # Admins are asked for stronger methods first, as Conditional Access roll-outs usually go.
        methods = _METHODS_BY_STRENGTH[self._strength_index(mfa, bool(admin))]
        return _User(user_type, admin, mfa, sspr=mfa or rng.random() < 0.4, methods=methods)

    def _strength_index(self, mfa: bool, admin: bool) -> int:
        rng = self._rng
        if not mfa:
            return rng.randrange(_MFA)
        weights = (4, 1, 2, 3) if admin else (10, 2, 2, 1)  # app, passwordless, WHfB, FIDO2
        return _MFA + rng.choices(range(len(weights)), weights)[0]

    def fetch(self, deadline: float) -> Report:
        rng = self._rng
        # The rollout: a few users register MFA, a few move up a class (a passkey, WHfB) each poll; people join
        # and leave; now and then a reset.
        for user in rng.sample(self._users, 6):
            user.mfa, user.sspr = True, True
            user.methods = _METHODS_BY_STRENGTH[self._strength_index(True, bool(user.admin))]
        for user in rng.sample(self._users, 3):
            if user.mfa:
                rank = _METHODS_BY_STRENGTH.index(user.methods)
                user.methods = _METHODS_BY_STRENGTH[min(rank + 1, len(_METHODS_BY_STRENGTH) - 1)]
        for _ in range(rng.randint(0, 3)):
            self._users.pop(rng.randrange(len(self._users)))
        self._users.extend(self._new_user() for _ in range(rng.randint(0, 3)))
        if rng.random() < 0.2:
            rng.choice(self._users).mfa = False
        tally = Tally()
        tally.add(user.record() for user in self._users)
        return tally.report(self.name)
