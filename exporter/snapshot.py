"""Immutable values the poller swaps in and the collector reads: never mutated, only replaced.

A Report and its Segments check themselves when they are built, so no source can hand the poller one
that the collector could not render, or one that lets Graph choose how many series we export: each
count is an integer in 0..2**53, each label value is plain and short, and each breakdown is small and
free of repeats. Anything else raises BadResponse, so the poll fails and the last good report stays.
The parsers check the shape of Graph's answers; the bounds on its values live here, once for every source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from exporter.errors import BadResponse

# Prometheus stores a sample as a float64: up to 2**53 every integer is exact, beyond it they are not
# (and 10**400 does not convert at all, which broke every scrape).
MAX_COUNT = 2**53
# Graph has 5 registration statuses and the details report 6; about 20 methods are known today.
# The caps leave room for new ones while bounding the series one tenant can create.
MAX_STATUSES = 32
MAX_METHODS = 128
MAX_LABEL_CHARS = 64
# Every status and method Graph has used is a camelCase identifier: nothing needs escaping anywhere
# (exposition, HTML, logs), and no look-alike or invisible character can hide in a label value.
_PLAIN = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_LABEL_CHARS}}}\Z")


def _shown(value: object) -> str:
    """A bounded, one-line repr for error messages (Graph's value may be huge or hold control characters)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit integer"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_count(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise BadResponse(f"{what} is {_shown(value)}, not a non-negative integer up to 2**53")


def _check_label(value: object, what: str) -> None:
    if not isinstance(value, str) or not _PLAIN.match(value):
        raise BadResponse(
            f"{what} {_shown(value)} is not a plain label value (1 to {MAX_LABEL_CHARS} of A-Z a-z 0-9 _ . -)"
        )


def _check_breakdown(pairs: Sequence[tuple[str, int]], what: str, cap: int) -> None:
    """(label value, count) pairs: at most `cap`, each label value once (a repeat is a duplicate series)."""
    if len(pairs) > cap:
        raise BadResponse(f"{len(pairs)} {what} values, over the cap of {cap}: refusing the whole report")
    seen: set[str] = set()
    for name, value in pairs:
        _check_label(name, what)
        if name in seen:
            raise BadResponse(f"{what} {name!r} appears twice")
        seen.add(name)
        _check_count(value, f"the count of {what} {name}")


@dataclass(frozen=True)
class Segment:
    """Users of one kind (user type x admin) and how many of them have each registration status."""

    user_type: str  # member | guest | unknown
    admin: str  # true | false | unknown
    users: int
    registered: tuple[tuple[str, int], ...]  # (status, users), every status present, zeros included

    def __post_init__(self) -> None:
        _check_label(self.user_type, "user type")
        _check_label(self.admin, "admin flag")
        _check_count(self.users, f"the users of segment {self.user_type}/{self.admin}")
        _check_breakdown(self.registered, "registration status", MAX_STATUSES)


@dataclass(frozen=True)
class Report:
    """Complete, validated counts for one tenant from one successful poll."""

    source: str  # which report produced it: legacy | details | demo
    total_users: int
    registered: tuple[tuple[str, int], ...]  # (registration status as Graph spells it, users), sorted
    # The modern report's breakdowns; empty for the legacy report, which has none.
    segments: tuple[Segment, ...] = ()
    methods: tuple[tuple[str, int], ...] = ()  # (method as Graph spells it, users), sorted

    def __post_init__(self) -> None:
        _check_count(self.total_users, "the total of users")
        _check_breakdown(self.registered, "registration status", MAX_STATUSES)
        if len({(s.user_type, s.admin) for s in self.segments}) != len(self.segments):
            raise BadResponse("a segment (user type, admin flag) appears twice")
        _check_breakdown(self.methods, "authentication method", MAX_METHODS)

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
