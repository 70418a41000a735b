"""Small value types and parsers that every wing of the exporter may use: secrets, durations, rates, URLs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit


class Secret:
    """A secret value whose repr and str never reveal it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


REDACTED = "<redacted>"


class Scrubber:
    """Replaces every secret it knows in a text: the last line of defence of the logs and the status page."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({s.reveal() for s in secrets if s.reveal()}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


@dataclass(frozen=True)
class RateLimit:
    requests: int
    period: float  # seconds

    def __str__(self) -> str:
        return f"{self.requests}/{self.period:g}s"


def parse_rate_limit(text: str) -> RateLimit | None:
    """`5/10s` (requests per duration), or `off` for no limit."""
    if text.strip().lower() == "off":
        return None
    count, sep, period = text.partition("/")
    if not sep or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"{text!r} is not a rate like 5/10s, or off")
    return RateLimit(int(count), parse_duration(period))


_DURATION_RE = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def parse_duration(text: str) -> float:
    """Parse a Prometheus duration (`30s`, `5m`, `1h30m`, `500ms`) into seconds; raise ValueError."""
    match = _DURATION_RE.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h")
    seconds = sum(int(g) * unit for g, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if g)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return float(seconds)


def parse_https_url(text: str, *, bare_host_ok: bool) -> str:
    """An https URL without trailing slash; a bare host gets https:// when bare_host_ok."""
    text = text.strip().rstrip("/")
    if bare_host_ok and "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise ValueError(f"{text!r} must be an https:// URL")
    if not parts.hostname:
        raise ValueError(f"{text!r} has no host")
    if parts.query or parts.fragment:
        raise ValueError(f"{text!r} must not carry a query or fragment")
    return text


def parse_listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port or :port")
    return host.strip("[]"), int(port)


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not true or false")
