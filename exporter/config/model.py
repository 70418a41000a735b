"""The exporter's configuration as values: typed and frozen, built once and validated up front.

Secrets come only from the environment or from files, never from flags, and never show in a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from exporter.sharding import Shard
from exporter.values import RateLimit, Secret


@dataclass(frozen=True)
class Cloud:
    name: str
    graph_root: str
    authority_host: str


CLOUDS = {
    c.name: c
    for c in (
        Cloud("global", "https://graph.microsoft.com", "https://login.microsoftonline.com"),
        Cloud("usgov", "https://graph.microsoft.us", "https://login.microsoftonline.us"),
        Cloud("usgov-dod", "https://dod-graph.microsoft.us", "https://login.microsoftonline.us"),
        Cloud("china", "https://microsoftgraph.chinacloudapi.cn", "https://login.partner.microsoftonline.cn"),
    )
}
MICROSOFT_AUTHORITY_HOSTS = frozenset(urlsplit(c.authority_host).hostname for c in CLOUDS.values())

SOURCES = ("auto", "legacy", "details")
WHOLE = Shard()  # not sharded: every tenant
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")


GRAPH_GLOBAL_LIMIT = RateLimit(122, 10.0)  # Graph's identity reports: per app, across all its tenants


# --- credentials: exactly one per tenant -------------------------------------------------------


@dataclass(frozen=True)
class ClientSecret:
    secret: Secret


@dataclass(frozen=True)
class Certificate:
    path: Path
    password: Secret | None = None
    send_chain: bool = False


@dataclass(frozen=True)
class FederatedToken:
    """Workload identity federation: the token file is re-read at every token request (it rotates)."""

    token_file: Path


@dataclass(frozen=True)
class ManagedIdentity:
    """System-assigned when client_id is None, else user-assigned."""

    client_id: str | None = None


@dataclass(frozen=True)
class Demo:
    """No credential at all: the built-in simulated tenant."""


Credential = ClientSecret | Certificate | FederatedToken | ManagedIdentity | Demo


@dataclass(frozen=True)
class Tenant:
    name: str  # the `tenant` label
    tenant_id: str
    client_id: str | None
    credential: Credential
    source: str


@dataclass(frozen=True)
class Config:
    tenants: tuple[Tenant, ...]
    cloud: Cloud
    graph_root: str  # no trailing slash
    authority_host: str  # https://host[:port], no trailing slash
    poll_interval: float  # seconds
    poll_interval_text: str  # as the user wrote it, for HELP texts
    poll_timeout: float
    poll_concurrency: int
    listen_host: str
    listen_port: int
    log_level: str = "info"
    log_format: str = "logfmt"
    demo: bool = False
    once: bool = False
    http_timeout: float = 30.0
    page_size: int = 999
    max_pages: int = 10_000
    rate_limit: RateLimit | None = RateLimit(5, 10.0)  # noqa: RUF009 - frozen
    global_rate_limit: RateLimit | None = GRAPH_GLOBAL_LIMIT
    shard: Shard = WHOLE
    config_file: str | None = None  # the tenants come from this file (and SIGHUP re-reads it)
    web_config_file: Path | None = None  # validated and loaded by webconfig.load, not here
    # Files holding a credential, whose permissions are checked at start.
    secret_files: tuple[Path, ...] = ()
    # Every secret the exporter holds, so that log output can be scrubbed of them as a last line of defence.
    secrets: tuple[Secret, ...] = field(default=(), repr=False)
