"""Per-tenant counters that grow while a poll runs (requests by code, errors, retries, throttled time), and the
process's own metrics.

Unlike the snapshot, these change during a poll, so that a long paging shows progress; the collector
reads a consistent copy under the lock.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from dataclasses import dataclass

from prometheus_client import PlatformCollector, ProcessCollector
from prometheus_client.registry import Collector


def runtime_collectors() -> tuple[Collector, ...]:
    """`process_*` and `python_info`, as every Python exporter serves them (the default registry's, which an
    isolated registry does not have)."""
    return ProcessCollector(registry=None), PlatformCollector(registry=None)


@dataclass(frozen=True)
class CountersView:
    requests: dict[str, int]  # HTTP status code -> requests
    errors: dict[str, int]  # reason -> failed polls
    retries: dict[str, int]  # reason -> retried requests
    throttled_seconds: float


class Changes:
    """A number that moves whenever something of one kind changes, so that the exposition cache
    (exporter.web.exposition) renders a part again only when what it shows has changed.

    Process-wide: a second exporter in the same process (as in tests) only costs the other one a render.
    `value` is read without a lock; each change stores a number never stored before, so a part rendered
    while the value was v is rendered again after any later change.
    """

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.value = 0

    def changed(self) -> None:
        self.value = next(self._numbers)  # next() is atomic: two changes never store the same number


# The statuses (and the failed-poll counts) change when a poll ends; the Graph traffic with every request.
STATUS_CHANGES = Changes()
TRAFFIC_CHANGES = Changes()


class TenantCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._retries: Counter[str] = Counter()
        self._throttled = 0.0
        # (pages, users) read so far by the poll in progress, None between polls: the status page shows a long
        # paging's progress. One tuple, assigned whole, so a reader never sees pages of one page and users of another.
        self.paging: tuple[int, int] | None = None

    def count_request(self, status: int) -> None:
        with self._lock:
            self._requests[str(status)] += 1
        TRAFFIC_CHANGES.changed()

    def count_error(self, reason: str) -> None:
        with self._lock:
            self._errors[reason] += 1
        STATUS_CHANGES.changed()

    def count_retry(self, reason: str) -> None:
        with self._lock:
            self._retries[reason] += 1
        TRAFFIC_CHANGES.changed()

    def add_throttled(self, seconds: float) -> None:
        with self._lock:
            self._throttled += seconds
        TRAFFIC_CHANGES.changed()

    def view(self) -> CountersView:
        with self._lock:
            return CountersView(dict(self._requests), dict(self._errors), dict(self._retries), self._throttled)
