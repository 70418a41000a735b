"""The poller: every tenant polled at start, then once per tick each; never two polls of a tenant at once.

Each tenant's poll builds a whole new TenantStatus and swaps the reference in one assignment, so a
scrape sees either the old status or the new one, never a mix. A failed poll keeps the last good
report, counts the error by reason and writes one log line.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from exporter.errors import PollError
from exporter.snapshot import TenantStatus
from exporter.sources import Source
from exporter.telemetry import STATUS_CHANGES, TRAFFIC_CHANGES, TenantCounters

log = logging.getLogger(__name__)


@dataclass
class TenantJob:
    """Everything that lives as long as one tenant does. `status` is replaced, never mutated."""

    name: str
    source: Source
    counters: TenantCounters = field(default_factory=TenantCounters)
    status: TenantStatus = field(default_factory=TenantStatus)

    def poll(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> TenantStatus:
        started = clock()
        old = self.status
        self.counters.paging = (0, 0)
        try:
            report = self.source.fetch(deadline=started + timeout)
        except PollError as exc:
            new = self._failed(old, exc.reason, exc.detail, clock() - started)
            log.warning("poll failed", extra={"kv": {"tenant": self.name, **exc.fields()}})
        except Exception as exc:  # a bug, not Graph: say so loudly, keep the poller alive
            new = self._failed(old, "internal", f"{type(exc).__name__}: {exc}", clock() - started)
            log.exception("poll failed with an internal error", extra={"kv": {"tenant": self.name}})
        else:
            duration, ended = clock() - started, time.time()
            new = TenantStatus(
                report=report, polled=True, up=True, last_success=ended, last_attempt=ended, last_duration=duration
            )
            level = logging.INFO if old.polled and not old.up else logging.DEBUG
            log.log(
                level,
                "poll succeeded",
                extra={
                    "kv": {
                        "tenant": self.name,
                        "source": report.source,
                        "users": report.total_users,
                        "duration_seconds": round(duration, 3),
                    }
                },
            )
        self.status = new
        STATUS_CHANGES.changed()
        self.counters.paging = None
        return new

    def _failed(self, old: TenantStatus, reason: str, detail: str, duration: float) -> TenantStatus:
        self.counters.count_error(reason)
        return replace(
            old,
            polled=True,
            up=False,
            last_attempt=time.time(),
            last_duration=duration,
            last_reason=reason,
            last_detail=detail,
        )


class Poller:
    """Polls each tenant on its own cadence, at most `concurrency` at once.

    Every tenant is due at start, then every `interval` after its previous due time. A due tenant is
    handed to the pool unless its previous poll is still queued or running: then that tenant alone skips
    the tick (never two polls of one tenant at once). A slow tenant therefore holds one worker for at
    most its own `timeout`, and never delays another tenant's tick.
    """

    def __init__(
        self,
        jobs: Sequence[TenantJob],
        *,
        interval: float,
        timeout: float,
        concurrency: int,
        stop: threading.Event,
    ) -> None:
        self.jobs: tuple[TenantJob, ...] = tuple(jobs)
        self._interval = interval
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="poll")
        self._stop = stop
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._busy: set[str] = set()  # tenants whose poll is queued or running
        # The schedule, the scheduler thread's alone: each event costs O(log n), not a walk over every tenant.
        self._due: dict[str, float] = {}  # tenant -> when its next poll is due (monotonic)
        self._heap: list[tuple[float, str]] = []  # (due, tenant); an entry whose due is not _due's is stale
        self._by_name: dict[str, TenantJob] = {}
        self._scheduled: tuple[TenantJob, ...] = ()  # the tenant list the schedule was built for
        self._unpolled: set[int] = set()  # id() of the jobs whose first poll has not ended, until the first round
        self._thread: threading.Thread | None = None
        self.first_round_done = threading.Event()

    def poll_round(self) -> list[TenantStatus]:
        """Poll every tenant once, at most `concurrency` at a time; return their new statuses.

        For --once and tests: not to be mixed with run(), which schedules the polls itself.
        """
        return list(self._pool.map(lambda job: job.poll(self._timeout), self.jobs))

    def replace_jobs(self, jobs: Sequence[TenantJob]) -> None:
        """Swap the tenant list in one assignment (a scrape sees the old list or the new one); new tenants are
        polled at once, removed ones are no longer scheduled (a poll of theirs that is running just ends)."""
        self.jobs = tuple(jobs)
        STATUS_CHANGES.changed()
        TRAFFIC_CHANGES.changed()
        self._wake.set()

    def run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            next_due = self._schedule(now)
            if not self.first_round_done.is_set():
                with self._lock:
                    done = not self._unpolled
                if done:
                    self.first_round_done.set()
            self._wake.wait(max(0.0, next_due - now))
            self._wake.clear()

    def _adopt(self, now: float) -> None:
        """Bring the schedule to the current tenant list: O(n), once per list (at start and at each reload)."""
        jobs = self.jobs
        self._by_name = {job.name: job for job in jobs}
        for name in [name for name in self._due if name not in self._by_name]:
            del self._due[name]  # its heap entry is stale now
        for name in self._by_name:
            if name not in self._due:
                self._due[name] = now
                heapq.heappush(self._heap, (now, name))
        with self._lock:
            self._unpolled = {id(job) for job in jobs if not job.status.polled}
        self._scheduled = jobs

    def _schedule(self, now: float) -> float:
        """Hand every due tenant to the pool; return when the next one is due."""
        if self._scheduled is not self.jobs:
            self._adopt(now)
        heap, due_of = self._heap, self._due
        skipped: list[str] = []
        while heap and heap[0][0] <= now:
            due, name = heapq.heappop(heap)
            if due_of.get(name) != due:
                continue  # a removed tenant's, or superseded
            # The tenant's next tick on its own cadence, past any it has missed.
            due_of[name] = due + (int((now - due) // self._interval) + 1) * self._interval
            heapq.heappush(heap, (due_of[name], name))
            with self._lock:
                busy = name in self._busy
                self._busy.add(name)
            if busy:
                skipped.append(name)
            elif not self._stop.is_set():  # the pool refuses work once close() has shut it down
                self._pool.submit(self._poll, self._by_name[name])
        if skipped:
            log.warning(
                "polls still queued or running at their next tick; those tenants skip it",
                extra={
                    "kv": {
                        "tenants": len(skipped),
                        "first": ",".join(skipped[:5]),
                        "interval_seconds": self._interval,
                    }
                },
            )
        return heap[0][0] if heap else now + self._interval

    def next_due(self, tenant: str) -> float | None:
        """When the tenant's next poll is due (monotonic clock), None before the scheduler first saw it."""
        return self._due.get(tenant)

    def _poll(self, job: TenantJob) -> None:
        try:
            job.poll(self._timeout)
        finally:
            with self._lock:
                self._busy.discard(job.name)
                self._unpolled.discard(id(job))
            if not self.first_round_done.is_set():
                self._wake.set()  # the scheduler checks whether the first round is complete

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="poller", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
