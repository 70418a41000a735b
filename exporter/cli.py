"""Command line: flags in, one of three modes out (serve, --once, --demo)."""

from __future__ import annotations

import argparse
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
from exporter.config import (
    CLOUDS,
    LOG_FORMATS,
    LOG_LEVELS,
    SOURCES,
    Certificate,
    Config,
    FederatedToken,
    Flags,
    build_config,
)
from exporter.config import file as configfile
from exporter.config.filemodes import readable_by_others
from exporter.errors import ConfigError
from exporter.web import webconfig
from exporter.web.guard import WebGuard
from exporter.web.routes import App, serve
from exporter.web.webconfig import WebConfig

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
        "--web.config.file",
        dest="web_config_file",
        default=None,
        help="exporter-toolkit web config (YAML) enabling TLS and/or basic auth on every endpoint; "
        "re-read when it changes",
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
        help="time one tenant's poll may spend waiting on Graph itself; waits for pacing and Retry-After do "
        "not count (default 80%% of the interval)",
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
    p.add_argument(
        "--config.file",
        dest="config_file",
        default=None,
        help="YAML file with the tenants and options (flags win over it); SIGHUP re-reads it. "
        "Without it, one tenant from the AZURE_* environment",
    )
    p.add_argument(
        "--graph.global-rate-limit",
        dest="global_rate_limit",
        default=d.global_rate_limit,
        help="requests to Graph per period across all tenants, like 122/10s, or off (default %(default)s)",
    )
    p.add_argument(
        "--shard.count",
        dest="shard_count",
        type=int,
        default=d.shard_count,
        help="replicas that share the tenants (default %(default)s: no sharding)",
    )
    p.add_argument(
        "--shard.index",
        dest="shard_index",
        type=int,
        default=None,
        help="this replica's shard, from 0 to --shard.count - 1",
    )
    p.add_argument(
        "--shard.index-from-hostname",
        dest="shard_index_from_hostname",
        action="store_true",
        help="take --shard.index from a host name ending in -<index> (a StatefulSet pod's)",
    )
    p.add_argument("--demo", action="store_true", help="serve a simulated tenant: no credentials, no network")
    p.add_argument(
        "--once",
        action="store_true",
        help="poll every tenant once, print the metrics to stdout and exit (1 if a poll failed)",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def explicit_flags(argv: Sequence[str] | None) -> frozenset[str]:
    """The Flags fields given on the command line (they win over the configuration file)."""
    p = parser()
    for action in p._actions:
        action.default = argparse.SUPPRESS
    return frozenset(vars(p.parse_args(argv)))


def load_config(flags: Flags, explicit: frozenset[str], env: Mapping[str, str]) -> Config:
    if flags.config_file is not None and not flags.demo:
        return configfile.load(flags, explicit, env)
    return build_config(flags, env)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    flags, explicit = Flags(**vars(args)), explicit_flags(argv)
    try:
        config, web = _configure(flags, explicit)
    except ConfigError as exc:
        print(f"entra-credential-exporter: {exc}", file=sys.stderr)
        return 2
    logs.setup(config.log_level, config.log_format, config.secrets)
    _warn_about_file_modes(config, web)
    # Everything imported and built so far lives as long as the process: keep the cyclic garbage collector
    # from walking it again at every full collection while pages of records are decoded and summed.
    gc.freeze()
    if config.once:
        # Paging a large tenant takes minutes: show progress to a person watching, nothing to a pipe.
        return _once(Exporter(config, _show_progress if sys.stderr.isatty() else None))
    code = _serve(Exporter(config), lambda: load_config(flags, explicit, os.environ), web)
    # A request to Graph in flight cannot be interrupted, and Python would wait for its thread at exit:
    # leave now, so that SIGTERM stops the exporter within seconds, not after a read timeout.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(code)


def _show_progress(tenant: str, pages: int, users: int, elapsed: float) -> None:
    sys.stderr.write(f"\r\x1b[K{tenant}: {pages} pages, {users:,} users summed, {elapsed:.0f}s")
    sys.stderr.flush()


def _configure(flags: Flags, explicit: frozenset[str]) -> tuple[Config, WebConfig | None]:
    """The configuration and the web config, validated together: every problem of both in one ConfigError."""
    problems: list[str] = []
    config = web = None
    try:
        config = load_config(flags, explicit, os.environ)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if flags.web_config_file is not None:
        try:
            web = webconfig.load(Path(flags.web_config_file))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems or config is None:
        raise ConfigError(problems)
    return config, web


def _warn_about_file_modes(config: Config, web: WebConfig | None) -> None:
    files = list(config.secret_files)
    for tenant in config.tenants:  # tenants from --config.file name their own files
        credential = tenant.credential
        if isinstance(credential, Certificate):
            files.append(credential.path)
        elif isinstance(credential, FederatedToken):
            files.append(credential.token_file)
    files = list(dict.fromkeys(files))
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
    sys.stdout.write(generate_latest(exporter.registry).decode())
    failed = [(job.name, s) for job, s in zip(exporter.poller.jobs, statuses, strict=True) if not s.up]
    for name, status in failed:
        print(f"tenant {name}: poll failed ({status.last_reason}): {status.last_detail}", file=sys.stderr)
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
    app = App(exporter.registry, lambda: poller.jobs, poller.alive, poller.first_round_done.is_set)
    try:
        server = serve(app, config.listen_host, config.listen_port, WebGuard(web) if web else None)
    except OSError as exc:
        log.error(
            "cannot listen",
            extra={"kv": {"address": f"{config.listen_host}:{config.listen_port}", "error": exc.strerror or str(exc)}},
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
                "address": f"{config.listen_host}:{server.server_address[1]}",
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
        reload_requested.wait()
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
