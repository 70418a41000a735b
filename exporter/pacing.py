"""Pacing of requests to one tenant: a sliding-window rate limit plus Graph's Retry-After holds.

One Gate lives as long as its tenant, across polls, so a Retry-After received at the end of one poll
still holds back the first request of the next.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from exporter.config import RateLimit
from exporter.errors import PollError

# Graph counts a request when it arrives; ours may be delayed on the way by up to this much more than
# the one before it, so each window is widened by this margin.
_MARGIN = 0.25


class Gate:
    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], bool],
    ) -> None:
        """`sleep(seconds)` waits and returns True if the exporter is shutting down meanwhile."""
        self._limit = limit
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque(maxlen=limit.requests if limit else 1)
        self._hold_until = 0.0

    def hold_until(self, when: float) -> None:
        """No request passes before `when` (monotonic clock), e.g. because Graph said Retry-After."""
        with self._lock:
            self._hold_until = max(self._hold_until, when)

    def held_until(self) -> float:
        with self._lock:
            return self._hold_until

    def _next_slot(self, now: float) -> float:
        slot = max(now, self._hold_until)
        if self._limit and len(self._sent) == self._limit.requests:
            slot = max(slot, self._sent[0] + self._limit.period + _MARGIN)
        return slot

    def wait_turn(self, deadline: float) -> float:
        """Wait until a request may be sent; return the seconds waited.

        Raises PollError(throttled) at once, without waiting, if the turn would come after `deadline`.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                slot = self._next_slot(now)
                held = slot == self._hold_until
                if slot <= now:
                    if self._limit:
                        self._sent.append(now)
                    return waited
            if slot > deadline:
                why = "Graph asked us to wait (Retry-After)" if held else "the rate limit allows the next request"
                raise PollError(
                    "throttled" if held else "timeout",
                    f"{why} {slot - now:.1f}s from now, past this poll's time budget",
                )
            if self._sleep(slot - now):
                raise PollError("timeout", "the exporter is shutting down")
            waited += slot - now
