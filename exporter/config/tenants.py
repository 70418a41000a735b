"""One tenant reader: a tenant's mapping (a --config.file entry, or the environment made into one) -> Tenant.

Both go through the same checks, so a tenant is valid or refused for the same reasons wherever it was
written; only the names in the messages differ (`tenants[0] 'contoso': client_id` or `AZURE_CLIENT_ID`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.config.model import (
    SOURCES,
    Certificate,
    ClientSecret,
    Credential,
    FederatedToken,
    ManagedIdentity,
    Tenant,
)
from exporter.values import Secret, parse_bool

CREDENTIAL_KEYS = (
    "client_secret_file",
    "client_secret_env",
    "certificate_path",
    "federated_token_file",
    "managed_identity",
)
CERTIFICATE_KEYS = ("certificate_password_file", "certificate_password_env", "send_certificate_chain")
TENANT_KEYS = frozenset({"name", "tenant_id", "client_id", "source", *CREDENTIAL_KEYS, *CERTIFICATE_KEYS})
# Keys that would put a secret in the file itself, and what to write instead.
INLINE_SECRETS = {
    "client_secret": "client_secret_file or client_secret_env",
    "secret": "client_secret_file or client_secret_env",
    "certificate_password": "certificate_password_file or certificate_password_env",
    "password": "certificate_password_file or certificate_password_env",
    "private_key": "certificate_path",
    "certificate": "certificate_path",
    "client_assertion": "federated_token_file",
    "federated_token": "federated_token_file",
}
# Shorter secrets are refused: no real one is this short, and scrubbing one from the logs would mangle them
# (every `x` in every line) and reveal it by the pattern.
MIN_SECRET_LENGTH = 8
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TENANT_ID_RE = re.compile(r"^[A-Za-z0-9.-]+$")


@dataclass
class Found:
    """What reading tenants gathers besides them: every problem, secret and file that holds a credential."""

    problems: list[str] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


@dataclass
class Entry:
    """One tenant's mapping, and how to name its keys in a message."""

    where: str  # `path: tenants[0] 'contoso'`, or "" for the environment
    mapping: Mapping[str, Any]
    base: Path  # relative file names are relative to this folder
    found: Found
    names: Mapping[str, str] = field(default_factory=dict)  # key -> what the user wrote instead (AZURE_…)

    def label(self, key: str) -> str:
        name = self.names.get(key, key)
        return f"{self.where}: {name}" if self.where else name

    def bad(self, key: str, message: str) -> None:
        self.found.problems.append(f"{self.label(key)}: {message}")

    def text(self, key: str) -> str | None:
        value = self.mapping.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad(key, f"expected a non-empty string, got {kind(value)}")
            return None
        return value.strip()

    def path(self, key: str) -> Path | None:
        value = self.text(key)
        return None if value is None else self.base / Path(value).expanduser()

    def secret(self, key: str, value: str) -> Secret | None:
        if len(value) < MIN_SECRET_LENGTH:
            self.bad(key, f"shorter than {MIN_SECRET_LENGTH} characters: too short to be safe (refused)")
            return None
        secret = Secret(value)
        self.found.secrets.append(secret)
        return secret

    def secret_from_file(self, key: str) -> Secret | None:
        path = self.path(key)
        if path is None:
            return None
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.bad(key, f"cannot read {path}: {exc.strerror or exc}")
            return None
        self.found.files.append(path)
        if not value:
            self.bad(key, f"{path} is empty")
            return None
        return self.secret(key, value)

    def secret_from_env(self, key: str, env: Mapping[str, str]) -> Secret | None:
        variable = self.text(key)
        if variable is None:
            return None
        if not _ENV_NAME_RE.match(variable):
            # Not echoed: a secret pasted here by mistake must not reach the log.
            self.bad(key, "expected the name of an environment variable (letters, digits, _), not the secret itself")
            return None
        if not env.get(variable, "").strip():
            self.bad(key, f"the environment variable {variable} is not set")
            return None
        return self.secret(key, env[variable].strip())

    def readable(self, key: str) -> Path | None:
        path = self.path(key)
        if path is not None and (not os.access(path, os.R_OK) or not path.is_file()):
            self.bad(key, f"cannot read {path}")
            return None
        if path is not None:
            self.found.files.append(path)
        return path


def read_tenant(e: Entry, default_source: str, env: Mapping[str, str]) -> Tenant | None:
    """The tenant of one mapping; None (with the problems in e.found) when it is not valid."""
    before = len(e.found.problems)
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
        e.bad("credential", f"missing: give exactly one of {', '.join(e.names.get(k, k) for k in CREDENTIAL_KEYS)}")
    elif len(given) > 1:
        e.bad(given[1], f"give exactly one credential, not {' and '.join(e.names.get(k, k) for k in given)}")
    else:
        credential = _credential(given[0], e, env)
    if given[:1] != ["certificate_path"]:
        for key in CERTIFICATE_KEYS:
            if key in e.mapping:
                e.bad(key, "only goes with certificate_path")
    if isinstance(credential, ManagedIdentity):
        if "client_id" in e.mapping:
            e.bad("client_id", "not used with managed_identity; a user-assigned identity's goes under it")
        client_id = credential.client_id
    elif "client_id" not in e.mapping:
        e.bad("client_id", "missing (the application (client) ID of the app registration)")

    if len(e.found.problems) > before or credential is None or name is None or tenant_id is None:
        return None
    return Tenant(name, tenant_id, client_id, credential, source)


def _credential(key: str, e: Entry, env: Mapping[str, str]) -> Credential | None:
    if key == "managed_identity":
        value = e.mapping[key]
        if value is True:
            return ManagedIdentity()
        if isinstance(value, dict) and set(value) == {"client_id"} and isinstance(value["client_id"], str):
            return ManagedIdentity(value["client_id"].strip() or None)
        e.bad(key, "expected true (system-assigned) or {client_id: …} (user-assigned)")
        return None
    if key in ("client_secret_file", "client_secret_env"):
        secret = e.secret_from_file(key) if key == "client_secret_file" else e.secret_from_env(key, env)
        return None if secret is None else ClientSecret(secret)
    path = e.readable(key)
    if path is None:
        return None
    if key == "federated_token_file":
        return FederatedToken(path)
    password = None
    if "certificate_password_file" in e.mapping:
        password = e.secret_from_file("certificate_password_file")
    elif "certificate_password_env" in e.mapping:
        password = e.secret_from_env("certificate_password_env", env)
    send_chain = e.mapping.get("send_certificate_chain", False)
    if isinstance(send_chain, str):
        try:
            send_chain = parse_bool(send_chain)
        except ValueError as exc:
            e.bad("send_certificate_chain", str(exc))
            send_chain = False
    if not isinstance(send_chain, bool):
        e.bad("send_certificate_chain", f"expected true or false, got {kind(send_chain)}")
        send_chain = False
    return Certificate(path, password, send_chain)


def kind(value: object) -> str:
    """What a YAML value is, for a message: `str 'many'`, `int 15`, `list`."""
    if value is None:
        return "nothing"
    if isinstance(value, str | int | float | bool):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__
