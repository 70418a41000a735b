"""Graph's Retry-After header, read defensively: the value comes from the network, so it is bounded.

An absurd value (`999999`, a 400-digit number, a date in year 9999) must not hold a tenant for days:
it is clipped to a bound the caller chooses. A value that cannot be read (`soon`, a broken date, `²`,
for which str.isdigit() is true) is treated as absent, never as an error of the exporter.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

_LONGEST_DATE = 64  # an IMF-fixdate is 29 characters; anything much longer is not one


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now (not bounded): delta-seconds or an HTTP date; None if absent or
    unreadable. `now` is the Unix time to count a date from."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # isdigit() alone is also true for `²` and other Unicode digits
        return float(value)  # 400 digits read as infinity: the caller's bound clips it
    if len(value) > _LONGEST_DATE:
        return None
    try:
        when = parsedate_to_datetime(value)
        seconds = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return max(0.0, seconds)
