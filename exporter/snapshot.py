"""Immutable values the poller swaps in and the collector reads: never mutated, only replaced."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """Users of one kind (user type x admin) and how many of them have each registration status."""

    user_type: str  # member | guest | unknown
    admin: str  # true | false | unknown
    users: int
    registered: tuple[tuple[str, int], ...]  # (status, users), every status present, zeros included


@dataclass(frozen=True)
class Report:
    """Complete, validated counts for one tenant from one successful poll."""

    source: str  # which report produced it: legacy | details | demo
    total_users: int
    registered: tuple[tuple[str, int], ...]  # (registration status as Graph spells it, users), sorted
    # The modern report's breakdowns; empty for the legacy report, which has none.
    segments: tuple[Segment, ...] = ()
    methods: tuple[tuple[str, int], ...] = ()  # (method as Graph spells it, users), sorted

    def registered_count(self, status: str) -> int | None:
        return dict(self.registered).get(status)


@dataclass(frozen=True)
class TenantStatus:
    """What the exporter knows about one tenant after its latest poll.

    `report` is the last *good* report: a failed poll keeps it and only changes the other fields.
    """

    report: Report | None = None
    polled: bool = False  # at least one poll has finished, whatever its outcome
    up: bool = False
    last_success: float | None = None  # unix time
    last_attempt: float | None = None  # unix time the last poll ended, whatever its outcome
    last_duration: float | None = None  # seconds
    last_reason: str | None = None  # the failed poll's reason, None after a success
    last_detail: str | None = None
