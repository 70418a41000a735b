"""The option table: every option once, with its flag, its key in --config.file, its parser, default and help.

The command line (exporter.config.commandline), the file's top-level keys (exporter.config.file) and the
messages that name a setting all come from here. Adding an option is one row below, plus its use.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, fields
from typing import Any

from exporter.config.model import CLOUDS, GRAPH_GLOBAL_LIMIT, LOG_FORMATS, LOG_LEVELS, SOURCES
from exporter.values import (
    RateLimit,
    parse_bool,
    parse_duration,
    parse_https_url,
    parse_listen_address,
    parse_rate_limit,
)

# The groups of --help, in the order shown.
WEB, POLLING, GRAPH, TENANTS, SHARDS, LOGGING, MODES = (
    "web",
    "polling",
    "Microsoft Graph",
    "tenants",
    "shards",
    "logging",
    "modes",
)
AUTH_KINDS = ("environment", "managed-identity")


@dataclass(frozen=True)
class Option:
    flag: str  # --poll.interval
    key: str | None  # poll.interval in --config.file; None: a flag only
    parse: Callable[[str], Any]  # text -> value; ValueError says what is wrong with it
    default: str | None  # as a user would write it; None: not set
    group: str
    help: str
    metavar: str | None = None
    kind: type = str  # what the file's YAML must give: str, or int for a whole number
    switch: bool = False  # a flag without a value


def _option(flag: str, key: str | None, parse: Callable[[str], Any], default: str | None, **rest: Any) -> Any:
    """A field of Options whose default is `default` parsed, and whose metadata is the Option."""
    return field(
        default=None if default is None else parse(default),
        metadata={"option": Option(flag, key, parse, default, **rest)},
    )


def one_of(choices: Collection[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def whole(low: int, high: int | None = None, why: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().lstrip("-").isdigit():
            raise ValueError(f"{text!r} is not a whole number")
        number = int(text)
        if number < low or (high is not None and number > high):
            raise ValueError(f"must be from {low} to {high}{why}" if high else f"must be at least {low}, not {number}")
        return number

    return parse


def text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


_TAKEN_PATHS = ("/", "/healthz", "/readyz")  # the status page and the probes


def url_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() or c in "?#" for c in value) or value in _TAKEN_PATHS:
        raise ValueError(f"{value!r} is not a path like /metrics (and not /, /healthz or /readyz)")
    return value


def _switch(flag: str, group: str, help: str) -> Any:
    return _option(flag, None, parse_bool, "false", group=group, help=help, switch=True)


@dataclass(frozen=True)
class Options:
    """The options' values, parsed: from the command line, else from --config.file, else the default."""

    listen_address: tuple[str, int] = _option(
        "--web.listen-address", None, parse_listen_address, ":9918", group=WEB, metavar="[HOST]:PORT",
        help="address to serve on; an IPv6 address in brackets, like [::1]:9918",
    )  # fmt: skip
    telemetry_path: str = _option(
        "--web.telemetry-path", None, url_path, "/metrics", group=WEB, metavar="PATH",
        help="path under which to serve the metrics",
    )  # fmt: skip
    web_config_file: str | None = _option(
        "--web.config.file", None, text, None, group=WEB, metavar="FILE",
        help="exporter-toolkit web config (YAML) for TLS and basic auth on every endpoint; re-read on change",
    )  # fmt: skip
    poll_interval: float = _option(
        "--poll.interval", "poll.interval", parse_duration, "15m", group=POLLING, metavar="DURATION",
        help="how often to poll Graph, as a Prometheus duration (30s with --demo)",
    )  # fmt: skip
    poll_timeout: float | None = _option(
        "--poll.timeout", "poll.timeout", parse_duration, None, group=POLLING, metavar="DURATION",
        help="time one tenant's poll may spend waiting on Graph itself; waits for pacing and Retry-After do "
        "not count (default 80% of the interval)",
    )  # fmt: skip
    poll_concurrency: int = _option(
        "--poll.concurrency", "poll.concurrency", whole(1), "8", group=POLLING, metavar="N", kind=int,
        help="tenants polled at once",
    )  # fmt: skip
    source: str = _option(
        "--source", "source", one_of(SOURCES), "auto", group=GRAPH, metavar="|".join(SOURCES),
        help="which Graph report to read",
    )  # fmt: skip
    cloud: str = _option(
        "--cloud", "cloud", one_of(CLOUDS), "global", group=GRAPH, metavar="|".join(CLOUDS), help="national cloud",
    )  # fmt: skip
    graph_endpoint: str | None = _option(
        "--graph.endpoint", "graph.endpoint", lambda t: parse_https_url(t, bare_host_ok=False), None, group=GRAPH,
        metavar="URL", help="Graph root URL, overriding the cloud's (https only)",
    )  # fmt: skip
    http_timeout: float = _option(
        "--graph.timeout", "graph.timeout", parse_duration, "30s", group=GRAPH, metavar="DURATION",
        help="read timeout of one request to Graph or the identity platform",
    )  # fmt: skip
    page_size: int = _option(
        "--graph.page-size", "graph.page_size", whole(1, 10_000, " (Graph commonly allows 999)"), "999",
        group=GRAPH, metavar="N", kind=int, help="records per page of the details report ($top)",
    )  # fmt: skip
    max_pages: int = _option(
        "--graph.max-pages", "graph.max_pages", whole(1), "10000", group=GRAPH, metavar="N", kind=int,
        help="fail a poll of the details report that runs past this many pages",
    )  # fmt: skip
    rate_limit: RateLimit | None = _option(  # noqa: RUF009 - a frozen value
        "--graph.rate-limit", "graph.rate_limit", parse_rate_limit, "5/10s", group=GRAPH, metavar="N/DURATION|off",
        help="requests to Graph per tenant",
    )  # fmt: skip
    global_rate_limit: RateLimit | None = _option(  # noqa: RUF009 - a frozen value
        "--graph.global-rate-limit", "graph.global_rate_limit", parse_rate_limit, str(GRAPH_GLOBAL_LIMIT), group=GRAPH,
        metavar="N/DURATION|off", help="requests to Graph per period across all tenants",
    )  # fmt: skip
    config_file: str | None = _option(
        "--config.file", None, text, None, group=TENANTS, metavar="FILE",
        help="YAML file with the tenants and options (flags win over it); SIGHUP re-reads it. "
        "Without it, one tenant from the AZURE_* environment",
    )  # fmt: skip
    auth: str = _option(
        "--auth", None, one_of(AUTH_KINDS), "environment", group=TENANTS, metavar="|".join(AUTH_KINDS),
        help="one tenant from the environment: its AZURE_* credential, or a managed identity",
    )  # fmt: skip
    tenant_name: str | None = _option(
        "--tenant.name", None, text, None, group=TENANTS, metavar="NAME",
        help="the tenant label's value (default: AZURE_TENANT_ID)",
    )  # fmt: skip
    shard_count: int = _option(
        "--shard.count", None, whole(1), "1", group=SHARDS, metavar="N",
        help="replicas that share the tenants (1: no sharding)",
    )  # fmt: skip
    shard_index: int | None = _option(
        "--shard.index", None, whole(0), None, group=SHARDS, metavar="INDEX",
        help="this replica's shard, from 0 to --shard.count - 1",
    )  # fmt: skip
    shard_index_from_hostname: bool = _switch(
        "--shard.index-from-hostname",
        SHARDS,
        "take --shard.index from a host name ending in -<index> (a StatefulSet pod's)",
    )
    log_level: str = _option(
        "--log.level", None, one_of(LOG_LEVELS), "info", group=LOGGING, metavar="|".join(LOG_LEVELS),
        help="the least severe messages logged",
    )  # fmt: skip
    log_format: str = _option(
        "--log.format", None, one_of(LOG_FORMATS), "logfmt", group=LOGGING, metavar="|".join(LOG_FORMATS),
        help="one event a line, as logfmt or JSON",
    )  # fmt: skip
    demo: bool = _switch("--demo", MODES, "serve a simulated tenant: no credentials, no network")
    once: bool = _switch(
        "--once", MODES, "poll every tenant once, print the metrics to stdout and exit (1 if a poll failed)"
    )


OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for f in fields(Options)}
BY_KEY: dict[str, str] = {o.key: name for name, o in OPTIONS.items() if o.key is not None}
