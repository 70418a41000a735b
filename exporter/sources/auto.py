"""`--source auto`: the legacy report while Graph still has it, else the modern details report.

The legacy function is beta and legacy; its sibling reports have been retired. When Graph answers
that it no longer has it (400 "Resource not found for the segment", 404, 410), or refuses the app for
a reason other than the tenant's licence, this source switches to `details` for good and says so once.
"""

from __future__ import annotations

import logging

from exporter.errors import PollError
from exporter.snapshot import Report
from exporter.sources.details import DetailsSource
from exporter.sources.legacy import LegacySource

log = logging.getLogger(__name__)

# Without a P1/P2 licence the modern report is refused too: switching would only hide the real problem.
_LICENCE_CODES = frozenset({"Authentication_RequestFromNonPremiumTenantOrB2CTenant"})


def legacy_unavailable(error: PollError) -> bool:
    if error.status in (404, 410):
        return True
    if error.status == 400:
        return "resource not found for the segment" in error.detail.lower()
    return error.status == 403 and error.code not in _LICENCE_CODES


class AutoSource:
    name = "auto"

    def __init__(self, legacy: LegacySource, details: DetailsSource, tenant: str) -> None:
        self._legacy = legacy
        self._details = details
        self._tenant = tenant
        self._switched = False

    def fetch(self, deadline: float) -> Report:
        if not self._switched:
            try:
                return self._legacy.fetch(deadline)
            except PollError as exc:
                if not legacy_unavailable(exc):
                    raise
                self._switched = True
                log.info(
                    "the legacy report is not available; reading the details report from now on",
                    extra={"kv": {"tenant": self._tenant, **exc.fields()}},
                )
        return self._details.fetch(deadline)
