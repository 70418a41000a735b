"""The web config's rate limit: a token bucket over every request, as in the exporter-toolkit (HTTP 429).

It guards the exporter's own CPU (bcrypt, TLS, rendering) against a flood, at the price of refusing some
scrapes while the flood lasts: leave it off unless the endpoint faces clients you do not control.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, interval: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) / self._interval)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False
