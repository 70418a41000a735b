"""Access tokens for Graph, from MSAL: one MSAL app object per tenant, so that its token cache works.

The app is created on the first token request rather than at start, because creating it already
talks to the identity platform (OIDC discovery): an outage at start must not stop the exporter.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol
from urllib.parse import urlsplit

import msal
import msal.exceptions
import requests

from exporter.config import (
    MICROSOFT_AUTHORITY_HOSTS,
    Certificate,
    ClientSecret,
    Config,
    FederatedToken,
    ManagedIdentity,
    Tenant,
)
from exporter.errors import PollError
from exporter.graph.sessions import RefusedURL, TimeoutSession
from exporter.graph.urls import CredentialOrigin
from exporter.values import first_line

_AADSTS_RE = re.compile(r"AADSTS\d+")
_HTTP_STATUS_RE = re.compile(r"HTTP Error: (\d{3})")
_IMDS_PATH = "/metadata/identity/oauth2/token"
_PEM_RE = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


class TokenProvider(Protocol):
    def token(self, deadline: float | None = None) -> str:
        """A bearer token for Graph, by `deadline` (monotonic clock) if given; raises PollError."""

    def invalidate(self) -> None:
        """Forget any cached token (Graph refused it with 401)."""


class MsalTokens:
    def __init__(
        self,
        make_app: Callable[[], Any],
        acquire: Callable[[Any], dict[str, Any]],
        session: TimeoutSession | None = None,
    ) -> None:
        """`session` is the HTTP client given to MSAL, whose last status explains MSAL's failures."""
        self._make_app = make_app
        self._acquire = acquire
        self._session = session
        self._app: Any = None
        self._lock = threading.Lock()

    def token(self, deadline: float | None = None) -> str:
        with self._lock:
            if self._session is not None:
                self._session.deadline = deadline
            try:
                if self._app is None:
                    self._app = self._make_app()
                result = self._acquire(self._app)
            except (requests.HTTPError, msal.exceptions.MsalServiceError) as exc:
                # MSAL raises MsalServiceError("HTTP Error: 503") for a token endpoint's 5xx (also when it
                # replays one it has cached for its Retry-After), and an HTTPError for a failed discovery.
                status = _status_in(exc) or self._status()
                if status is not None and 400 <= status < 500 and status != 429:
                    raise PollError("auth", f"the identity platform answered HTTP {status}", status=status) from None
                raise self._unavailable(status) from None
            except RefusedURL as exc:
                # Discovery (or the environment) named an endpoint elsewhere: nothing was sent there. The app
                # has learnt that endpoint: a fresh one discovers again at the next poll.
                self._app = None
                raise PollError("auth", str(exc)) from None
            except requests.Timeout:
                raise PollError("timeout", "the identity platform did not answer in time") from None
            except requests.RequestException as exc:
                raise PollError("network", f"cannot reach the identity platform: {first_line(exc)}") from None
            except json.JSONDecodeError:
                # An answer that is not JSON: a managed identity endpoint's 5xx page, say.
                status = self._status()
                if status is not None and (status >= 500 or status == 429):
                    raise self._unavailable(status) from None
                raise PollError(
                    "bad_response", f"the identity platform's answer is not JSON (HTTP {status})", status=status
                ) from None
            except (ValueError, OSError, RuntimeError) as exc:
                # MSAL raises these for a refused OIDC discovery, an unreadable key or token file.
                raise PollError("auth", f"cannot set up the credential: {first_line(exc)}") from None
        if result.get("access_token"):
            if self._session is not None:
                self._session.last_status = None
            return str(result["access_token"])
        status = self._status()
        if status is not None and (status >= 500 or status == 429):
            # A managed identity endpoint's 5xx comes back as an error dict: the platform failed, not us.
            error = self._unavailable(status)
            error.code = str(result.get("error") or "") or None
            raise error
        description = str(result.get("error_description") or "")
        aadsts = _AADSTS_RE.search(description)
        raise PollError(
            "auth",
            f"the identity platform refused the credential: {result.get('error', 'unknown error')}: "
            f"{first_line(description)}",
            code=aadsts.group(0) if aadsts else str(result.get("error") or "") or None,
            request_id=result.get("correlation_id"),
        )

    def invalidate(self) -> None:
        # A fresh app has an empty cache; recreating it costs one OIDC discovery, and 401s are rare.
        with self._lock:
            self._app = None

    def _status(self) -> int | None:
        return self._session.last_status if self._session is not None else None

    @staticmethod
    def _unavailable(status: int | None) -> PollError:
        return PollError(
            "throttled" if status == 429 else "http_5xx",
            f"the identity platform answered HTTP {status or '5xx'}",
            status=status,
        )


def _status_in(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, requests.Response):
        return response.status_code
    match = _HTTP_STATUS_RE.search(str(exc))
    return int(match.group(1)) if match else None


def _certificate_credential(cert: Certificate) -> dict[str, Any]:
    text = cert.path.read_text(encoding="ascii")
    blocks = [(m.group(1), m.group(0)) for m in _PEM_RE.finditer(text)]
    keys = [pem for kind, pem in blocks if kind.endswith("PRIVATE KEY")]
    certs = [pem for kind, pem in blocks if kind == "CERTIFICATE"]
    if not keys or not certs:
        raise ValueError(f"{cert.path} must hold a PEM private key and its certificate")
    credential: dict[str, Any] = {"private_key": keys[0]}
    if cert.password:
        credential["passphrase"] = cert.password.reveal()
    if cert.send_chain:
        # MSAL sends the chain (x5c) and signs with PS256 / SHA-256 thumbprint: subject-name/issuer auth.
        credential["public_certificate"] = "\n".join(certs)
    else:
        # Imported here: cryptography's x509 costs 40 ms of CPU at every start, and only this path needs it.
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        leaf = x509.load_pem_x509_certificate(certs[0].encode("ascii"))
        credential["thumbprint"] = leaf.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t
    return credential


def _tenant_session(timeout: float, shared: requests.Session | None, trusted: CredentialOrigin) -> TimeoutSession:
    """MSAL's HTTP client for one tenant: its own session, since the last status and the poll's deadline it
    keeps are the tenant's (tenants are polled at once), over the shared connection pools if there are any.
    It sends nothing outside `trusted`, whatever discovery or a redirect names."""
    session = TimeoutSession(timeout, trusted)
    if shared is not None:
        for prefix, adapter in shared.adapters.items():
            session.mount(prefix, adapter)  # the same adapters: the same pools of connections
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # an empty list allows no domain
    return session


def managed_identity_origin(env: Mapping[str, str]) -> CredentialOrigin:
    """Where MSAL's managed identity client sends its requests (plain http for the local endpoints)."""
    return CredentialOrigin(_managed_identity_endpoint(env), "the managed identity endpoint", allow_http=True)


def _managed_identity_endpoint(env: Mapping[str, str]) -> str:
    """The endpoint MSAL's managed identity client asks, found the way it finds it (in the order of
    msal.managed_identity._obtain_token): Service Fabric, App Service, Azure ML, Azure Arc, else a VM's IMDS."""
    if "IDENTITY_ENDPOINT" in env and "IDENTITY_HEADER" in env:
        return env["IDENTITY_ENDPOINT"]
    if "MSI_ENDPOINT" in env and "MSI_SECRET" in env:
        return env["MSI_ENDPOINT"]
    if "IDENTITY_ENDPOINT" in env and "IMDS_ENDPOINT" in env:
        return env["IDENTITY_ENDPOINT"]
    if sys.platform == "linux" and os.path.exists("/opt/azcmagent/bin/himds"):
        return "http://localhost:40342" + _IMDS_PATH  # Arc's agent, found by its file
    return env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254").strip("/") + _IMDS_PATH


def token_provider(tenant: Tenant, config: Config, http: requests.Session | None = None) -> TokenProvider:
    """The token source for one tenant, from its configured credential.

    `http` is a session whose connection pools MSAL shares with other tenants to talk to the identity
    platform; without it, the tenant's MSAL object has pools of its own.
    """
    cred = tenant.credential
    if isinstance(cred, ManagedIdentity):
        identity = (
            msal.UserAssignedManagedIdentity(client_id=cred.client_id)
            if cred.client_id
            else msal.SystemAssignedManagedIdentity()
        )
        trusted = managed_identity_origin(os.environ)
        mi_session = _tenant_session(config.http_timeout, http, trusted)

        def managed_identity_client() -> Any:
            # Service Fabric's requests go through a session MSAL makes of its own: check its endpoint here.
            refusal = trusted.refusal(trusted.root)
            if refusal:
                raise RefusedURL(refusal)
            return msal.ManagedIdentityClient(identity, http_client=mi_session)

        return MsalTokens(
            managed_identity_client,
            lambda app: app.acquire_token_for_client(resource=config.graph_root),
            mi_session,
        )

    def client_credential() -> Any:
        if isinstance(cred, ClientSecret):
            return cred.secret.reveal()
        if isinstance(cred, Certificate):
            return _certificate_credential(cred)
        if isinstance(cred, FederatedToken):
            path = cred.token_file
            # MSAL calls this on every token request: the kubelet rotates the file.
            return {"client_assertion": lambda: path.read_text(encoding="utf-8").strip()}
        raise TypeError(f"no MSAL credential for {type(cred).__name__}")

    host = urlsplit(config.authority_host).hostname
    scopes = [f"{config.graph_root}/.default"]
    # Our session rather than MSAL's own (which would get `timeout=`): the same timeouts, plus the last status.
    session = _tenant_session(config.http_timeout, http, CredentialOrigin(config.authority_host, "the authority"))
    return MsalTokens(
        lambda: msal.ConfidentialClientApplication(
            tenant.client_id,
            client_credential=client_credential(),
            authority=f"{config.authority_host}/{tenant.tenant_id}",
            # For any host that is not Microsoft's, MSAL would otherwise ask login.microsoftonline.com.
            instance_discovery=None if host in MICROSOFT_AUTHORITY_HOSTS else False,
            http_client=session,
        ),
        lambda app: app.acquire_token_for_client(scopes),
        session,
    )
