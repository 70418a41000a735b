"""The HTTP surface: /metrics, /healthz, /readyz and the status page. Nothing here calls Graph."""

from __future__ import annotations

from collections.abc import Callable

from exporter import __version__
from exporter.app import Exporter
from exporter.web.exposition import Exposition
from exporter.web.guard import WebGuard
from exporter.web.server import HardenedHandler, Limits, Server, start
from exporter.web.status import CONTENT_SECURITY_POLICY, StatusPage

DEFAULT_LIMITS = Limits()


class Endpoints:
    """What the handlers need to know, and nothing more."""

    def __init__(
        self,
        exposition: Exposition,
        status: StatusPage,
        alive: Callable[[], bool],
        ready: Callable[[], bool],
        telemetry_path: str = "/metrics",
    ) -> None:
        self.exposition = exposition
        self.status = status
        self.telemetry_path = telemetry_path
        self.alive = alive
        self.ready = ready

    @classmethod
    def of(cls, exporter: Exporter, alive: Callable[[], bool], ready: Callable[[], bool]) -> Endpoints:
        poller = exporter.poller
        status = StatusPage(
            jobs=lambda: poller.jobs,
            next_due=poller.next_due,
            secrets=lambda: exporter.config.secrets,  # a reload may bring new ones
            demo=exporter.config.demo,
            interval_text=exporter.config.poll_interval_text,
            telemetry_path=exporter.config.telemetry_path,
        )
        return cls(Exposition(exporter.parts), status, alive, ready, exporter.config.telemetry_path)


class Handler(HardenedHandler):
    """The routes. Methods, limits, TLS and authentication are HardenedHandler's job."""

    server_version = f"entra-credential-exporter/{__version__}"
    app: Endpoints  # set on the subclass made by serve()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == self.app.telemetry_path:
            compress = "gzip" in self.headers.get("Accept-Encoding", "")
            body, content_type = self.app.exposition.render(self.headers.get("Accept", ""), compress)
            headers = {"Content-Type": content_type}
            if compress:
                headers["Content-Encoding"] = "gzip"
            self._answer(200, body, headers)
        elif path == "/healthz":
            ok = self.app.alive()
            self._answer(200 if ok else 503, b"ok\n" if ok else b"poller stopped\n", {})
        elif path == "/readyz":
            ok = self.app.ready()
            self._answer(200 if ok else 503, b"ready\n" if ok else b"first poll round not finished\n", {})
        elif path == "/":
            headers = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CONTENT_SECURITY_POLICY}
            self._answer(200, self.app.status.render().encode(), headers)
        else:
            self._answer(404, b"not found\n", {})

    do_HEAD = do_GET  # _answer leaves out the body of a HEAD


def serve(
    endpoints: Endpoints, host: str, port: int, guard: WebGuard | None = None, limits: Limits = DEFAULT_LIMITS
) -> Server:
    """Bind and start serving in a background thread; an empty host listens on every address, v4 and v6."""
    handler = type("BoundHandler", (Handler,), {"app": endpoints})
    return start(handler, host, port, guard, limits)
