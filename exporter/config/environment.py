"""Flags and environment -> Config: a single tenant from the AZURE_* variables, or none when the tenants come
from --config.file. Every problem is collected and reported together (ConfigError)."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from exporter.config.model import (
    CLOUDS,
    LOG_FORMATS,
    LOG_LEVELS,
    SOURCES,
    Certificate,
    ClientSecret,
    Config,
    Credential,
    Demo,
    FederatedToken,
    ManagedIdentity,
    Tenant,
)
from exporter.errors import ConfigError
from exporter.sharding import build_shard
from exporter.values import (
    Secret,
    parse_bool,
    parse_duration,
    parse_https_url,
    parse_listen_address,
    parse_rate_limit,
)

# --- secret files ----------------------------------------------------------------------------


def _read_secret_file(path: str, what: str, problems: list[str]) -> Secret | None:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        problems.append(f"{what}: cannot read {path}: {exc.strerror or exc}")
        return None
    if not value:
        problems.append(f"{what}: {path} is empty")
        return None
    return Secret(value)


def _check_readable(path: str, what: str, problems: list[str]) -> None:
    if not os.access(path, os.R_OK) or not Path(path).is_file():
        problems.append(f"{what}: cannot read {path}")


# --- flags + environment -> Config -------------------------------------------------------------


@dataclass(frozen=True)
class Flags:
    """The command line, as strings, before validation (cli.py fills it from argparse)."""

    listen_address: str = ":9918"
    poll_interval: str = "15m"
    poll_timeout: str | None = None
    poll_concurrency: int = 8
    source: str = "auto"
    cloud: str = "global"
    graph_endpoint: str | None = None
    auth: str = "environment"
    tenant_name: str | None = None
    http_timeout: str = "30s"
    page_size: int = 999
    max_pages: int = 10_000
    rate_limit: str = "5/10s"
    log_level: str = "info"
    log_format: str = "logfmt"
    web_config_file: str | None = None
    demo: bool = False
    once: bool = False
    config_file: str | None = None
    global_rate_limit: str = "122/10s"
    shard_count: int = 1
    shard_index: int | None = None
    shard_index_from_hostname: bool = False


def build_config(flags: Flags, env: Mapping[str, str]) -> Config:
    """Validate flags and environment together; raise ConfigError naming every problem.

    With --config.file, the tenants are left empty: exporter.config.file reads them from the file.
    """
    problems: list[str] = []

    def duration(name: str, text: str, default: float = 0.0) -> float:
        try:
            return parse_duration(text)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            return default

    interval_text = flags.poll_interval
    if flags.demo and flags.poll_interval == Flags.poll_interval:
        interval_text = "30s"  # the demo should move while someone watches it
    interval = duration("--poll.interval", interval_text, 900.0)
    timeout = (
        duration("--poll.timeout", flags.poll_timeout, interval) if flags.poll_timeout is not None else interval * 0.8
    )
    if timeout > interval:
        problems.append("--poll.timeout: must not be longer than --poll.interval (polls never overlap)")
    http_timeout = duration("--graph.timeout", flags.http_timeout, 30.0)
    if not 1 <= flags.page_size <= 10_000:
        problems.append("--graph.page-size: must be from 1 to 10000 (Graph commonly allows 999)")
    if flags.max_pages < 1:
        problems.append("--graph.max-pages: must be at least 1")
    try:
        rate_limit = parse_rate_limit(flags.rate_limit)
    except ValueError as exc:
        problems.append(f"--graph.rate-limit: {exc}")
        rate_limit = None
    if flags.poll_concurrency < 1:
        problems.append("--poll.concurrency: must be at least 1")

    try:
        listen_host, listen_port = parse_listen_address(flags.listen_address)
    except ValueError as exc:
        problems.append(f"--web.listen-address: {exc}")
        listen_host, listen_port = "", 0

    if flags.log_level not in LOG_LEVELS:
        problems.append(f"--log.level: {flags.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if flags.log_format not in LOG_FORMATS:
        problems.append(f"--log.format: {flags.log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    if flags.demo and flags.config_file is not None:
        problems.append("--config.file: the demo serves its own simulated tenant; leave out one of the two")
    if flags.source not in SOURCES:
        problems.append(f"--source: {flags.source!r} is not one of {', '.join(SOURCES)}")

    cloud = CLOUDS.get(flags.cloud)
    if cloud is None:
        problems.append(f"--cloud: {flags.cloud!r} is not one of {', '.join(CLOUDS)}")
        cloud = CLOUDS["global"]
    graph_root = cloud.graph_root
    if flags.graph_endpoint is not None:
        try:
            graph_root = parse_https_url(flags.graph_endpoint, bare_host_ok=False)
        except ValueError as exc:
            problems.append(f"--graph.endpoint: {exc}")
    authority_host = cloud.authority_host
    if env.get("AZURE_AUTHORITY_HOST"):
        try:
            authority_host = parse_https_url(env["AZURE_AUTHORITY_HOST"], bare_host_ok=True)
        except ValueError as exc:
            problems.append(f"AZURE_AUTHORITY_HOST: {exc}")

    try:
        global_rate_limit = parse_rate_limit(flags.global_rate_limit)
    except ValueError as exc:
        problems.append(f"--graph.global-rate-limit: {exc}")
        global_rate_limit = None
    hostname = (env.get("HOSTNAME") or socket.gethostname()) if flags.shard_index_from_hostname else None
    shard = build_shard(flags.shard_count, flags.shard_index, hostname, problems)

    secrets: list[Secret] = []
    tenants: tuple[Tenant, ...]
    if flags.demo:
        tenants = (Tenant("demo", "00000000-0000-0000-0000-000000000000", None, Demo(), "demo"),)
    elif flags.config_file is not None:
        tenants = ()
    else:
        tenant = _tenant_from_env(flags, env, problems, secrets)
        tenants = (tenant,) if tenant else ()  # empty only when problems were found
    secret_files = tuple(
        Path(env[name].strip())
        for name in ("AZURE_CLIENT_SECRET_FILE", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE")
        if not flags.demo and flags.auth == "environment" and env.get(name, "").strip()
    )

    if problems:
        raise ConfigError(problems)
    return Config(
        tenants=tenants,
        cloud=cloud,
        graph_root=graph_root,
        authority_host=authority_host,
        poll_interval=interval,
        poll_interval_text=interval_text,
        poll_timeout=timeout,
        poll_concurrency=flags.poll_concurrency,
        listen_host=listen_host,
        listen_port=listen_port,
        log_level=flags.log_level,
        log_format=flags.log_format,
        demo=flags.demo,
        once=flags.once,
        http_timeout=http_timeout,
        global_rate_limit=global_rate_limit,
        shard=shard,
        config_file=None if flags.demo else flags.config_file,
        page_size=flags.page_size,
        max_pages=flags.max_pages,
        rate_limit=rate_limit,
        web_config_file=Path(flags.web_config_file) if flags.web_config_file else None,
        secret_files=secret_files,
        secrets=tuple(secrets),
    )


_TENANT_ID_RE = re.compile(r"^[A-Za-z0-9.-]+$")


def _tenant_from_env(flags: Flags, env: Mapping[str, str], problems: list[str], secrets: list[Secret]) -> Tenant | None:
    tenant_id = env.get("AZURE_TENANT_ID", "").strip()
    client_id = env.get("AZURE_CLIENT_ID", "").strip() or None
    if not tenant_id:
        problems.append("AZURE_TENANT_ID: not set (the tenant's ID or primary domain)")
    elif not _TENANT_ID_RE.match(tenant_id):
        problems.append(f"AZURE_TENANT_ID: {tenant_id!r} is not a tenant ID or domain name")

    credential: Credential | None = None
    if flags.auth == "managed-identity":
        credential = ManagedIdentity(client_id)
    elif flags.auth == "environment":
        credential = _credential_from_env(env, problems, secrets)
        if client_id is None:
            problems.append("AZURE_CLIENT_ID: not set (the application (client) ID of the app registration)")
    else:
        problems.append(f"--auth: {flags.auth!r} is not one of environment, managed-identity")

    if credential is None or problems:
        return None
    name = flags.tenant_name if flags.tenant_name else tenant_id
    return Tenant(name, tenant_id, client_id, credential, flags.source)


def _credential_from_env(env: Mapping[str, str], problems: list[str], secrets: list[Secret]) -> Credential | None:
    given = [
        name
        for name in (
            "AZURE_CLIENT_SECRET",
            "AZURE_CLIENT_SECRET_FILE",
            "AZURE_CLIENT_CERTIFICATE_PATH",
            "AZURE_FEDERATED_TOKEN_FILE",
        )
        if env.get(name, "").strip()
    ]
    if not given:
        problems.append(
            "credentials: set one of AZURE_CLIENT_SECRET, AZURE_CLIENT_SECRET_FILE, "
            "AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE (or use --auth managed-identity)"
        )
        return None
    if len(given) > 1:
        problems.append(f"credentials: set only one of {', '.join(given)}")
        return None
    (kind,) = given
    value = env[kind].strip()
    if kind == "AZURE_CLIENT_SECRET":
        secret = Secret(value)
        secrets.append(secret)
        return ClientSecret(secret)
    if kind == "AZURE_CLIENT_SECRET_FILE":
        file_secret = _read_secret_file(value, kind, problems)
        if file_secret is None:
            return None
        secrets.append(file_secret)
        return ClientSecret(file_secret)
    if kind == "AZURE_FEDERATED_TOKEN_FILE":
        _check_readable(value, kind, problems)
        return FederatedToken(Path(value))
    _check_readable(value, kind, problems)
    password = None
    if env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"):
        password = Secret(env["AZURE_CLIENT_CERTIFICATE_PASSWORD"])
        secrets.append(password)
    try:
        send_chain = parse_bool(env.get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", ""))
    except ValueError as exc:
        problems.append(f"AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: {exc}")
        send_chain = False
    return Certificate(Path(value), password, send_chain)
