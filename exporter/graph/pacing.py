"""Pacing of requests: sliding-window rate limits plus Graph's Retry-After holds.

One Gate lives as long as its tenant, across polls, so a Retry-After received at the end of one poll
still holds back the first request of the next. Graph also limits an app across all its tenants, so a
Gate may share one more window with every other tenant's Gate: a request then waits for both.

Waiting here is never a failure: a poll's time budget counts only the time spent waiting on Graph itself
(see GraphClient.get).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack

from exporter.errors import PollError
from exporter.values import RateLimit

# Graph counts a request when it arrives; ours may be delayed on the way by up to this much more than
# the one before it, so each window is widened by this margin.
_MARGIN = 0.25


def steady_pace(limit: RateLimit | None) -> float:
    """Seconds between requests that a window of `limit` allows in the long run (0 without a limit)."""
    return (limit.period + _MARGIN) / limit.requests if limit else 0.0


class Window:
    """A sliding window of the send times of the last `limit.requests` requests; shareable between Gates."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self._sent: deque[float] = deque(maxlen=limit.requests)

    def next_slot(self, now: float) -> float:
        """The earliest time a request may be sent (call with `lock` held)."""
        if len(self._sent) == self.limit.requests:
            return max(now, self._sent[0] + self.limit.period + _MARGIN)
        return now

    def record(self, now: float) -> None:
        """A request is sent now (call with `lock` held)."""
        self._sent.append(now)


class Gate:
    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], bool],
        shared: Window | None = None,
    ) -> None:
        """`sleep(seconds)` waits and returns True if the exporter is shutting down meanwhile.

        `shared` is a window every tenant's Gate passes through too (Graph's limit across tenants).
        """
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # The tenant's own window first: locks are always taken in this order, so two Gates never deadlock.
        self._windows = tuple(w for w in (Window(limit) if limit else None, shared) if w is not None)
        self._hold_until = 0.0

    def hold_until(self, when: float) -> None:
        """No request passes before `when` (monotonic clock), e.g. because Graph said Retry-After."""
        with self._lock:
            self._hold_until = max(self._hold_until, when)

    def held_until(self) -> float:
        with self._lock:
            return self._hold_until

    def wait_turn(self) -> float:
        """Wait until a request may be sent; return the seconds waited.

        However long the wait, it is not a failure (the exporter's own pacing, or Graph's bounded Retry-After):
        only shutting down ends it, with PollError(timeout).
        """
        waited = 0.0
        while True:
            with self._lock, ExitStack() as locked:
                for window in self._windows:
                    locked.enter_context(window.lock)
                now = self._clock()
                slot = max(now, self._hold_until, *(w.next_slot(now) for w in self._windows))
                if slot <= now:
                    # Recorded in every window at once, with the time the request really leaves.
                    for window in self._windows:
                        window.record(now)
                    return waited
            if self._sleep(slot - now):
                raise PollError("timeout", "the exporter is shutting down")
            waited += slot - now
