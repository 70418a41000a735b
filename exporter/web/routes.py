"""The HTTP surface: /metrics, /healthz, /readyz and a small landing page. Nothing here calls Graph."""

from __future__ import annotations

import gzip
import html
import time
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.poller import TenantJob
from exporter.web.guard import WebGuard
from exporter.web.server import HardenedHandler, Limits, Server, start

DEFAULT_LIMITS = Limits()


class App:
    """What the handlers need to know, and nothing more."""

    def __init__(
        self,
        registry: CollectorRegistry,
        jobs: Callable[[], Sequence[TenantJob]],
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        telemetry_path: str = "/metrics",
    ) -> None:
        self.telemetry_path = telemetry_path
        self.registry = registry
        self.jobs = jobs
        self.alive = alive
        self.ready = ready


class Handler(HardenedHandler):
    """The routes. Methods, limits, TLS and authentication are HardenedHandler's job."""

    server_version = f"entra-credential-exporter/{__version__}"
    app: App  # set on the subclass made by serve()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == self.app.telemetry_path:
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            body = encoder(self.app.registry)
            headers = {"Content-Type": content_type}
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                body = gzip.compress(body, compresslevel=1)
                headers["Content-Encoding"] = "gzip"
            self._answer(200, body, headers)
        elif path == "/healthz":
            ok = self.app.alive()
            self._answer(200 if ok else 503, b"ok\n" if ok else b"poller stopped\n", {})
        elif path == "/readyz":
            ok = self.app.ready()
            self._answer(200 if ok else 503, b"ready\n" if ok else b"first poll round not finished\n", {})
        elif path == "/":
            self._answer(200, landing_page(self.app.jobs()).encode(), {"Content-Type": "text/html; charset=utf-8"})
        else:
            self._answer(404, b"not found\n", {})

    do_HEAD = do_GET  # _answer leaves out the body of a HEAD


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


def serve(app: App, host: str, port: int, guard: WebGuard | None = None, limits: Limits = DEFAULT_LIMITS) -> Server:
    """Bind and start serving in a background thread; an empty host listens on every address, v4 and v6."""
    handler = type("BoundHandler", (Handler,), {"app": app})
    return start(handler, host, port, guard, limits)
