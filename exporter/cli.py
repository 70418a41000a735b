"""Command line: flags in, one of three modes out (serve, --once, --demo)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from prometheus_client import generate_latest

from exporter import __version__, logs
from exporter.app import Exporter
from exporter.config import CLOUDS, LOG_FORMATS, LOG_LEVELS, SOURCES, Flags, build_config
from exporter.errors import ConfigError
from exporter.web import App, serve

log = logging.getLogger("exporter")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="entra-credential-exporter",
        description="Prometheus exporter for the MFA and SSPR registration of Microsoft Entra ID users. "
        "Credentials come from the AZURE_* environment variables (see the README), never from flags.",
    )
    d = Flags()
    p.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=d.listen_address,
        help="address to serve /metrics on (default %(default)s)",
    )
    p.add_argument(
        "--poll.interval",
        dest="poll_interval",
        default=d.poll_interval,
        help="how often to poll Graph, as a Prometheus duration (default %(default)s; 30s with --demo)",
    )
    p.add_argument(
        "--poll.timeout",
        dest="poll_timeout",
        default=None,
        help="time budget of one tenant's poll, retries included (default 80%% of the interval)",
    )
    p.add_argument(
        "--poll.concurrency",
        dest="poll_concurrency",
        type=int,
        default=d.poll_concurrency,
        help="tenants polled at once (default %(default)s)",
    )
    p.add_argument(
        "--source", default=d.source, help=f"which Graph report to read: {', '.join(SOURCES)} (default %(default)s)"
    )
    p.add_argument("--cloud", default=d.cloud, help=f"national cloud: {', '.join(CLOUDS)} (default %(default)s)")
    p.add_argument(
        "--graph.endpoint",
        dest="graph_endpoint",
        default=None,
        help="Graph root URL, overriding the cloud's (https only)",
    )
    p.add_argument(
        "--graph.timeout",
        dest="http_timeout",
        default=d.http_timeout,
        help="read timeout of one request to Graph or the identity platform (default %(default)s)",
    )
    p.add_argument(
        "--graph.page-size",
        dest="page_size",
        type=int,
        default=d.page_size,
        help="records per page of the details report ($top; default %(default)s)",
    )
    p.add_argument(
        "--graph.max-pages",
        dest="max_pages",
        type=int,
        default=d.max_pages,
        help="fail a poll of the details report that runs past this many pages (default %(default)s)",
    )
    p.add_argument(
        "--graph.rate-limit",
        dest="rate_limit",
        default=d.rate_limit,
        help="requests to Graph per tenant, as N/duration, or off (default %(default)s)",
    )
    p.add_argument(
        "--auth",
        default=d.auth,
        help="environment (AZURE_* variables: secret, certificate or "
        "federated token) or managed-identity (default %(default)s)",
    )
    p.add_argument(
        "--tenant.name", dest="tenant_name", default=None, help="the tenant label's value (default: AZURE_TENANT_ID)"
    )
    p.add_argument(
        "--log.level", dest="log_level", default=d.log_level, help=f"{', '.join(LOG_LEVELS)} (default %(default)s)"
    )
    p.add_argument(
        "--log.format", dest="log_format", default=d.log_format, help=f"{', '.join(LOG_FORMATS)} (default %(default)s)"
    )
    p.add_argument("--demo", action="store_true", help="serve a simulated tenant: no credentials, no network")
    p.add_argument(
        "--once",
        action="store_true",
        help="poll every tenant once, print the metrics to stdout and exit (1 if a poll failed)",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = build_config(Flags(**vars(args)), os.environ)
    except ConfigError as exc:
        print(f"entra-credential-exporter: {exc}", file=sys.stderr)
        return 2
    logs.setup(config.log_level, config.log_format, config.secrets)
    if config.once:
        # Paging a large tenant takes minutes: show progress to a person watching, nothing to a pipe.
        return _once(Exporter(config, _show_progress if sys.stderr.isatty() else None))
    code = _serve(Exporter(config))
    # A request to Graph in flight cannot be interrupted, and Python would wait for its thread at exit:
    # leave now, so that SIGTERM stops the exporter within seconds, not after a read timeout.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(code)


def _show_progress(tenant: str, pages: int, users: int, elapsed: float) -> None:
    sys.stderr.write(f"\r\x1b[K{tenant}: {pages} pages, {users:,} users summed, {elapsed:.0f}s")
    sys.stderr.flush()


def _once(exporter: Exporter) -> int:
    statuses = exporter.poller.poll_round()
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
    sys.stdout.write(generate_latest(exporter.registry).decode())
    failed = [(job.name, s) for job, s in zip(exporter.poller.jobs, statuses, strict=True) if not s.up]
    for name, status in failed:
        print(f"tenant {name}: poll failed ({status.last_reason}): {status.last_detail}", file=sys.stderr)
    return 1 if failed else 0


def _serve(exporter: Exporter) -> int:
    config, poller = exporter.config, exporter.poller

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not exporter.stop.is_set():  # `timeout` and process managers may send the signal twice
            log.info("shutting down", extra={"kv": {"signal": signal.Signals(signum).name}})
        exporter.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app = App(exporter.registry, lambda: poller.jobs, poller.alive, poller.first_round_done.is_set)
    try:
        server = serve(app, config.listen_host, config.listen_port)
    except OSError as exc:
        log.error(
            "cannot listen",
            extra={"kv": {"address": f"{config.listen_host}:{config.listen_port}", "error": exc.strerror or str(exc)}},
        )
        return 1
    if config.demo:
        log.warning("demo mode: serving a simulated tenant, not real data")
    elif config.cloud.name != "global" and any(t.source == "legacy" for t in config.tenants):
        log.warning("the legacy report is offered in the global cloud only", extra={"kv": {"cloud": config.cloud.name}})
    log.info(
        "serving",
        extra={
            "kv": {
                "version": __version__,
                "address": f"{config.listen_host}:{server.server_address[1]}",
                "tenants": len(config.tenants),
                "interval": config.poll_interval_text,
            }
        },
    )
    poller.start()
    exporter.stop.wait()
    server.shutdown()
    server.server_close()
    poller.close()
    return 0
