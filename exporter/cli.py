"""Command line: flags in, one of three modes out (serve, --once, --demo)."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

from prometheus_client import generate_latest

from exporter import __version__, logs
from exporter.app import Exporter, owned
from exporter.config import PROG, Config, parse_command_line, read_config, readable_by_others
from exporter.errors import ConfigError
from exporter.values import format_address
from exporter.web.guard import WebGuard
from exporter.web.routes import Endpoints, serve
from exporter.web.webconfig import WebConfig, read_web_config

log = logging.getLogger("exporter")
SIGNAL_CHECK_INTERVAL = 0.2  # seconds: how late a SIGTERM that reached another thread may be seen


def main(argv: Sequence[str] | None = None) -> int:
    command_line = parse_command_line(argv)
    try:
        config, web = _configure(command_line)
    except ConfigError as exc:
        # One problem, one line (as for a misused flag); several, one line each.
        message = exc.problems[0] if len(exc.problems) == 1 else str(exc)
        print(f"{PROG}: {message}", file=sys.stderr)
        return 2
    logs.setup(config.log_level, config.log_format, config.secrets)
    _warn_about_file_modes(config, web)
    # Everything imported and built so far lives as long as the process: keep the cyclic garbage collector
    # from walking it again at every full collection while pages of records are decoded and summed.
    gc.freeze()
    if config.once:
        # Paging a large tenant takes minutes: show progress to a person watching, nothing to a pipe.
        return _once(Exporter(config, _show_progress if sys.stderr.isatty() else None))
    code = _serve(Exporter(config), lambda: read_config(command_line, os.environ), web)
    # A request to Graph in flight cannot be interrupted, and Python would wait for its thread at exit:
    # leave now, so that SIGTERM stops the exporter within seconds, not after a read timeout.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(code)


def _show_progress(tenant: str, pages: int, users: int, elapsed: float) -> None:
    sys.stderr.write(f"\r\x1b[K{tenant}: {pages} pages, {users:,} users summed, {elapsed:.0f}s")
    sys.stderr.flush()


def _configure(command_line: Mapping[str, object]) -> tuple[Config, WebConfig | None]:
    """The configuration and the web config, validated together: every problem of both in one ConfigError."""
    problems: list[str] = []
    config = web = None
    try:
        config = read_config(command_line, os.environ)
    except ConfigError as exc:
        problems.extend(exc.problems)
    web_config_file = command_line.get("web_config_file")
    if web_config_file is not None:
        try:
            web = read_web_config(Path(str(web_config_file)))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems or config is None:
        raise ConfigError(problems)
    return config, web


def _warn_about_file_modes(config: Config, web: WebConfig | None) -> None:
    """Every file that holds a credential, wherever it was named (environment, --config.file, web config)."""
    files = list(config.secret_files)
    if web is not None and web.tls is not None:
        files.append(web.tls.key_file)
    loose = readable_by_others(files)
    if loose:
        log.warning(
            "secret files are readable by other users: make them readable by the exporter's user (or group) only",
            extra={"kv": {"files": ", ".join(loose)}},
        )


def _once(exporter: Exporter) -> int:
    statuses = exporter.poller.poll_round()
    if sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
    sys.stdout.write(logs.scrub(generate_latest(exporter.registry).decode()))
    failed = [(job.name, s) for job, s in zip(exporter.poller.jobs, statuses, strict=True) if not s.up]
    for name, status in failed:
        print(logs.scrub(f"tenant {name}: poll failed ({status.last_reason}): {status.last_detail}"), file=sys.stderr)
    return 1 if failed else 0


def _serve(exporter: Exporter, reread: Callable[[], Config], web: WebConfig | None) -> int:
    config, poller = exporter.config, exporter.poller
    reload_requested = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not exporter.stop.is_set():  # `timeout` and process managers may send the signal twice
            log.info("shutting down", extra={"kv": {"signal": signal.Signals(signum).name}})
        exporter.stop.set()
        reload_requested.set()  # wakes the main loop

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: reload_requested.set())
    app = Endpoints.of(exporter, poller.alive, poller.first_round_done.is_set)
    try:
        server = serve(app, config.listen_host, config.listen_port, WebGuard(web) if web else None)
    except OSError as exc:
        log.error(
            "cannot listen",
            extra={
                "kv": {
                    "address": format_address(config.listen_host, config.listen_port),
                    "error": exc.strerror or str(exc),
                }
            },
        )
        return 1
    if web is not None and web.users and web.tls is None:
        log.warning("basic auth without TLS: passwords cross the network in clear text")
    if config.demo:
        log.warning("demo mode: serving a simulated tenant, not real data")
    elif config.cloud.name != "global" and any(t.source == "legacy" for t in config.tenants):
        log.warning("the legacy report is offered in the global cloud only", extra={"kv": {"cloud": config.cloud.name}})
    log.info(
        "serving",
        extra={
            "kv": {
                "version": __version__,
                "address": format_address(config.listen_host, server.server_address[1]),
                "tenants": len(poller.jobs),
                "shard": str(config.shard),
                "interval": config.poll_interval_text,
                "tls": bool(web and web.tls),
                "basic_auth": bool(web and web.users),
            }
        },
    )
    poller.start()
    while not exporter.stop.is_set():
        # The kernel may hand a signal to any thread; Python runs its handler here, in the main thread, only
        # once this thread runs Python code again. A wait without timeout could then sleep through SIGTERM.
        if not reload_requested.wait(SIGNAL_CHECK_INTERVAL):
            continue
        reload_requested.clear()
        if not exporter.stop.is_set():
            _reload(exporter, reread)
    server.shutdown()
    server.server_close()
    poller.close()
    return 0


def _reload(exporter: Exporter, reread: Callable[[], Config]) -> None:
    """SIGHUP: re-read the configuration file and adopt its tenants; a bad file changes nothing."""
    if exporter.config.config_file is None:
        log.info("SIGHUP ignored: there is no --config.file to re-read")
        return
    try:
        new = reread()
    except ConfigError as exc:
        log.error(
            "configuration reload refused; the running configuration stays",
            extra={"kv": {"file": exporter.config.config_file, "problems": "; ".join(exc.problems)}},
        )
        return
    done = exporter.reload(new)
    logs.setup(exporter.config.log_level, exporter.config.log_format, exporter.config.secrets)
    fields: dict[str, object] = {
        "tenants": len(owned(new)),
        "added": _names(done.added),
        "removed": _names(done.removed),
        "changed": _names(done.changed),
    }
    if done.restart_needed:
        fields["restart_needed"] = ",".join(done.restart_needed)
    log.info("configuration reloaded", extra={"kv": fields})


def _names(names: Sequence[str], shown: int = 10) -> str:
    more = f",…(+{len(names) - shown})" if len(names) > shown else ""
    return ",".join(names[:shown]) + more
