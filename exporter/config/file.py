"""The configuration file (`--config.file`): top-level options and a list of tenants, in YAML.

It produces the same Config as flags and environment do (exporter.config), only with many tenants.
Flags given on the command line win over the file's options. Every problem is reported at once, each
naming the file, the tenant and the key. Secrets are never written in the file: it names files or
environment variables that hold them, and an inline secret is refused.

    poll:
      interval: 15m
    tenants:
      - name: contoso
        tenant_id: 5f1b7c8e-2a3d-4e6f-9a0b-1c2d3e4f5a6b
        client_id: 0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f
        client_secret_file: /run/secrets/contoso
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from exporter.config.environment import _TENANT_ID_RE, Flags, _check_readable, _read_secret_file, build_config
from exporter.config.model import (
    SOURCES,
    Certificate,
    ClientSecret,
    Config,
    Credential,
    FederatedToken,
    ManagedIdentity,
    Tenant,
)
from exporter.errors import ConfigError
from exporter.values import Secret

# Top-level options: the file's key -> (Flags field, the flag that overrides it, the YAML type it takes).
# A flag `--a.b-c` is the key `b_c` in the section `a`.
OPTIONS: dict[str, tuple[str, str, type]] = {
    "cloud": ("cloud", "--cloud", str),
    "source": ("source", "--source", str),
    "graph.endpoint": ("graph_endpoint", "--graph.endpoint", str),
    "graph.timeout": ("http_timeout", "--graph.timeout", str),
    "graph.rate_limit": ("rate_limit", "--graph.rate-limit", str),
    "graph.global_rate_limit": ("global_rate_limit", "--graph.global-rate-limit", str),
    "graph.page_size": ("page_size", "--graph.page-size", int),
    "graph.max_pages": ("max_pages", "--graph.max-pages", int),
    "poll.interval": ("poll_interval", "--poll.interval", str),
    "poll.timeout": ("poll_timeout", "--poll.timeout", str),
    "poll.concurrency": ("poll_concurrency", "--poll.concurrency", int),
}
# YAML 1.1 reads a bare `off` as false: in these keys it means "off".
_RATE_KEYS = frozenset({"graph.rate_limit", "graph.global_rate_limit"})

CREDENTIAL_KEYS = (
    "client_secret_file",
    "client_secret_env",
    "certificate_path",
    "federated_token_file",
    "managed_identity",
)
TENANT_KEYS = frozenset(
    {"name", "tenant_id", "client_id", "source", "certificate_password_file", "send_certificate_chain"}
    | set(CREDENTIAL_KEYS)
)
# Keys that would put a secret in the file itself, and what to write instead.
INLINE_SECRETS = {
    "client_secret": "client_secret_file or client_secret_env",
    "secret": "client_secret_file or client_secret_env",
    "certificate_password": "certificate_password_file",
    "password": "certificate_password_file",
    "private_key": "certificate_path",
    "certificate": "certificate_path",
    "client_assertion": "federated_token_file",
    "federated_token": "federated_token_file",
}
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key written twice in one mapping (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_document(path: str, problems: list[str]) -> dict[str, Any] | None:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"--config.file: cannot read {path}: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        problems.append(f"--config.file: {path} is not UTF-8 text")
        return None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problems.append(f"{path}: {where}not valid YAML: {exc.problem or exc.context}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {' '.join(str(exc).split())}")
        return None
    if not isinstance(document, dict):
        problems.append(f"{path}: expected a mapping with a `tenants:` list at the top, got {_kind(document)}")
        return None
    return document


def file_options(path: str, document: Mapping[str, Any], problems: list[str]) -> dict[str, object]:
    """The top-level options, as Flags fields; unknown or mistyped keys are problems."""
    sections = {key.partition(".")[0] for key in OPTIONS if "." in key}
    found: dict[str, object] = {}
    for key, value in document.items():
        if key == "tenants":
            continue
        if key in sections:
            if not isinstance(value, dict):
                problems.append(f"{path}: {key}: expected a mapping, got {_kind(value)}")
                continue
            items = [(f"{key}.{sub}", sub_value) for sub, sub_value in value.items()]
        else:
            items = [(str(key), value)]
        for name, item in items:
            if name not in OPTIONS:
                known = ", ".join(sorted(OPTIONS))
                problems.append(f"{path}: {name}: unknown key (known: {known}, tenants)")
                continue
            field, _flag, kind = OPTIONS[name]
            if name in _RATE_KEYS and item is False:
                item = "off"
            if kind is int and (isinstance(item, bool) or not isinstance(item, int)):
                problems.append(f"{path}: {name}: expected a whole number, got {_kind(item)}")
            elif kind is str and not isinstance(item, str):
                problems.append(f"{path}: {name}: expected a string like {_example(name)}, got {_kind(item)}")
            else:
                found[field] = item
    return found


def load(flags: Flags, explicit: Collection[str], env: Mapping[str, str]) -> Config:
    """The Config of `flags.config_file`, with `explicit` (Flags fields given as flags) winning over it."""
    assert flags.config_file is not None
    path = flags.config_file
    problems: list[str] = []
    for field, flag, instead in (
        ("tenant_name", "--tenant.name", "its `name`"),
        ("auth", "--auth", "its credential (`managed_identity: true`, …)"),
    ):
        if field in explicit:
            problems.append(f"{flag}: only for one tenant from the environment; in {path}, each tenant has {instead}")
    document = read_document(path, problems)
    options = file_options(path, document, problems) if document is not None else {}
    from_file = {field: value for field, value in options.items() if field not in explicit}
    merged = replace(flags, **from_file)  # type: ignore[arg-type]
    config: Config | None = None
    try:
        config = build_config(merged, env)
    except ConfigError as exc:
        problems.extend(_blame_file(exc.problems, path, from_file))
    tenants: tuple[Tenant, ...] = ()
    secrets: list[Secret] = []
    if document is not None:
        base = Path(path).parent
        tenants = read_tenants(path, document.get("tenants"), merged.source, base, env, problems, secrets)
    if problems or config is None:
        raise ConfigError(problems)
    return replace(config, tenants=tenants, secrets=config.secrets + tuple(secrets))


def _blame_file(problems: list[str], path: str, from_file: Mapping[str, object]) -> list[str]:
    """Name the file's key, not the flag, in a problem with a value that came from the file."""
    flag_to_key = {flag: key for key, (field, flag, _) in OPTIONS.items() if field in from_file}
    out = []
    for problem in problems:
        flag, sep, rest = problem.partition(":")
        out.append(f"{path}: {flag_to_key[flag]}:{rest}" if sep and flag in flag_to_key else problem)
    return out


def read_tenants(
    path: str,
    entries: object,
    default_source: str,
    base: Path,
    env: Mapping[str, str],
    problems: list[str],
    secrets: list[Secret],
) -> tuple[Tenant, ...]:
    if entries is None:
        problems.append(f"{path}: tenants: missing (a list of the tenants to poll)")
        return ()
    if not isinstance(entries, list) or not entries:
        problems.append(f"{path}: tenants: expected a list of at least one tenant, got {_kind(entries)}")
        return ()
    tenants: list[Tenant] = []
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: tenants[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: expected a mapping with name, tenant_id, client_id and a credential")
            continue
        if isinstance(entry.get("name"), str) and entry["name"].strip():
            where += f" {entry['name'].strip()!r}"
        tenant = _tenant(_Entry(where, entry, base, problems), default_source, env, secrets)
        if tenant is None:
            continue
        for key, value, seen in (("name", tenant.name, names), ("tenant_id", tenant.tenant_id.lower(), ids)):
            if value in seen:
                problems.append(f"{where}: {key}: {value!r} is already used by {seen[value]}")
            else:
                seen[value] = where.removeprefix(f"{path}: ")
        tenants.append(tenant)
    return tuple(tenants)


class _Entry:
    """One tenant's mapping, and how to report a problem with one of its keys."""

    def __init__(self, where: str, mapping: Mapping[str, Any], base: Path, problems: list[str]) -> None:
        self.where = where
        self.mapping = mapping
        self.base = base
        self.problems = problems

    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"{self.where}: {key}: {message}")

    def text(self, key: str) -> str | None:
        value = self.mapping.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad(key, f"expected a non-empty string, got {_kind(value)}")
            return None
        return value.strip()

    def path(self, key: str) -> str | None:
        """A file name; a relative one is relative to the configuration file's folder."""
        value = self.text(key)
        return None if value is None else str(self.base / Path(value).expanduser())


def _tenant(e: _Entry, default_source: str, env: Mapping[str, str], secrets: list[Secret]) -> Tenant | None:
    before = len(e.problems)
    for key in e.mapping:
        if key in INLINE_SECRETS:
            e.bad(key, f"secrets are never written in the file: use {INLINE_SECRETS[key]}")
        elif key not in TENANT_KEYS:
            e.bad(key, f"unknown key (known: {', '.join(sorted(TENANT_KEYS))})")

    tenant_id = e.text("tenant_id")
    if "tenant_id" not in e.mapping:
        e.bad("tenant_id", "missing (the tenant's ID or primary domain)")
    elif tenant_id is not None and not _TENANT_ID_RE.match(tenant_id):
        e.bad("tenant_id", f"{tenant_id!r} is not a tenant ID or domain name")
    name = e.text("name") or tenant_id
    client_id = e.text("client_id")
    source = e.text("source") or default_source
    if source not in SOURCES:
        e.bad("source", f"{source!r} is not one of {', '.join(SOURCES)}")

    given = [key for key in CREDENTIAL_KEYS if e.mapping.get(key) not in (None, False)]
    credential: Credential | None = None
    if not given:
        e.bad("credential", f"missing: give exactly one of {', '.join(CREDENTIAL_KEYS)}")
    elif len(given) > 1:
        e.bad(given[1], f"give exactly one credential, not {' and '.join(given)}")
    else:
        credential = _credential(given[0], e, env, secrets)
    if given[:1] != ["certificate_path"]:
        for key in ("certificate_password_file", "send_certificate_chain"):
            if key in e.mapping:
                e.bad(key, "only goes with certificate_path")
    if isinstance(credential, ManagedIdentity):
        if "client_id" in e.mapping:
            e.bad("client_id", "not used with managed_identity; a user-assigned identity's goes under it")
        client_id = credential.client_id
    elif "client_id" not in e.mapping:
        e.bad("client_id", "missing (the application (client) ID of the app registration)")

    if len(e.problems) > before or credential is None or name is None or tenant_id is None:
        return None
    return Tenant(name, tenant_id, client_id, credential, source)


def _credential(kind: str, e: _Entry, env: Mapping[str, str], secrets: list[Secret]) -> Credential | None:
    if kind == "managed_identity":
        value = e.mapping[kind]
        if value is True:
            return ManagedIdentity()
        if isinstance(value, dict) and set(value) == {"client_id"} and isinstance(value["client_id"], str):
            return ManagedIdentity(value["client_id"].strip() or None)
        e.bad(kind, "expected true (system-assigned) or {client_id: …} (user-assigned)")
        return None
    if kind == "client_secret_env":
        variable = e.text(kind)
        if variable is None:
            return None
        if not _ENV_NAME_RE.match(variable):
            # Not echoed: a secret pasted here by mistake must not reach the log.
            e.bad(kind, "expected the name of an environment variable (letters, digits, _), not the secret itself")
            return None
        if not env.get(variable, "").strip():
            e.bad(kind, f"the environment variable {variable} is not set")
            return None
        secret = Secret(env[variable].strip())
        secrets.append(secret)
        return ClientSecret(secret)
    path = e.path(kind)
    if path is None:
        return None
    if kind == "client_secret_file":
        file_secret = _read_secret_file(path, f"{e.where}: {kind}", e.problems)
        if file_secret is None:
            return None
        secrets.append(file_secret)
        return ClientSecret(file_secret)
    _check_readable(path, f"{e.where}: {kind}", e.problems)
    if kind == "federated_token_file":
        return FederatedToken(Path(path))
    password = None
    password_path = e.path("certificate_password_file")
    if password_path is not None:
        password = _read_secret_file(password_path, f"{e.where}: certificate_password_file", e.problems)
        if password is not None:
            secrets.append(password)
    send_chain = e.mapping.get("send_certificate_chain", False)
    if not isinstance(send_chain, bool):
        e.bad("send_certificate_chain", f"expected true or false, got {_kind(send_chain)}")
        send_chain = False
    return Certificate(Path(path), password, send_chain)


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str | int | float | bool):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__


def _example(key: str) -> str:
    return {
        "interval": "'15m'",
        "timeout": "'30s'",
        "rate_limit": "'5/10s' or off",
        "global_rate_limit": "'122/10s' or off",
    }.get(key.rpartition(".")[2], "'…'")
