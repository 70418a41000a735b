"""The modern report: GET {graph}/v1.0/reports/authenticationMethods/userRegistrationDetails.

One record per enabled user, paged; the only registration report an app-only token can read in every
cloud. Pages are summed as they arrive and then dropped, so memory does not grow with the tenant, and
the names and UPNs records carry are never even decoded (records.py). Only after the last
page is a Report built: a failure on any page fails the poll and publishes nothing of it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

from exporter.errors import BadResponse
from exporter.graph.client import GraphClient
from exporter.snapshot import MAX_METHODS, Report, Segment
from exporter.sources.records import Record, decode_page
from exporter.sources.strength import STRENGTHS, log_unknown, strength_of

PATH = "/v1.0/reports/authenticationMethods/userRegistrationDetails"

# Our status label -> the record's boolean, in the legacy report's spelling where it has one.
STATUSES = (
    ("registered", "isSsprRegistered"),
    ("enabled", "isSsprEnabled"),
    ("capable", "isSsprCapable"),
    ("mfaRegistered", "isMfaRegistered"),
    ("mfaCapable", "isMfaCapable"),
    ("passwordlessCapable", "isPasswordlessCapable"),
)
USER_TYPES = ("member", "guest", "unknown")
ADMIN = ("true", "false", "unknown")
# Methods exported as 0 when nobody has them, so a panel or rule never sees a gap; others pass through.
KNOWN_METHODS = (
    "email",
    "fido2",
    "microsoftAuthenticatorPasswordless",
    "microsoftAuthenticatorPush",
    "mobilePhone",
    "passKeyDeviceBound",
    "softwareOneTimePasscode",
    "temporaryAccessPass",
    "windowsHelloForBusiness",
)
_ADMIN_LABEL = {True: "true", False: "false", None: "unknown"}

Progress = Callable[[int, int, float], None]  # pages, users so far, seconds since the poll began


class Tally:
    """Running sums over records.

    The records arrive typed and validated (records.py), and equal records are equal keys: a page is
    counted with one C-level Counter update, with no Python code per record. Each distinct record is looked
    at only when the tally folds (at the end, or sooner if many distinct records have piled up, `fold_at`,
    so memory stays bounded whatever the tenant's size): that is where the statuses, the methods and the
    MFA strength class are worked out, once per distinct record instead of once per user.
    """

    fold_at = 4096  # distinct records held before they are folded

    def __init__(self) -> None:
        self._pending: Counter[Record] = Counter()
        self._users: Counter[tuple[str, str]] = Counter()
        self._statuses: Counter[tuple[str, str, str]] = Counter()
        self._strengths: Counter[tuple[str, str, str]] = Counter()
        self._methods: Counter[str] = Counter()

    def add(self, records: Iterable[Record]) -> None:
        self._pending.update(records)
        if len(self._pending) > self.fold_at:
            self._fold()

    def pending_keys(self) -> int:
        """How many distinct keys are held unfolded (for tests of the memory bound)."""
        return len(self._pending)

    def _fold(self) -> None:
        for record, count in self._pending.items():
            segment = (_user_type(record.userType), _ADMIN_LABEL[record.isAdmin])
            self._users[segment] += count
            for status, field in STATUSES:
                if getattr(record, field) is True:  # null counts as not registered
                    self._statuses[(*segment, status)] += count
            registered = set(record.methodsRegistered or ())  # a method listed twice is still one user
            for method in registered:
                self._methods[method] += count
            self._strengths[(*segment, strength_of(registered))] += count
        self._pending.clear()
        if len(self._methods) > MAX_METHODS:  # the report would refuse them: stop now, before they pile up
            raise BadResponse(f"over {MAX_METHODS} authentication method values: refusing the whole report")

    def report(self, source: str) -> Report:
        self._fold()
        users, statuses, strengths = self._users, self._statuses, self._strengths
        segments = tuple(
            Segment(u, a, users[(u, a)], tuple(sorted((s, statuses[(u, a, s)]) for s, _ in STATUSES)))
            for u in USER_TYPES
            for a in ADMIN
        )
        totals = Counter({status: 0 for status, _ in STATUSES})
        for (_, _, status), count in statuses.items():
            totals[status] += count
        methods = Counter(dict.fromkeys(KNOWN_METHODS, 0))
        methods.update(self._methods)
        report = Report(
            source=source,
            total_users=sum(users.values()),
            registered=tuple(sorted(totals.items())),
            segments=segments,
            methods=tuple(sorted(methods.items())),
            strengths=tuple((u, a, s, strengths[(u, a, s)]) for u in USER_TYPES for a in ADMIN for s in STRENGTHS),
        )
        log_unknown(method for method, _ in report.methods)
        return report


def _user_type(value: str | None) -> str:
    if value in ("member", "guest"):
        return value
    return "unknown"  # null, unknownFutureValue, and whatever Graph adds next


class DetailsSource:
    name = "details"

    def __init__(self, graph: GraphClient, *, page_size: int, max_pages: int, progress: Progress | None = None) -> None:
        self._graph = graph
        self._page_size = page_size
        self._max_pages = max_pages
        self._progress = progress

    def fetch(self, deadline: float) -> Report:
        started = time.monotonic()
        tally = Tally()
        url: str | None = f"{self._graph.root}{PATH}?$top={self._page_size}"
        seen: set[str] = set()
        pages = users = 0
        while url is not None:
            if url in seen:
                raise BadResponse(f"Graph sent a next link it had sent before (page {pages + 1}): refusing to loop")
            if pages == self._max_pages:
                raise BadResponse(f"the report runs past --graph.max-pages={self._max_pages} pages")
            seen.add(url)
            page = decode_page(self._graph.get(url, deadline))
            tally.add(page.value)
            pages += 1
            users += len(page.value)
            # Follow the next link verbatim (it carries Graph's $skiptoken), but never off the Graph root.
            url = page.next_link
            del page  # the page goes now, before the next one is fetched
            if self._progress:
                self._progress(pages, users, time.monotonic() - started)
        return tally.report(self.name)
