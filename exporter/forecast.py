"""Whether polls fit the interval at the configured pace, said before it surprises anyone.

Neither is a failure (a paging longer than the interval runs to its end, see Poller): both are log lines
that explain why a tenant's numbers come less often than every --poll.interval.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from exporter.config import Config, Demo, Tenant
from exporter.graph.pacing import steady_pace

log = logging.getLogger(__name__)


def warn_if_the_interval_is_short(config: Config, tenants: Sequence[Tenant]) -> None:
    """At start: a warning when the interval allows fewer requests than one poll of every tenant needs.

    What a poll needs is known only once it has run (the details report takes a request per page), so this
    counts the least any poll needs, one request per tenant: it warns only when even that does not fit.
    """
    polled = sum(1 for tenant in tenants if not isinstance(tenant.credential, Demo))
    if not polled:
        return
    for flag, limit, needed in (
        ("--graph.rate-limit", config.rate_limit, 1),
        ("--graph.global-rate-limit", config.global_rate_limit, polled),
    ):
        allowed = config.poll_interval / steady_pace(limit) if limit else math.inf
        if allowed < needed:
            log.warning(
                "the interval allows fewer requests than one poll needs at the configured pace; "
                "polls will come less often than every interval",
                extra={
                    "kv": {
                        "interval_seconds": config.poll_interval,
                        flag.removeprefix("--"): str(limit),
                        "requests_allowed": math.floor(allowed),
                        "requests_needed_at_least": needed,
                    }
                },
            )


@dataclass
class PagingForecast:
    """Told of each page of a tenant's paging; says once a poll when the paging will outlast the interval.

    The estimate is pages left times the pace: pages left from the tenant's user count at its last good poll (unknown
    before the first one: then it is said when the paging actually passes the interval), the pace the slower
    of the configured one and the one measured so far in this poll.
    """

    tenant: str
    interval: float
    pace: float
    page_size: int
    known_users: Callable[[], int | None]
    _said: bool = field(default=False, init=False)

    def __call__(self, pages: int, users: int, elapsed: float) -> None:
        if pages == 1:
            self._said = False  # a new poll
        if self._said:
            return
        known = self.known_users()
        fields: dict[str, object] = {"tenant": self.tenant, "pages": pages, "interval_seconds": self.interval}
        if known is None:
            if elapsed <= self.interval:
                return
            message = "the paging has outlasted the interval; it runs on to its end"
            fields["elapsed_seconds"] = round(elapsed)
        else:
            left = max(0, math.ceil(known / self.page_size) - pages)
            pace = max(self.pace, elapsed / pages)
            expected = elapsed + left * pace
            if expected <= self.interval:
                return
            message = "the paging is expected to outlast the interval; it runs on to its end"
            fields.update(pages_left=left, pace_seconds=round(pace, 2), expected_seconds=round(expected))
        log.info(message, extra={"kv": fields})
        self._said = True
