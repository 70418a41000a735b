"""The poller: one round of polls at start, then one per tick; never two rounds at once.

Each tenant's poll builds a whole new TenantStatus and swaps the reference in one assignment, so a
scrape sees either the old status or the new one, never a mix. A failed poll keeps the last good
report, counts the error by reason and writes one log line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from exporter.errors import PollError
from exporter.snapshot import TenantStatus
from exporter.sources import Source
from exporter.telemetry import TenantCounters

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
        try:
            report = self.source.fetch(deadline=started + timeout)
        except PollError as exc:
            new = self._failed(old, exc.reason, exc.detail, clock() - started)
            log.warning("poll failed", extra={"kv": {"tenant": self.name, **exc.fields()}})
        except Exception as exc:  # a bug, not Graph: say so loudly, keep the poller alive
            new = self._failed(old, "internal", f"{type(exc).__name__}: {exc}", clock() - started)
            log.exception("poll failed with an internal error", extra={"kv": {"tenant": self.name}})
        else:
            duration = clock() - started
            new = TenantStatus(report=report, polled=True, up=True, last_success=time.time(), last_duration=duration)
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
        return new

    def _failed(self, old: TenantStatus, reason: str, detail: str, duration: float) -> TenantStatus:
        self.counters.count_error(reason)
        return replace(old, polled=True, up=False, last_duration=duration, last_reason=reason, last_detail=detail)


class Poller:
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
        self._thread: threading.Thread | None = None
        self.first_round_done = threading.Event()

    def poll_round(self) -> list[TenantStatus]:
        """Poll every tenant once, at most `concurrency` at a time; return their new statuses."""
        return list(self._pool.map(lambda job: job.poll(self._timeout), self.jobs))

    def run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            self.poll_round()
            self.first_round_done.set()
            next_tick += self._interval
            now = time.monotonic()
            if now > next_tick:
                skipped = int((now - next_tick) // self._interval) + 1
                next_tick += skipped * self._interval
                log.warning(
                    "a poll round outlasted the interval; skipping ticks",
                    extra={
                        "kv": {
                            "skipped": skipped,
                            "interval_seconds": self._interval,
                        }
                    },
                )
            self._stop.wait(max(0.0, next_tick - now))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="poller", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
