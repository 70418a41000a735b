"""TLS for the HTTP endpoints: the server context built from the web config's TLS settings.

Kept apart from the file's parsing: this is the part that talks to OpenSSL, and the part the server calls
on every connection (`san_allowed`).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.values import first_line

# ssl has no "request, do not verify": RequestClientCert asks for nothing, which grants the same access as the
# toolkit's (it never looks at an unverified certificate either).
CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


@dataclass(frozen=True)
class TLSSettings:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    client_ca: str | None = None  # inline PEM, as the toolkit allows
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    prefer_server_cipher_suites: bool = True
    # A verified client certificate must also carry one of these subject alternative names (DNS, IP, email, URI).
    client_allowed_sans: tuple[str, ...] = ()

    def files(self) -> tuple[Path, ...]:
        return (self.cert_file, self.key_file) + ((self.client_ca_file,) if self.client_ca_file else ())


def make_ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    """A server context from the settings; ValueError says which file or setting is wrong."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    context.options |= ssl.OP_NO_RENEGOTIATION
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    try:
        # An encrypted key would make OpenSSL prompt on the terminal: answer with an empty password instead.
        context.load_cert_chain(tls.cert_file, tls.key_file, password=lambda: b"")
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(
            f"cannot load cert_file {tls.cert_file} with key_file {tls.key_file} "
            f"(an unencrypted PEM key matching the certificate is needed): {reason(exc)}"
        ) from None
    context.verify_mode = CLIENT_AUTH_TYPES[tls.client_auth_type]
    if context.verify_mode != ssl.CERT_NONE:
        try:
            if tls.client_ca_file or tls.client_ca:
                context.load_verify_locations(
                    cafile=str(tls.client_ca_file) if tls.client_ca_file else None, cadata=tls.client_ca
                )
            else:
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)  # the toolkit (Go) uses the system's roots
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"cannot load the client CA: {reason(exc)}") from None
    return context


def san_allowed(peer_certificate: dict[str, Any], allowed: tuple[str, ...]) -> bool:
    """Whether a verified peer certificate (ssl's getpeercert()) carries one of the allowed SANs.

    IP addresses compare as addresses (ssl spells IPv6 in full, the configuration may not)."""
    wanted = {_canonical(name) for name in allowed}
    names = peer_certificate.get("subjectAltName", ())
    return any(_canonical(value) in wanted for _kind, value in names)


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name.strip()))
    except ValueError:
        return name


def reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return first_line(exc)
