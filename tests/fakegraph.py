"""A fake Microsoft Graph and identity platform, served over real HTTPS on loopback.

It speaks what the real services speak to this exporter, so the real msal and requests run against it:
OIDC discovery and the v2.0 token endpoint (client secret, certificate assertion, federated assertion),
an App Service-style managed identity endpoint, and Graph's reports. Faults are queued per route.
Each tenant may get its own legacy report (`legacy_by_tenant`, looked up from the token's tenant), and every
answer can be delayed by `latency` seconds, as a far-away Graph would be.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes

LEGACY_PATH = "/beta/reports/getCredentialUserRegistrationCount"
DETAILS_PATH = "/v1.0/reports/authenticationMethods/userRegistrationDetails"
TOKEN_PATH_SUFFIX = "/oauth2/v2.0/token"
MSI_PATH = "/msi/token"
MSI_HEADER = "fake-identity-header"


def legacy_payload(total: int, counts: dict[str, int], *, spelling: str = "schema", envelope: bool = True) -> Any:
    """The legacy report's JSON in one of the spellings Graph has used."""
    status_key, count_key = {
        "schema": ("registrationStatus", "registrationCount"),
        "page": ("userRegistrationStatus", "userRegistrationCount"),
        "misspelt": ("userRegistrationStatus", "userRegistationCount"),
    }[spelling]
    item = {
        "id": "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        "totalUserCount": total,
        "userRegistrationCounts": [{status_key: s, count_key: c} for s, c in counts.items()],
    }
    if not envelope:
        return item
    return {
        "@odata.context": "https://graph.microsoft.com/beta/reports/$metadata"
        "#Collection(microsoft.graph.credentialUserRegistrationCount)",
        "value": [item],
    }


def user_record(i: int) -> dict[str, Any]:
    """User i of a deterministic tenant, with the personal data real records carry.

    Every 10th user is a guest; user 100k+1 is an admin, 100k+2 has an unknown admin flag (null); users
    not divisible by 3 have MFA; even users have SSPR; every 7th user has a FIDO2 key and is passwordless.
    """
    mfa = i % 3 != 0
    methods = (["microsoftAuthenticatorPush", "mobilePhone"] if mfa else ["email"]) + (["fido2"] if i % 7 == 0 else [])
    return {
        "id": str(uuid.UUID(int=i)),
        "userPrincipalName": f"user{i}@contoso.example",
        "userDisplayName": f"Person Number{i}",
        "userType": "guest" if i % 10 == 0 else "member",
        "isAdmin": True if i % 100 == 1 else (None if i % 100 == 2 else False),
        "isSsprRegistered": i % 2 == 0,
        "isSsprEnabled": True,
        "isSsprCapable": i % 2 == 0,
        "isMfaRegistered": mfa,
        "isMfaCapable": mfa,
        "isPasswordlessCapable": i % 7 == 0,
        "isSystemPreferredAuthenticationMethodEnabled": None,
        "methodsRegistered": methods,
        "systemPreferredAuthenticationMethods": [],
        "userPreferredMethodForSecondaryAuthentication": "push" if mfa else "none",
        "lastUpdatedDateTime": "2026-11-27T10:00:00Z",
    }


@dataclass
class Fault:
    """One scripted answer, used instead of the normal one. `action` is respond|reset|stall|truncate, or
    pass: the normal answer (to let earlier pages through before a fault);
    revoke: every token issued so far stops working, and this request is refused with 401 as Graph does
    (a token that expires mid-paging); trickle: the body in 64 KiB pieces, `seconds` apart; drip: the body one
    byte at a time, `seconds` apart, until the client hangs up (counted in FakeGraph.drips_cut)."""

    status: int = 500
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "respond"
    seconds: float = 0.0  # for stall and trickle

    def payload(self) -> bytes:
        if isinstance(self.body, dict):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


def graph_error(status: int, code: str, message: str, request_id: str = "req-0001") -> Fault:
    return Fault(
        status,
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": "2026-11-28T00:00:00",
                    "request-id": request_id,
                    "client-request-id": request_id,
                },
            }
        },
    )


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when the request arrived


class FakeGraph:
    tenant_id = "5f1b7c8e-2a3d-4e6f-9a0b-1c2d3e4f5a6b"
    client_id = "0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f"
    client_secret = "Xq7~fake.Secret-value_9Zr2LmNpQ"
    federated_token = "eyFakeFederatedTokenFromTheKubelet"

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_path = directory / "fake-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.legacy: Any = legacy_payload(
            23123, {"registered": 21000, "enabled": 22000, "capable": 20500, "mfaRegistered": 18000}
        )
        self.faults: dict[str, deque[Fault]] = {"legacy": deque(), "details": deque(), "token": deque(), "msi": deque()}
        self.users: list[dict[str, Any]] = [user_record(i) for i in range(2500)]
        self.max_page_size = 999
        # Details pages already encoded, by ($top, $skiptoken): served as they are, instead of from `users`.
        # For benchmarks, so that serving a page costs no JSON encoding; see encode_details_pages().
        self.encoded_pages: dict[tuple[int, int], bytes] = {}
        # (requests, seconds): answer 429 to report requests beyond it, as Graph does per app and tenant.
        self.rate_limit: tuple[int, float] | None = None
        self.report_arrivals: deque[float] = deque()
        self.throttled = 0
        self.drips_cut = 0  # drip answers the client hung up on
        self.seen: list[Seen] = []
        self.tokens: set[str] = set()
        self.legacy_by_tenant: dict[str, Any] = {}  # tenant ID (as in the token request's path) -> legacy report
        self.token_tenants: dict[str, str] = {}  # access token -> the tenant it was issued for
        self.latency = 0.0  # seconds added before every answer
        self.token_requests = 0
        self.connections = 0  # TLS connections accepted, Graph and identity platform together
        self.certificate: x509.Certificate | None = None  # registered for certificate auth
        self.assertion_headers: list[dict[str, Any]] = []
        self.token_lifetime = 3600
        self.token_endpoint_origin: str | None = None  # OIDC discovery names this host instead (a hostile IdP)
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, route: str, *faults: Fault) -> None:
        with self.lock:
            self.faults[route].extend(faults)

    def revoke_tokens(self) -> None:
        """Graph stops accepting every token issued so far (as after a key rollover)."""
        with self.lock:
            self.tokens.clear()

    def encode_details_pages(self, top: int) -> None:
        """Encode every details page of `users` for `$top={top}` once, now, rather than at each request."""
        top = min(top, self.max_page_size)
        pages = {
            (top, start): json.dumps(self.details_page(top, start)).encode()
            for start in range(0, len(self.users) or 1, top)
        }
        with self.lock:
            self.encoded_pages = pages

    def details_page(self, top: int, start: int) -> dict[str, Any]:
        """The details page of `top` records from `start`, with the next link Graph would send."""
        page: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#reports/authenticationMethods/"
            "userRegistrationDetails",
            "value": self.users[start : start + top],
        }
        if start + top < len(self.users):
            page["@odata.nextLink"] = f"{self.url}{DETAILS_PATH}?$top={top}&$skiptoken={start + top}"
        return page

    def requests_to(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path.split("?")[0] == path]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a user would set to point the exporter at this fake with a client secret."""
        return {
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "AZURE_AUTHORITY_HOST": self.url,
            "REQUESTS_CA_BUNDLE": str(self.ca_path),
            **extra,
        }

    # --- what the handler calls ---------------------------------------------------------------

    def next_fault(self, route: str) -> Fault | None:
        with self.lock:
            return self.faults[route].popleft() if self.faults[route] else None

    def issue_token(self, tenant: str | None = None) -> str:
        token = f"fake-at-{uuid.uuid4()}"
        with self.lock:
            self.tokens.add(token)
            if tenant is not None:
                self.token_tenants[token] = tenant
        return token

    def legacy_for(self, token: str) -> Any:
        """The legacy report of the token's tenant, or the common one."""
        with self.lock:
            return self.legacy_by_tenant.get(self.token_tenants.get(token, ""), self.legacy)

    def check_client(self, form: dict[str, str], token_endpoint: str) -> str | None:
        """None if the client authenticated, else the AADSTS error description."""
        if form.get("client_id") != self.client_id:
            return "AADSTS700016: Application with identifier was not found in the directory."
        if "client_secret" in form:
            if form["client_secret"] == self.client_secret:
                return None
            return "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is correct."
        assertion = form.get("client_assertion", "")
        if assertion == self.federated_token:
            return None
        if self.certificate is None:
            return "AADSTS700027: Client assertion failed signature validation."
        try:
            header = jwt.get_unverified_header(assertion)
            jwt.decode(
                assertion,
                self.certificate.public_key(),
                algorithms=["RS256", "PS256"],
                audience=token_endpoint,
                issuer=self.client_id,
            )  # type: ignore[arg-type]
        except jwt.PyJWTError as exc:
            return f"AADSTS700027: Client assertion failed signature validation. {exc}"
        with self.lock:
            self.assertion_headers.append(header)
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many tenants connect at once in benchmarks/tenants.py

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and TLS failures are part of the tests


def _handler_for(fake: FakeGraph) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with fake.lock:
                fake.connections += 1

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self, body: bytes = b"") -> None:
            with fake.lock:
                fake.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))

        def _send(self, status: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> None:
            if fake.latency:
                time.sleep(fake.latency)
            data = json.dumps(body).encode() if isinstance(body, dict) else body
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("request-id", "hdr-" + str(uuid.uuid4()))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _apply(self, fault: Fault) -> None:
            if fault.action == "reset":
                # RST instead of FIN: the client sees "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if fault.action == "stall":
                time.sleep(fault.seconds)
            if fault.action == "revoke":
                fake.revoke_tokens()
                self._send(
                    401, {"error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed."}}
                )
                return
            if fault.action in ("trickle", "drip"):  # 64 KiB, or one byte, every fault.seconds
                data = fault.payload()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                step = 65536 if fault.action == "trickle" else 1
                try:
                    for start in range(0, len(data), step):
                        self.wfile.write(data[start : start + step])
                        self.wfile.flush()
                        time.sleep(fault.seconds)
                except OSError:  # the client closed the connection
                    with fake.lock:
                        fake.drips_cut += 1
                    self.close_connection = True
                return
            if fault.action == "truncate":
                data = fault.payload()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data) * 2))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(fault.status, fault.payload(), fault.headers)

        def do_GET(self) -> None:
            self._record()
            path = urlsplit(self.path).path
            if path.endswith("/v2.0/.well-known/openid-configuration"):
                tenant = path.split("/")[1]
                base = f"{fake.url}/{tenant}"
                token_base = f"{fake.token_endpoint_origin or fake.url}/{tenant}"
                self._send(
                    200,
                    {
                        "token_endpoint": f"{token_base}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "issuer": f"{base}/v2.0",
                        "jwks_uri": f"{base}/discovery/v2.0/keys",
                    },
                )
            elif path == MSI_PATH:
                self._managed_identity()
            elif path == LEGACY_PATH:
                self._graph(
                    "legacy", lambda: fake.legacy_for(self.headers.get("Authorization", "").removeprefix("Bearer "))
                )
            elif path == DETAILS_PATH:
                self._graph("details", self._details_page)
            else:
                self._send(404, {"error": {"code": "BadRequest", "message": "Resource not found for the segment."}})

        def _graph(self, route: str, answer: Callable[[], Any]) -> None:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            with fake.lock:
                known = token in fake.tokens
                throttled = fake.rate_limit is not None and self._over_rate(*fake.rate_limit)
            if not known:
                self._send(401, {"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})
                return
            if throttled:
                self._send(
                    429, {"error": {"code": "TooManyRequests", "message": "Too many requests."}}, {"Retry-After": "2"}
                )
                return
            fault = fake.next_fault(route)
            if fault and fault.action != "pass":
                self._apply(fault)
                return
            body = answer()
            if body is None:  # the function has been retired
                self._send(
                    400,
                    {
                        "error": {
                            "code": "BadRequest",
                            "message": "Resource not found for the segment 'getCredentialUserRegistrationCount'.",
                        }
                    },
                )
                return
            self._send(200, body if isinstance(body, bytes) else json.dumps(body).encode())

        def _over_rate(self, limit: int, period: float) -> bool:
            now = time.monotonic()
            arrivals = fake.report_arrivals
            while arrivals and arrivals[0] <= now - period:
                arrivals.popleft()
            if len(arrivals) >= limit:
                fake.throttled += 1
                return True
            arrivals.append(now)
            return False

        def _details_page(self) -> dict[str, Any] | bytes:
            query = parse_qs(urlsplit(self.path).query)
            top = min(int(query.get("$top", ["100"])[0]), fake.max_page_size)
            start = int(query.get("$skiptoken", ["0"])[0])
            encoded = fake.encoded_pages.get((top, start))
            return encoded if encoded is not None else fake.details_page(top, start)

        def _managed_identity(self) -> None:
            if self.headers.get("X-IDENTITY-HEADER") != MSI_HEADER:
                self._send(401, {"error": "unauthorized"})
                return
            fault = fake.next_fault("msi")
            if fault and fault.action != "pass":
                self._apply(fault)
                return
            query = parse_qs(urlsplit(self.path).query)
            self._send(
                200,
                {
                    "access_token": fake.issue_token(),
                    "expires_on": str(int(time.time()) + fake.token_lifetime),
                    "resource": query.get("resource", [""])[0],
                    "token_type": "Bearer",
                    "client_id": query.get("client_id", ["system"])[0],
                },
            )

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            self._record(body)
            path = urlsplit(self.path).path
            if not path.endswith(TOKEN_PATH_SUFFIX):
                self._send(404, {"error": "not_found"})
                return
            with fake.lock:
                fake.token_requests += 1
            fault = fake.next_fault("token")
            if fault and fault.action != "pass":
                self._apply(fault)
                return
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            problem = fake.check_client(form, f"{fake.url}{path}")
            if problem:
                self._send(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": f"{problem}\r\nTrace ID: t-1\r\n",
                        "error_codes": [int(problem[6 : problem.index(":")])],
                        "correlation_id": "corr-0001",
                    },
                )
                return
            self._send(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": fake.token_lifetime,
                    "access_token": fake.issue_token(path.split("/")[1]),
                },
            )

    return Handler


def thumbprints(cert: x509.Certificate) -> tuple[str, str]:
    """(x5t, x5t#S256) as they appear in a JWT header."""
    import base64

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return b64(cert.fingerprint(hashes.SHA1())), b64(cert.fingerprint(hashes.SHA256()))  # noqa: S303
