"""The configuration file (`--config.file`): top-level options and a list of tenants, in YAML.

It produces the same Config as flags and environment do, only with many tenants. Flags given on the
command line win over the file's options. Every problem is reported at once, each naming the file, the
tenant and the key. Secrets are never written in the file: it names files or environment variables that
hold them, and an inline secret is refused.

    poll:
      interval: 15m
    tenants:
      - name: contoso
        tenant_id: 5f1b7c8e-2a3d-4e6f-9a0b-1c2d3e4f5a6b
        client_id: 0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f
        client_secret_file: /run/secrets/contoso
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exporter.config.model import Tenant
from exporter.config.options import BY_KEY, OPTIONS
from exporter.config.tenants import Entry, Found, kind, read_tenant
from exporter.values import load_strict_yaml, parse_rate_limit

# An option's value as written, and where: the flag, or `path: key` in the file.
Given = tuple[object, str]


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
        document = load_strict_yaml(text)
    except ValueError as exc:
        problems.append(f"{path}: {exc}")
        return None
    if not isinstance(document, dict):
        problems.append(f"{path}: expected a mapping with a `tenants:` list at the top, got {kind(document)}")
        return None
    return document


def file_options(path: str, document: Mapping[str, Any], problems: list[str]) -> dict[str, Given]:
    """The top-level options, by Options field, each with where it was written; unknown keys are problems."""
    sections = {key.partition(".")[0] for key in BY_KEY if "." in key}
    found: dict[str, Given] = {}
    for key, value in document.items():
        if key == "tenants":
            continue
        if key in sections:
            if not isinstance(value, dict):
                problems.append(f"{path}: {key}: expected a mapping, got {kind(value)}")
                continue
            items = [(f"{key}.{sub}", sub_value) for sub, sub_value in value.items()]
        else:
            items = [(str(key), value)]
        for name, item in items:
            if name not in BY_KEY:
                problems.append(f"{path}: {name}: unknown key (known: {', '.join(sorted(BY_KEY))}, tenants)")
                continue
            option = OPTIONS[BY_KEY[name]]
            if item is False and option.parse is parse_rate_limit:
                item = "off"  # YAML 1.1 reads a bare `off` as false: in these keys it means "off"
            if option.kind is int and (isinstance(item, bool) or not isinstance(item, int)):
                problems.append(f"{path}: {name}: expected a whole number, got {kind(item)}")
            elif option.kind is str and not isinstance(item, str):
                example = f"'{option.default}'" if option.default else "'…'"
                problems.append(f"{path}: {name}: expected a string like {example}, got {kind(item)}")
            else:
                found[BY_KEY[name]] = (str(item), f"{path}: {name}")
    return found


def read_tenants(
    path: str, entries: object, default_source: str, env: Mapping[str, str], found: Found
) -> tuple[Tenant, ...]:
    if entries is None:
        found.problems.append(f"{path}: tenants: missing (a list of the tenants to poll)")
        return ()
    if not isinstance(entries, list) or not entries:
        found.problems.append(f"{path}: tenants: expected a list of at least one tenant, got {kind(entries)}")
        return ()
    tenants: list[Tenant] = []
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: tenants[{index}]"
        if not isinstance(entry, dict):
            found.problems.append(f"{where}: expected a mapping with name, tenant_id, client_id and a credential")
            continue
        if isinstance(entry.get("name"), str) and entry["name"].strip():
            where += f" {entry['name'].strip()!r}"
        tenant = read_tenant(Entry(where, entry, Path(path).parent, found), default_source, env)
        if tenant is None:
            continue
        for key, value, seen in (("name", tenant.name, names), ("tenant_id", tenant.tenant_id.lower(), ids)):
            if value in seen:
                found.problems.append(f"{where}: {key}: {value!r} is already used by {seen[value]}")
            else:
                seen[value] = where.removeprefix(f"{path}: ")
        tenants.append(tenant)
    return tuple(tenants)
