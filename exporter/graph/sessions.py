"""HTTP sessions shared by every tenant: connections are shared, credentials never are.

A session per tenant keeps a TLS connection per tenant alive, and every TLS connection that requests
opens loads the whole CA bundle into a context of its own: with certifi's bundle about 0.7 MiB each,
1.5 MiB per tenant with the identity platform's. Shared pools keep about as many connections as tenants
are polled at once. Tokens travel in each request's header, never in the session; cookies are refused,
so nothing one tenant's answer sets is ever sent for another.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from exporter.graph.urls import CredentialOrigin


class RefusedURL(requests.RequestException):
    """A request that could have carried a credential outside its trusted origin; it was never sent."""


class TimeoutSession(requests.Session):
    """MSAL's HTTP client: every request times out (MSAL's managed identity client sets no timeout), and
    the status of the last answer is kept.

    MSAL does not say what status a failed token request had: a 5xx from the token endpoint becomes an
    MsalServiceError, and from a managed identity endpoint an error dict or a JSON error. The status
    tells a failing identity platform (retried) from a refused credential (not retried). It stays until
    a token is obtained: MSAL replays a 429/5xx from its own cache for its Retry-After, without a request.

    With `trusted`, every request, redirects included, must pass its check when it is sent: MSAL posts the
    credential to whatever token endpoint the OIDC discovery document names, and a managed identity
    endpoint's header is a secret too. The check reads the prepared URL, the one the transport uses.
    """

    def __init__(self, timeout: float, trusted: CredentialOrigin | None = None) -> None:
        super().__init__()
        self._timeout = timeout
        self._trusted = trusted
        self.last_status: int | None = None
        # The poll's deadline (monotonic clock): no request outlasts the poll's budget, as Graph's do not.
        self.deadline: float | None = None

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        timeout = self._timeout
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise requests.Timeout("the poll's time budget ran out")
            timeout = min(timeout, remaining)
        kwargs.setdefault("timeout", timeout)
        response = super().request(*args, **kwargs)
        self.last_status = response.status_code
        return response

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self._trusted is not None:
            refusal = self._trusted.refusal(request.url or "")
            if refusal:
                raise RefusedURL(f"refusing a request outside {self._trusted.name} {self._trusted.root}: {refusal}")
        return super().send(request, **kwargs)


def pooled(timeout: float, connections: int, *, retries: int = 0) -> requests.Session:
    session = TimeoutSession(timeout)
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # an empty list allows no domain
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=connections, max_retries=retries)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def settled(session: requests.Session, root: str) -> requests.Session:
    """`session` with the environment's proxy and CA bundle for `root` read once, not on every request.

    requests reads them again for each request (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE,
    ~/.netrc): two walks of the whole environment, about 0.5 ms of CPU a request, a tenth of a paging's CPU.
    Every Graph request goes to the one root, so the answer cannot differ between them. Without trust_env,
    a ~/.netrc entry for Graph's host can no longer replace the bearer token either.
    """
    session.proxies.update(requests.utils.get_environ_proxies(root))
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    return session


@dataclass(frozen=True)
class Sessions:
    graph: requests.Session  # GraphClient retries on its own: no retries here
    identity: requests.Session  # MSAL: one retry on a broken connection, as MSAL's own session does

    @classmethod
    def for_pool(cls, timeout: float, concurrency: int, graph_root: str) -> Sessions:
        graph = settled(pooled(timeout, concurrency), graph_root)
        return cls(graph, pooled(timeout, concurrency, retries=1))
