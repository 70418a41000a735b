"""The HTTP surface: /metrics, /healthz, /readyz and a small landing page. Nothing here calls Graph."""

from __future__ import annotations

import gzip
import html
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.poller import TenantJob

log = logging.getLogger(__name__)


class App:
    """What the handlers need to know, and nothing more."""

    def __init__(
        self,
        registry: CollectorRegistry,
        jobs: Callable[[], Sequence[TenantJob]],
        alive: Callable[[], bool],
        ready: Callable[[], bool],
    ) -> None:
        self.registry = registry
        self.jobs = jobs
        self.alive = alive
        self.ready = ready


class Handler(BaseHTTPRequestHandler):
    server_version = f"entra-credential-exporter/{__version__}"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 15  # seconds a client may take to send its request: a slow one must not hold a thread forever
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK of
    # the headers, and every scrape on a kept-alive connection (as Prometheus scrapes) took 40 ms more.
    disable_nagle_algorithm = True
    app: App  # set on the subclass made by serve()

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _respond(self, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(self.app.registry)
            headers = {"Content-Type": content_type}
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                body = gzip.compress(body, compresslevel=1)
                headers["Content-Encoding"] = "gzip"
            self._send(200, body, headers, head)
        elif path == "/healthz":
            ok = self.app.alive()
            self._send(200 if ok else 503, b"ok\n" if ok else b"poller stopped\n", {}, head)
        elif path == "/readyz":
            ok = self.app.ready()
            self._send(200 if ok else 503, b"ready\n" if ok else b"first poll round not finished\n", {}, head)
        elif path == "/":
            self._send(200, landing_page(self.app.jobs()).encode(), {"Content-Type": "text/html; charset=utf-8"}, head)
        else:
            self._send(404, b"not found\n", {}, head)

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        self.send_response(status)
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http request", extra={"kv": {"client": self.address_string(), "request": format % args}})


def landing_page(jobs: Sequence[TenantJob]) -> str:
    rows = []
    for job in jobs:
        status = job.status
        if not status.polled:
            outcome = "not polled yet"
        elif status.up:
            outcome = "ok"
        else:
            outcome = f"failed: {status.last_reason}"
        last = (
            time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(status.last_success)) if status.last_success else "never"
        )
        share = "-"
        report = status.report
        mfa = report.registered_count("mfaRegistered") if report else None
        if report and mfa is not None and report.total_users:
            share = f"{100.0 * mfa / report.total_users:.1f}%"
        cells = (job.name, outcome, last, share)
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Entra credential exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left}}</style></head>
<body><h1>Entra credential exporter</h1>
<p>MFA and SSPR registration of Microsoft Entra ID tenants, polled from Microsoft Graph.
Version {html.escape(__version__)}.</p>
<p><a href="/metrics">Metrics</a> · <a href="/healthz">Health</a> · <a href="/readyz">Readiness</a></p>
<table><thead><tr><th>Tenant</th><th>Last poll</th><th>Last success</th><th>MFA registered</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: when more scrapers than that connect at once while the accept
    # thread waits for the GIL (a page being summed), the kernel drops their SYNs and they retry 1 s later.
    request_queue_size = 128


def serve(app: App, host: str, port: int) -> ThreadingHTTPServer:
    """Bind and start serving in a background thread; an empty host listens on every address, v4 and v6."""
    handler = type("BoundHandler", (Handler,), {"app": app})
    server_class: type[_Server] = _Server
    if host in ("", "::") and socket.has_dualstack_ipv6():
        server_class, host = _DualStackServer, "::"
    elif ":" in host:
        server_class = _V6Server
    server = server_class((host or "0.0.0.0", port), handler)  # noqa: S104 - listening everywhere is asked for
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


class _V6Server(_Server):
    address_family = socket.AF_INET6


class _DualStackServer(_V6Server):
    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
