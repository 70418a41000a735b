"""Without --config.file, one tenant from the AZURE_* environment: made into the mapping a file entry would
be, so that it goes through the same checks (exporter.config.tenants), with messages naming the variables."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from exporter.config.model import Tenant
from exporter.config.tenants import Entry, Found, read_tenant

# The variables, as --help lists them.
VARIABLES = {
    "AZURE_TENANT_ID": "the tenant's ID or primary domain",
    "AZURE_CLIENT_ID": "the app registration's application (client) ID",
    "AZURE_CLIENT_SECRET": "its client secret, or:",
    "AZURE_CLIENT_SECRET_FILE": "a file holding the client secret, or:",
    "AZURE_CLIENT_CERTIFICATE_PATH": "a PEM file with its certificate and private key,",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD": "  the private key's password, if any",
    "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN": "  true: send the chain (subject name/issuer auth), or:",
    "AZURE_FEDERATED_TOKEN_FILE": "a federated token (workload identity), re-read at each token request",
    "AZURE_AUTHORITY_HOST": "the identity platform, overriding the cloud's (https only)",
}
# The file's key -> the variable that gives it.
_KEYS = {
    "tenant_id": "AZURE_TENANT_ID",
    "client_id": "AZURE_CLIENT_ID",
    "client_secret_file": "AZURE_CLIENT_SECRET_FILE",
    "certificate_path": "AZURE_CLIENT_CERTIFICATE_PATH",
    "send_certificate_chain": "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
    "federated_token_file": "AZURE_FEDERATED_TOKEN_FILE",
}
# The file's key that names a variable holding a secret -> that variable.
_SECRET_VARIABLES = {
    "client_secret_env": "AZURE_CLIENT_SECRET",
    "certificate_password_env": "AZURE_CLIENT_CERTIFICATE_PASSWORD",
}
NAMES = {
    **_KEYS,
    **_SECRET_VARIABLES,
    "name": "--tenant.name",
    "source": "--source",
    "managed_identity": "--auth managed-identity",
    "credential": "credential",
}


def tenant_from_environment(
    env: Mapping[str, str], auth: str, name: str | None, source: str, found: Found
) -> Tenant | None:
    """The one tenant of the AZURE_* variables, `--auth` and `--tenant.name`; None (problems in found) if invalid."""
    given = {key: env[variable].strip() for key, variable in _KEYS.items() if env.get(variable, "").strip()}
    mapping: dict[str, object] = {"source": source}
    if name is not None:
        mapping["name"] = name
    if "tenant_id" in given:
        mapping["tenant_id"] = given.pop("tenant_id")
    if auth == "managed-identity":  # the environment's credentials are not used then
        client_id = given.get("client_id")
        mapping["managed_identity"] = {"client_id": client_id} if client_id else True
    else:
        mapping.update(given)
        mapping.update({key: var for key, var in _SECRET_VARIABLES.items() if env.get(var, "").strip()})
        if "certificate_path" not in mapping:  # set for another tenant's sake, perhaps: not this one's concern
            for key in ("certificate_password_env", "send_certificate_chain"):
                mapping.pop(key, None)
    return read_tenant(Entry("", mapping, Path(), found, NAMES), source, env)
