"""A hardened HTTP/1.1 server for a handful of read-only endpoints: the part of web.py that faces the network.

- One thread per connection; the TLS handshake happens in that thread, so a slow client never holds up
  the accept loop or another scrape.
- The request head must arrive whole within `head_timeout` (slowloris); a kept-alive connection may idle
  for `idle_timeout` between requests; a client that does not read its answer is cut after `write_timeout`.
- Size limits: the request line (414), the header block and the header count (431).
- Only GET and HEAD (405 with Allow); a request body is never read, the connection is closed instead; a
  request whose body length is ambiguous (RFC 9112, 6.3) gets 400.
- With a web config: TLS per connection from the current config (certificate rotation), the rate limit
  (429), basic auth on every path (401 with WWW-Authenticate), and the configured headers on every answer.
"""

from __future__ import annotations

import io
import logging
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from exporter.values import first_line
from exporter.web.basicauth import CHALLENGE
from exporter.web.guard import WebGuard
from exporter.web.tls import san_allowed
from exporter.web.webconfig import WebConfig

log = logging.getLogger(__name__)

_TLS_HANDSHAKE_RECORD = 0x16
_PLAIN_HTTP_ON_TLS = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)


@dataclass(frozen=True)
class Limits:
    request_line: int = 8 * 1024
    header_bytes: int = 64 * 1024
    header_count: int = 100  # also http.client's own limit, which parse_request enforces with a 431
    head_timeout: float = 10.0  # TLS handshake, then the whole request head
    # Between two requests on a kept-alive connection: longer than common scrape intervals (up to 5m), so that
    # a scrape does not race the server closing its connection.
    idle_timeout: float = 300.0
    write_timeout: float = 30.0


class _Closed(Exception):
    """The client went away or was too slow: close without an answer."""


class _HeadError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class HardenedHandler(BaseHTTPRequestHandler):
    """Reads and vets the request; subclasses implement do_GET and do_HEAD only."""

    protocol_version = "HTTP/1.1"
    # What a request line without a version is taken for: the base class says HTTP/0.9, and answers a
    # malformed request line with a bare body and no status line. No client of ours speaks 0.9.
    default_request_version = "HTTP/1.0"
    sys_version = ""
    allowed_methods = ("GET", "HEAD")

    def setup(self) -> None:
        super().setup()
        self._pending = bytearray()
        self._deadline: float | None = time.monotonic() + self._limits.head_timeout
        self._extra_headers: tuple[tuple[str, str], ...] = ()

    @property
    def _limits(self) -> Limits:
        return cast(Server, self.server).limits

    def handle_one_request(self) -> None:
        try:
            head = self._read_head()
        except _Closed:
            self.close_connection = True
            return
        except _HeadError as exc:
            self.requestline, self.request_version, self.command = "", "", ""
            self.close_connection = True
            self.send_error(exc.status, exc.message)
            return
        line_end = head.index(b"\n") + 1
        self.raw_requestline = bytes(head[:line_end])
        self.rfile = io.BytesIO(bytes(head[line_end:]))  # parse_request reads the headers from here
        guard = cast(Server, self.server).guard
        web = guard.current() if guard else None
        self._extra_headers = web.headers if web else ()
        if not self.parse_request():
            return
        self.connection.settimeout(self._limits.write_timeout)
        framing = _body_framing(self.headers.get_all("Content-Length", []), "Transfer-Encoding" in self.headers)
        if framing != "none":
            self.close_connection = True  # the body is never read: it must not be taken for the next request
        if framing == "ambiguous":
            self._answer(400, b"bad request: ambiguous message length\n", {})
        elif guard is not None and web is not None and not guard.admit(web):
            self._answer(429, b"too many requests\n", {})
        elif self.command not in self.allowed_methods:
            self.close_connection = True
            self._answer(405, b"method not allowed\n", {"Allow": ", ".join(self.allowed_methods)})
        elif guard is not None and web is not None and not self._authorized(guard, web):
            self._answer(401, b"unauthorized\n", {"WWW-Authenticate": CHALLENGE})
        else:
            getattr(self, "do_" + self.command)()
        self.wfile.flush()

    def _authorized(self, guard: WebGuard, web: WebConfig) -> bool:
        return guard.authorized(web, self.headers.get("Authorization"), str(self.client_address[0]))

    def version_string(self) -> str:
        return self.server_version  # no Python version, and no trailing space

    def handle_expect_100(self) -> bool:
        return True  # never invite a body: none is ever read

    def end_headers(self) -> None:
        for name, value in self._extra_headers:
            self.send_header(name, value)
        super().end_headers()

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_head(self) -> bytearray:
        """The request line and headers, up to and including the blank line, within the limits.

        Each byte is scanned a bounded number of times, however finely a client splits its request."""
        limits, buffer = self._limits, self._pending
        newline = -1  # the end of the request line, once it has arrived
        scanned = 0  # where the search for the blank line resumes
        while True:
            if newline < 0:
                blank = 0
                while blank < len(buffer) and buffer[blank] in b"\r\n":
                    blank += 1  # blank lines before a request are allowed (RFC 9112, 2.2)
                del buffer[:blank]
                newline = buffer.find(b"\n", 0, limits.request_line + 1)
                if newline < 0 and len(buffer) > limits.request_line:
                    raise _HeadError(414, "Request-URI Too Long")
                scanned = max(newline, 0)
            if newline >= 0:
                end = _head_end(buffer, scanned)
                if (end or len(buffer)) - (newline + 1) > limits.header_bytes:
                    raise _HeadError(431, "Request Header Fields Too Large")
                if end:
                    head = buffer[:end]
                    del buffer[:end]
                    self._deadline = None  # the next request on this connection starts with an idle wait
                    return head
                scanned = max(newline, len(buffer) - 2)  # a terminator may straddle two reads
            buffer += self._receive()

    def _receive(self) -> bytes:
        if self._deadline is None:  # idle between requests: wait for the first byte of the next one
            timeout = self._limits.idle_timeout
        else:
            timeout = self._deadline - time.monotonic()
            if timeout <= 0:
                log.debug("client too slow, disconnected", extra={"kv": {"client": self.address_string()}})
                raise _Closed
        self.connection.settimeout(timeout)
        try:
            chunk: bytes = self.connection.recv(16 * 1024)
        except OSError:  # a timeout, a reset, a TLS alert
            raise _Closed from None
        if not chunk:
            raise _Closed
        if self._deadline is None:
            self._deadline = time.monotonic() + self._limits.head_timeout
        return chunk

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http request", extra={"kv": {"client": self.address_string(), "request": format % args}})


def _body_framing(lengths: list[str], chunked: bool) -> str:
    """ "none", "body" or "ambiguous": whether a body follows, and whether its length is beyond doubt.

    A proxy in front of us may read a repeated or conflicting Content-Length, or one beside Transfer-Encoding,
    differently from us, and take what we read as a body for a second request, or the reverse (request
    smuggling). RFC 9112, 6.3 calls these unrecoverable: answer 400 and close the connection."""
    if chunked:
        return "ambiguous" if lengths else "body"
    if not lengths:
        return "none"
    if len(lengths) > 1 or not lengths[0].strip().isascii() or not lengths[0].strip().isdigit():
        return "ambiguous"  # also "0, 44" in one header, a sign, or a digit that is not ASCII
    return "none" if int(lengths[0]) == 0 else "body"


def _head_end(buffer: bytearray, start: int) -> int:
    """The index just past the blank line that ends the head, or 0 if it has not arrived yet."""
    ends = [i + n for i, n in ((buffer.find(b"\n\r\n", start), 3), (buffer.find(b"\n\n", start), 2)) if i >= 0]
    return min(ends) if ends else 0


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: when more scrapers than that connect at once while the accept
    # thread waits for the GIL (a page being summed), the kernel drops their SYNs and they retry 1 s later.
    request_queue_size = 128
    guard: WebGuard | None = None
    limits: Limits = Limits()

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's own thread: the TLS handshake too, bounded by head_timeout."""
        if self.address_family in (socket.AF_INET, socket.AF_INET6):
            # Headers and body go out in two writes; with Nagle's algorithm the second waits for the client's
            # delayed ACK, about 40 ms on every kept-alive scrape. Go's server turns Nagle off too.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = request
        web = self.guard.current() if self.guard else None
        if web is not None and web.context is not None:
            connection = self._handshake(request, web.context)
            if connection is None:
                return
            sans = web.tls.client_allowed_sans if web.tls else ()
            if sans and not san_allowed(connection.getpeercert() or {}, sans):
                log.debug("client certificate has none of the allowed SANs", extra={"kv": {"client": client_address}})
                connection.close()
                return
        try:
            self.RequestHandlerClass(connection, client_address, self)  # type: ignore[arg-type]
        finally:
            if connection is not request:
                connection.close()

    def _handshake(self, sock: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket | None:
        sock.settimeout(self.limits.head_timeout)
        try:
            first = sock.recv(1, socket.MSG_PEEK)
            if first and first[0] != _TLS_HANDSHAKE_RECORD:
                sock.sendall(_PLAIN_HTTP_ON_TLS)  # what Go's server says; and nothing else
                return None
            if not first:
                return None
            return context.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            # Scanners, probes that only connect, clients without a certificate: not worth more than debug.
            log.debug("TLS handshake failed", extra={"kv": {"error": first_line(exc, 200)}})
            return None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints a traceback to stderr; a broken connection is routine, anything else is a bug.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("connection error", extra={"kv": {"error": first_line(exc, 200)}})
        else:
            log.error("error while answering a request", exc_info=True)


class _V6Server(Server):
    address_family = socket.AF_INET6


class _DualStackServer(_V6Server):
    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def start(
    handler: type[BaseHTTPRequestHandler], host: str, port: int, guard: WebGuard | None, limits: Limits
) -> Server:
    """Bind and serve in a background thread; an empty host listens on every address, v4 and v6."""
    server_class: type[Server] = Server
    if host in ("", "::") and socket.has_dualstack_ipv6():
        server_class, host = _DualStackServer, "::"
    elif ":" in host:
        server_class = _V6Server
    bound: type[Server] = type("BoundServer", (server_class,), {"guard": guard, "limits": limits})
    server = bound((host or "0.0.0.0", port), handler)  # noqa: S104 - listening everywhere is asked for
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
