"""One exception hierarchy for everything the exporter raises on purpose."""

from __future__ import annotations

# The bounded set of `reason` label values a failed poll can carry. Every tenant exports each of
# them from its first scrape on (as 0), so rate() and increase() work without gaps.
REASONS = (
    "auth",
    "throttled",
    "http_4xx",
    "http_5xx",
    "bad_response",
    "timeout",
    "network",
    "internal",
)


class ExporterError(Exception):
    """Root of the exporter's own errors."""


class ConfigError(ExporterError):
    """The configuration is unusable; `problems` lists every problem found, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class PollError(ExporterError):
    """A poll could not produce a complete report.

    `reason` is a bounded label value (see REASONS); `code` and `request_id` are Graph's or the
    identity platform's, when they gave one. The message never holds a secret or a user's data.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        self.status = status
        self.code = code
        self.request_id = request_id
        super().__init__(detail)

    def fields(self) -> dict[str, object]:
        """The key/value pairs of the one log line a failed poll writes."""
        out: dict[str, object] = {"reason": self.reason}
        if self.status is not None:
            out["status"] = self.status
        if self.code:
            out["code"] = self.code
        if self.request_id:
            out["request_id"] = self.request_id
        out["detail"] = self.detail
        return out


class BadResponse(PollError):
    """Graph answered 2xx with something that is not what its schema promises."""

    def __init__(self, detail: str) -> None:
        super().__init__("bad_response", detail)
