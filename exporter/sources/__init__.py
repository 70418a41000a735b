"""Sources turn Graph's reports into one complete Report per poll, or raise PollError."""

from __future__ import annotations

from typing import Protocol

from exporter.snapshot import Report


class Source(Protocol):
    name: str

    def fetch(self, deadline: float) -> Report:
        """Poll once; finish by `deadline` (monotonic clock) or raise PollError."""
