"""The modern report: GET {graph}/v1.0/reports/authenticationMethods/userRegistrationDetails.

One record per enabled user, paged; the only registration report an app-only token can read in every
cloud. Pages are summed as they arrive and then dropped, so memory does not grow with the tenant, and
records (which carry names and UPNs) are never kept, logged or used as labels. Only after the last
page is a Report built: a failure on any page fails the poll and publishes nothing of it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

from exporter.errors import BadResponse
from exporter.graph.client import GraphClient
from exporter.snapshot import Report, Segment

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
_FIELDS = ("userType", "isAdmin", *(field for _, field in STATUSES))
_KIND_OF = itemgetter(*_FIELDS)  # one C call instead of a .get per field; KeyError if one is left out

Progress = Callable[[int, int, float], None]  # pages, users so far, seconds since the poll began


class Tally:
    """Running sums over records.

    Each record adds 1 to one counter keyed by its few relevant fields and its methods, so the per-record
    work is one C-level read of the fields and one dictionary update; the values are checked once, at the
    end. The methods are folded into per-method counts at the end, or sooner if many distinct method lists
    have piled up (`fold_at`), so memory stays bounded whatever the tenant's size.
    """

    fold_at = 4096  # distinct (fields, methods) keys held before they are folded

    def __init__(self) -> None:
        self._pending: Counter[tuple[tuple[Any, ...], tuple[Any, ...]]] = Counter()
        self._kinds: Counter[tuple[Any, ...]] = Counter()
        self._methods: Counter[Any] = Counter()

    def add(self, records: Iterable[Any]) -> None:
        pending, kind_of, fields = self._pending, _KIND_OF, _FIELDS
        try:
            for record in records:
                try:
                    kind = kind_of(record)
                except KeyError:  # a field left out reads as null
                    kind = tuple(map(record.get, fields))
                registered = record.get("methodsRegistered")
                if registered:
                    if type(registered) is not list:
                        raise BadResponse(f"methodsRegistered is a {type(registered).__name__}, not a list")
                    pending[kind, tuple(registered)] += 1
                else:
                    pending[kind, ()] += 1
        except (AttributeError, TypeError):
            raise BadResponse("a userRegistrationDetails record is not an object of scalar fields") from None
        if len(pending) > self.fold_at:
            self._fold()

    def pending_keys(self) -> int:
        """How many distinct keys are held unfolded (for tests of the memory bound)."""
        return len(self._pending)

    def _fold(self) -> None:
        kinds, methods = self._kinds, self._methods
        for (kind, registered), count in self._pending.items():
            kinds[kind] += count
            for method in set(registered):  # a method listed twice is still one user
                methods[method] += count
        self._pending.clear()

    def report(self, source: str) -> Report:
        self._fold()
        users: Counter[tuple[str, str]] = Counter()
        statuses: Counter[tuple[str, str, str]] = Counter()
        for (user_type, is_admin, *flags), count in self._kinds.items():
            segment = (_user_type(user_type), _admin(is_admin))
            users[segment] += count
            for (status, field), flag in zip(STATUSES, flags, strict=True):
                if flag is True:
                    statuses[(*segment, status)] += count
                elif flag is not False and flag is not None:  # null counts as not registered
                    raise BadResponse(f"{field} is {flag!r}, not true or false")
        for method in self._methods:
            if not isinstance(method, str) or not method:
                raise BadResponse(f"methodsRegistered holds {method!r}, not a method name")
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
        return Report(
            source=source,
            total_users=sum(users.values()),
            registered=tuple(sorted(totals.items())),
            segments=segments,
            methods=tuple(sorted(methods.items())),
        )


def _user_type(value: Any) -> str:
    if value in ("member", "guest"):
        return str(value)
    if value is None or isinstance(value, str):
        return "unknown"  # unknownFutureValue, and whatever Graph adds next
    raise BadResponse(f"userType is {value!r}, not a string")


def _admin(value: Any) -> str:
    if value is True or value is False or value is None:
        return _ADMIN_LABEL[value]
    raise BadResponse(f"isAdmin is {value!r}, not true, false or null")


def parse_page(payload: Any) -> tuple[list[Any], str | None]:
    """A page's records and its next link (None on the last page)."""
    if not isinstance(payload, dict):
        raise BadResponse(f"expected a JSON object, got {type(payload).__name__}")
    records = payload.get("value")
    if not isinstance(records, list):
        raise BadResponse("the page has no `value` list")
    next_link = payload.get("@odata.nextLink")
    if next_link is not None and (not isinstance(next_link, str) or not next_link):
        raise BadResponse(f"@odata.nextLink is {next_link!r}, not a URL")
    return records, next_link


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
            # Follow the next link verbatim (it carries Graph's $skiptoken), but never off the Graph root.
            records, url = parse_page(self._graph.get_json(url, deadline, numbers_as_text=True))
            tally.add(records)
            pages += 1
            users += len(records)
            del records  # the page's personal data goes now, before the next page is fetched
            if self._progress:
                self._progress(pages, users, time.monotonic() - started)
        return tally.report(self.name)
