"""Small value types and parsers that every wing of the exporter may use: secrets, durations, rates, URLs,
an error's first line and the strict YAML loader."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml


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
    if not all("!" <= c <= "~" for c in text) or "\\" in text:
        raise ValueError(f"{text!r} holds whitespace, a backslash, a control or a non-ASCII character")
    parts = urlsplit(text)
    if parts.scheme != "https":
        raise ValueError(f"{text!r} must be an https:// URL")
    if "@" in parts.netloc or "%" in parts.netloc:
        raise ValueError(f"{text!r} must not carry userinfo or escapes in its host")
    if not parts.hostname:
        raise ValueError(f"{text!r} has no host")
    if parts.query or parts.fragment:
        raise ValueError(f"{text!r} must not carry a query or fragment")
    return text


def parse_listen_address(text: str) -> tuple[str, int]:
    """`host:port`, `:port` or `[v6]:port` -> (host without brackets, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{text!r} is not host:port, :port or [v6 address]:port")
    if not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: the port {int(port)} is out of range (1 to 65535)")
    return host.strip("[]"), int(port)


def format_address(host: str, port: int) -> str:
    """host:port as a user writes it: an IPv6 address in brackets, so that the port stays readable."""
    try:
        bracketed = ipaddress.ip_address(host).version == 6
    except ValueError:
        bracketed = False
    return f"[{host}]:{port}" if bracketed else f"{host}:{port}"


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not true or false")


def first_line(value: object, limit: int = 300) -> str:
    """The first line of an error (or any text), at most `limit` characters: what one log field can hold."""
    text = str(value).strip()
    if not text:
        return type(value).__name__ if isinstance(value, BaseException) else ""
    return text.splitlines()[0][:limit]


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key written twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_strict_yaml(text: str) -> Any:
    """YAML read safely, refusing a duplicate key; ValueError says where: `line 4, column 1: not valid YAML: …`."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ValueError(f"{where}not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {' '.join(str(exc).split())}") from None
