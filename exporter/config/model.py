"""The exporter's configuration as values: typed and frozen, built once and validated up front.

Secrets come only from the environment or from files, never from flags, and never show in a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from exporter.sharding import Shard
from exporter.values import RateLimit, Secret

if TYPE_CHECKING:  # options.py imports the choices from here
    from exporter.config.options import Options


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
    """The validated configuration; its values come from `options` (exporter.config.options), resolved."""

    options: Options  # as parsed; a reload compares these to name what needs a restart
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
    telemetry_path: str
    log_level: str
    log_format: str
    demo: bool
    once: bool
    http_timeout: float
    page_size: int
    max_pages: int
    rate_limit: RateLimit | None
    global_rate_limit: RateLimit | None
    shard: Shard
    config_file: str | None  # the tenants come from this file (and SIGHUP re-reads it)
    # Files holding a credential, whose permissions are checked at start.
    secret_files: tuple[Path, ...]
    # Every secret the exporter holds, so that log output can be scrubbed of them as a last line of defence.
    secrets: tuple[Secret, ...] = field(repr=False)
