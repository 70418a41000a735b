"""The web configuration file (`--web.config.file`), in the Prometheus exporter-toolkit format.

Same keys and meanings as the toolkit, so an existing file carries over:

    tls_server_config:
      cert_file: server.crt            # relative paths are relative to this file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: clients-ca.crt
      min_version: TLS12
    http_server_config:
      headers:
        Strict-Transport-Security: max-age=31536000
    basic_auth_users:
      prometheus: $2y$10$...           # bcrypt hashes

Unknown keys are errors, as in the toolkit (it reads the file strictly). Toolkit options that this exporter
cannot honour are errors too, never silently ignored, because ignoring an access rule grants access:
inline `cert`/`key` (put them in files), `cipher_suites`, `curve_preferences`, and the client auth type
`RequireAnyClientCert` (Python's ssl module cannot ask for a certificate without verifying it). Every problem
is reported at once, as ConfigError.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.errors import ConfigError
from exporter.values import Secret, load_strict_yaml, parse_duration
from exporter.web.tls import CLIENT_AUTH_TYPES, TLS_VERSIONS, TLSSettings, make_ssl_context, reason

# The toolkit's list, with its allowed values where it restricts them (None: any value).
HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
_UNSUPPORTED = {
    "cert": "inline certificates are not supported: put it in a file and use cert_file",
    "key": "inline keys are not supported: put it in a file and use key_file",
    "cipher_suites": "not supported by this exporter (OpenSSL's defaults apply)",
    "curve_preferences": "not supported by this exporter (OpenSSL's defaults apply)",
}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "client_ca",
    "min_version",
    "max_version",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
    *_UNSUPPORTED,
}
_BCRYPT_RE = re.compile(r"^\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")  # what bcrypt.checkpw reads


@dataclass(frozen=True)
class ThrottleLimit:
    """The toolkit's token bucket over all requests: one token every `interval` seconds, `burst` at most."""

    interval: float
    burst: int


@dataclass(frozen=True)
class WebConfig:
    """One valid reading of the file. `context` is the TLS context built from it (None: plain HTTP)."""

    path: Path
    tls: TLSSettings | None = None
    users: Mapping[str, Secret] = field(default_factory=dict, repr=False)  # user -> bcrypt hash
    headers: tuple[tuple[str, str], ...] = ()
    rate_limit: ThrottleLimit | None = None
    context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def files(self) -> tuple[Path, ...]:
        """Every file whose change means the configuration must be read again."""
        return (self.path,) + (self.tls.files() if self.tls else ())


def read_web_config(path: Path) -> WebConfig:
    """Read and validate the file and everything it names; raise ConfigError listing every problem."""
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"--web.config.file: cannot read {path}: {reason(exc)}"]) from None
    try:
        document = load_strict_yaml(text)  # a user named twice is refused, not the last hash silently winning
    except ValueError as exc:
        raise ConfigError([f"--web.config.file: {path}: {exc}"]) from None
    if document is None:
        document = {}  # an empty file is valid in the toolkit: no TLS, no authentication
    if not isinstance(document, dict):
        raise ConfigError([f"--web.config.file: {path} must hold a YAML mapping"])

    where = f"--web.config.file {path}"
    for key in document:
        if key not in ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"):
            problems.append(f"{where}: unknown key {key!r}")
    tls = _tls(document.get("tls_server_config"), path.parent, f"{where}: tls_server_config", problems)
    headers = _headers(document.get("http_server_config"), f"{where}: http_server_config", problems)
    users = _users(document.get("basic_auth_users"), f"{where}: basic_auth_users", problems)
    rate_limit = _rate_limit(document.get("rate_limit"), f"{where}: rate_limit", problems)
    context = None
    if tls is not None and not problems:
        try:
            context = make_ssl_context(tls)
        except ValueError as exc:
            problems.append(f"{where}: tls_server_config: {exc}")
    if problems:
        raise ConfigError(problems)
    return WebConfig(path=path, tls=tls, users=users, headers=headers, rate_limit=rate_limit, context=context)


def _tls(section: Any, base: Path, where: str, problems: list[str]) -> TLSSettings | None:
    if section is None or section == {}:
        return None
    if not isinstance(section, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    for key in section:
        if key not in _TLS_KEYS:
            problems.append(f"{where}: unknown key {key!r}")
        elif key in _UNSUPPORTED:
            problems.append(f"{where}: {key}: {_UNSUPPORTED[key]}")

    def text(key: str, default: str | None = None) -> str | None:
        value = section.get(key, default)
        if value is None or (isinstance(value, str) and value):
            return value
        problems.append(f"{where}: {key}: must be a non-empty string")
        return None

    def file(key: str) -> Path | None:
        name = text(key)
        if name is None:
            return None
        resolved = base / name  # relative to the web config file, as in the toolkit
        if not resolved.is_file():
            problems.append(f"{where}: {key}: {resolved} is not a readable file")
        return resolved

    cert_file, key_file, ca_file = file("cert_file"), file("key_file"), file("client_ca_file")
    for key, value in (("cert_file", cert_file), ("key_file", key_file)):
        if value is None and key not in section:
            problems.append(f"{where}: {key} is missing (TLS needs both cert_file and key_file)")
    client_auth = text("client_auth_type", "NoClientCert") or "NoClientCert"
    if client_auth == "RequireAnyClientCert":
        problems.append(
            f"{where}: client_auth_type: RequireAnyClientCert (any certificate, unverified) is not supported: "
            "use RequireAndVerifyClientCert with client_ca_file"
        )
    elif client_auth not in CLIENT_AUTH_TYPES:
        problems.append(f"{where}: client_auth_type: {client_auth!r} is not one of {', '.join(CLIENT_AUTH_TYPES)}")
    client_ca = text("client_ca")
    if (ca_file or client_ca) and CLIENT_AUTH_TYPES.get(client_auth) == ssl.CERT_NONE:
        problems.append(f"{where}: a client CA is configured but client_auth_type {client_auth} never checks it")
    if ca_file and client_ca:
        problems.append(f"{where}: set only one of client_ca_file and client_ca")
    versions = []
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        version = text(key, default) or default
        if version not in TLS_VERSIONS:
            problems.append(f"{where}: {key}: {version!r} is not one of {', '.join(TLS_VERSIONS)}")
            version = default
        versions.append(version)
    if TLS_VERSIONS[versions[0]] > TLS_VERSIONS[versions[1]]:
        problems.append(f"{where}: min_version {versions[0]} is above max_version {versions[1]}")
    sans = section.get("client_allowed_sans") or []
    if not isinstance(sans, list) or not all(isinstance(san, str) and san for san in sans):
        problems.append(f"{where}: client_allowed_sans: must be a list of names")
        sans = []
    elif sans and client_auth != "RequireAndVerifyClientCert":
        # The toolkit's rule: with an optional certificate there may be no SAN to match, and nothing is refused.
        problems.append(f"{where}: client_allowed_sans needs client_auth_type RequireAndVerifyClientCert")
    prefer = section.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        problems.append(f"{where}: prefer_server_cipher_suites: must be true or false")
    if cert_file is None or key_file is None:
        return None
    return TLSSettings(
        cert_file=cert_file,
        key_file=key_file,
        client_auth_type=client_auth,
        client_ca_file=ca_file,
        client_ca=client_ca,
        min_version=versions[0],
        max_version=versions[1],
        prefer_server_cipher_suites=prefer is not False,
        client_allowed_sans=tuple(sans),
    )


def _headers(section: Any, where: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    if section is None:
        return ()
    if not isinstance(section, dict):
        problems.append(f"{where}: must be a mapping")
        return ()
    for key in section:
        if key not in ("headers", "http2"):
            problems.append(f"{where}: unknown key {key!r}")
    if not isinstance(section.get("http2", True), bool):
        problems.append(f"{where}: http2: must be true or false")  # accepted for compatibility; HTTP/1.1 only
    headers = section.get("headers") or {}
    if not isinstance(headers, dict):
        problems.append(f"{where}: headers: must be a mapping")
        return ()
    out = []
    for name, value in headers.items():
        if name not in HEADERS:
            problems.append(f"{where}: headers: {name!r} cannot be configured (only {', '.join(HEADERS)})")
            continue
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            problems.append(f"{where}: headers: {name}: must be a single-line string")
            continue
        allowed = HEADERS[name]
        if allowed is not None and value not in allowed:
            problems.append(f"{where}: headers: {name}: {value!r} is not one of {', '.join(allowed)}")
            continue
        if value:  # blank means unset, as in the toolkit
            out.append((str(name), value))
    return tuple(out)


def _rate_limit(section: Any, where: str, problems: list[str]) -> ThrottleLimit | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        problems.append(f"{where}: must be a mapping with interval and burst")
        return None
    for key in section:
        if key not in ("interval", "burst"):
            problems.append(f"{where}: unknown key {key!r}")
    interval_text = str(section.get("interval", "0"))
    interval = 0.0
    if interval_text not in ("0", "0s"):  # zero turns the limiter off, as in the toolkit
        try:
            interval = parse_duration(interval_text)
        except ValueError as exc:
            problems.append(f"{where}: interval: {exc}")
    burst = section.get("burst", 0)
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        problems.append(f"{where}: burst: must be a whole number, 0 or more")
        return None
    if interval and not burst:
        problems.append(f"{where}: burst: must be at least 1, or every request would be refused")
    return ThrottleLimit(interval, burst) if interval else None


def _users(section: Any, where: str, problems: list[str]) -> dict[str, Secret]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        problems.append(f"{where}: must be a mapping of user name to bcrypt hash")
        return {}
    users: dict[str, Secret] = {}
    for user, hashed in section.items():
        if not isinstance(user, str) or not user or ":" in user:
            problems.append(f"{where}: {user!r} is not a user name (a non-empty string without ':')")
        elif not isinstance(hashed, str) or not _BCRYPT_RE.match(hashed):
            # Never echo the value: a user may have pasted a password instead of its hash.
            problems.append(f"{where}: {user}: the password must be a bcrypt hash ($2y$10$... , see the README)")
        else:
            users[user] = Secret(hashed)
    return users
