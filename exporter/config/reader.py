"""Command line, file and environment -> one validated Config; every problem reported at once (ConfigError).

Each option's value comes from the command line, else from --config.file, else its default (see
exporter.config.options); a message names the flag or the file key, whichever the user wrote.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import fields, replace

from exporter.config.environment import tenant_from_environment
from exporter.config.file import Given, file_options, read_document, read_tenants
from exporter.config.model import CLOUDS, Config, Demo, Tenant
from exporter.config.options import OPTIONS, Options
from exporter.config.tenants import Found
from exporter.errors import ConfigError
from exporter.sharding import build_shard
from exporter.values import parse_https_url

DEMO_INTERVAL = "30s"  # the demo should move while someone watches it
DEMO_TENANT = Tenant("demo", "00000000-0000-0000-0000-000000000000", None, Demo(), "demo")


def read_config(command_line: Mapping[str, object], env: Mapping[str, str]) -> Config:
    """The Config of the options written on the command line (by Options field) and the environment."""
    found = Found()
    given: dict[str, Given] = {name: (value, OPTIONS[name].flag) for name, value in command_line.items()}
    config_file = command_line.get("config_file")
    demo = bool(command_line.get("demo"))
    document = None
    if config_file is not None and not demo:
        path = str(config_file)
        for name, instead in (("tenant_name", "its `name`"), ("auth", "its credential (`managed_identity: true`, …)")):
            if name in given:
                flag = OPTIONS[name].flag
                found.problems.append(
                    f"{flag}: only for one tenant from the environment; in {path}, each has {instead}"
                )
        document = read_document(path, found.problems)
        if document is not None:
            given = {**file_options(path, document, found.problems), **given}  # the command line wins
    if demo and "poll_interval" not in given:
        given["poll_interval"] = (DEMO_INTERVAL, "--demo")
    options = _parse(given, found.problems)
    where = {name: origin for name, (_, origin) in given.items()}

    def named(name: str) -> str:
        return where.get(name, OPTIONS[name].flag)

    timeout = options.poll_timeout if options.poll_timeout is not None else options.poll_interval * 0.8
    if timeout > options.poll_interval:
        found.problems.append(
            f"{named('poll_timeout')}: must not be longer than {named('poll_interval')} (polls never overlap)"
        )
    if demo and config_file is not None:
        found.problems.append("--config.file: the demo serves its own simulated tenant; leave out one of the two")
    cloud = CLOUDS[options.cloud]
    authority_host = cloud.authority_host
    if env.get("AZURE_AUTHORITY_HOST"):
        try:
            authority_host = parse_https_url(env["AZURE_AUTHORITY_HOST"], bare_host_ok=True)
        except ValueError as exc:
            found.problems.append(f"AZURE_AUTHORITY_HOST: {exc}")
    hostname = (env.get("HOSTNAME") or socket.gethostname()) if options.shard_index_from_hostname else None
    shard = build_shard(options.shard_count, options.shard_index, hostname, found.problems)

    tenants: tuple[Tenant, ...] = ()
    if demo:
        tenants = (DEMO_TENANT,)
    elif document is not None:
        tenants = read_tenants(str(config_file), document.get("tenants"), options.source, env, found)
    elif config_file is None:
        tenant = tenant_from_environment(env, options.auth, options.tenant_name, options.source, found)
        tenants = (tenant,) if tenant else ()
    if found.problems:
        raise ConfigError(found.problems)
    return Config(
        options=options,
        tenants=tenants,
        cloud=cloud,
        graph_root=options.graph_endpoint or cloud.graph_root,
        authority_host=authority_host,
        poll_interval=options.poll_interval,
        poll_interval_text=str(given.get("poll_interval", (OPTIONS["poll_interval"].default, ""))[0]).strip(),
        poll_timeout=timeout,
        poll_concurrency=options.poll_concurrency,
        listen_host=options.listen_address[0],
        listen_port=options.listen_address[1],
        telemetry_path=options.telemetry_path,
        log_level=options.log_level,
        log_format=options.log_format,
        demo=demo,
        once=options.once,
        http_timeout=options.http_timeout,
        page_size=options.page_size,
        max_pages=options.max_pages,
        rate_limit=options.rate_limit,
        global_rate_limit=options.global_rate_limit,
        shard=shard,
        config_file=None if demo else options.config_file,
        secret_files=tuple(dict.fromkeys(found.files)),
        secrets=tuple(found.secrets),
    )


def _parse(given: Mapping[str, Given], problems: list[str]) -> Options:
    """Each given option parsed by its row of the table; a bad value is a problem, and the default stands in."""
    values: dict[str, object] = {}
    for name, (value, origin) in given.items():
        text = value if isinstance(value, str) else str(value).lower()
        try:
            values[name] = OPTIONS[name].parse(text)
        except ValueError as exc:
            problems.append(f"{origin}: {exc}")
    return replace(Options(), **values)  # type: ignore[arg-type]


def changed_options(running: Options, new: Options) -> tuple[str, ...]:
    """The options that differ, by Options field."""
    return tuple(f.name for f in fields(Options) if getattr(running, f.name) != getattr(new, f.name))
