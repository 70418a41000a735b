"""HTTP sessions shared by every tenant: connections are shared, credentials never are.

A session per tenant keeps a TLS connection per tenant alive, and every TLS connection that requests
opens loads the whole CA bundle into a context of its own: with certifi's bundle about 0.7 MiB each,
1.5 MiB per tenant with the identity platform's. Shared pools keep about as many connections as tenants
are polled at once. Tokens travel in each request's header, never in the session; cookies are refused,
so nothing one tenant's answer sets is ever sent for another.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy

import requests
from requests.adapters import HTTPAdapter

from exporter.credentials import TimeoutSession


def pooled(timeout: float, connections: int, *, retries: int = 0) -> requests.Session:
    session = TimeoutSession(timeout)
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # an empty list allows no domain
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=connections, max_retries=retries)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass(frozen=True)
class Sessions:
    graph: requests.Session  # GraphClient retries on its own: no retries here
    identity: requests.Session  # MSAL: one retry on a broken connection, as MSAL's own session does

    @classmethod
    def for_pool(cls, timeout: float, concurrency: int) -> Sessions:
        return cls(pooled(timeout, concurrency), pooled(timeout, concurrency, retries=1))
