"""Where a credential may go: the one check every URL that carries a token or a secret passes before it is sent.

Two parsers can read one URL two ways: `urllib.parse` takes the host after the last `@`, urllib3 (what
requests sends with) ends the host at a backslash, as browsers do; so `https://evil\\@graph/` is graph to
one and evil to the other. No reading of a crafted URL is trusted, then: a URL must first be plain (one
that every parser reads alike), and then the transport's own reading of it must name the trusted scheme,
host and port, under the trusted path. requests prepares a URL with urllib3's `parse_url`, then connects
where the prepared URL says: the check does the same.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import requests

_DEFAULT_PORTS = {"https": 443, "http": 80}

# A plain URL: a lowercase scheme, a host of letters, digits, dots and hyphens (or an IPv6 literal), a port
# without leading zeros, a path of RFC 3986 characters, a query. No userinfo, no fragment, no percent-escape
# in the authority. Whitespace, control and non-ASCII characters and backslashes are refused before this.
_PLAIN = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[1-9][0-9]{0,4}))?"
    r"(?P<path>/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(?:\?[^#]*)?"
)
# In a path, these let a server that decodes or normalises it reach outside the trusted prefix.
_ENCODED_DOT_OR_SLASH = re.compile(r"%(?:2e|2f|5c)", re.IGNORECASE)


class CredentialOrigin:
    """The scheme, host, port and path prefix that a credential may be sent to, and nothing else.

    With `https://host/graph`, `/graph` and `/graph/...` may be reached, `/graphevil` and `/other` not.
    `name` says in messages whose origin it is ("the Graph root", "the authority"). An origin that is not
    plain itself refuses every URL, so a bad setting fails each poll with its reason instead of sending.
    """

    def __init__(self, root: str, name: str, *, allow_http: bool = False) -> None:
        self.root = root
        self.name = name
        self._schemes = ("https", "http") if allow_http else ("https",)
        target = _target(root)
        self._broken = self._not_plain(root, target)
        self._target = None if self._broken else target
        self._prefix = _path(root).rstrip("/")

    def refusal(self, url: str) -> str | None:
        """Why `url` may not carry the credential, or None if it may. The reason quotes the URL's start,
        escaped, so that it is safe for one log line."""
        if self._broken:
            return f"{self.name} {self.root!r} is itself not a plain URL: {self._broken}"
        shown = repr(url[:120])
        target = _target(url)
        if target is not None and target != self._target:  # said first: it is what an operator needs to know
            return f"{shown} goes to {_show(target)}, not to {self.name} {_show(self._target)}"
        problem = self._not_plain(url, target)
        if problem:
            return f"{shown} {problem}"
        path = _path(url)
        if not (path == self._prefix or path.startswith(self._prefix + "/")):
            return f"{shown} is outside the path {self._prefix}/ of {self.name}"
        return None

    def _not_plain(self, url: str, target: tuple[str, str, int] | None) -> str | None:
        if not all("!" <= c <= "~" for c in url):
            return "holds whitespace, a control character or a non-ASCII character"
        if "\\" in url:
            return "holds a backslash"
        match = _PLAIN.fullmatch(url)
        if not match:
            return "is not a plain URL (scheme://host[:port]/path?query, no userinfo, fragment or escape in the host)"
        if match["scheme"] not in self._schemes:
            return f"is not {' or '.join(self._schemes)}"
        path = _path(url)
        if _ENCODED_DOT_OR_SLASH.search(path) or any(s in (".", "..") for s in path.split("/")):
            return "has a dot segment or an escaped dot, slash or backslash in its path"
        if target is None:
            return "cannot be read by the HTTP client"
        return None


def _path(url: str) -> str:
    """The path of a plain URL, as written (no parser normalises a plain path: it has no dot segment)."""
    match = _PLAIN.fullmatch(url)
    return (match["path"] or "") if match else ""


def _target(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) that requests connects to for `url`: it prepares the URL with urllib3's parser,
    then picks the connection by the prepared URL's host and port (requests.adapters). urlsplit lowercases
    the host."""
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        parts = urlsplit(prepared.url or "")
        scheme, host, port = parts.scheme.lower(), parts.hostname or "", parts.port
    except (requests.RequestException, ValueError):
        return None
    if not host or scheme not in _DEFAULT_PORTS:
        return None
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _show(target: tuple[str, str, int] | None) -> str:
    return f"{target[0]}://{target[1]}:{target[2]}" if target else "?"
