"""The built-in simulated tenant of `--demo`: realistic, slowly drifting numbers, no network at all."""

from __future__ import annotations

import random

from exporter.snapshot import Report


class DemoSource:
    """A tenant of about 4,800 users that is slowly rolling out MFA, with a little daily churn."""

    name = "demo"

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._total = 4812
        self._mfa = 3571.0
        self._sspr = 3904.0

    def fetch(self, deadline: float) -> Report:
        rng = self._rng
        self._total = max(100, self._total + rng.randint(-3, 4))
        # Registration creeps up towards full coverage, with the occasional leaver or reset.
        self._mfa = min(self._total, self._mfa + rng.uniform(-2.0, 4.0))
        self._sspr = min(self._total, self._sspr + rng.uniform(-2.0, 3.0))
        mfa, sspr = round(self._mfa), round(self._sspr)
        registered = {
            "registered": sspr,
            "enabled": round(self._total * 0.93),
            "capable": min(sspr, mfa),
            "mfaRegistered": mfa,
        }
        return Report(source="demo", total_users=self._total, registered=tuple(sorted(registered.items())))
