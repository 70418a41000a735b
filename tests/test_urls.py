"""No URL trick sends a credential off-host: the bearer token goes to the Graph root only, under its path; the
client secret or assertion to the authority only; the managed identity request to its endpoint only.

The ground truth is the transport itself: requests' own adapter is asked which connection it would open
for a URL (and the request is stopped there), so the check is proved against what would really happen."""

from __future__ import annotations

import posixpath
import time
from typing import Any, NamedTuple
from urllib.parse import unquote

import msal
import pytest
import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from exporter.errors import BadResponse, PollError
from exporter.graph.credentials import managed_identity_origin
from exporter.graph.urls import CredentialOrigin
from tests.fakegraph import DETAILS_PATH, LEGACY_PATH, MSI_HEADER, MSI_PATH, FakeGraph, Fault
from tests.support import graph_client, make_exporter, value

# --- where requests would really connect ---------------------------------------------------------------


class Reached(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str  # the request target on the wire
    url: str  # the prepared URL, as a session's send() sees it


class _Stop(Exception):
    def __init__(self, reached: Reached) -> None:
        self.reached = reached


class _Recorder(HTTPAdapter):
    """requests' adapter, stopped once it has chosen the connection pool: nothing is connected or sent."""

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
        raise _Stop(Reached(pool.scheme, pool.host.lower(), pool.port, request.path_url, request.url))


_transport = requests.Session()
_transport.trust_env = False  # no proxy from the environment: the connection is the URL's own
_transport.mount("https://", _Recorder())
_transport.mount("http://", _Recorder())


def reach(url: str) -> Reached | None:
    """Where requests would connect and what it would ask for, or None if it would send nothing."""
    try:
        _transport.get(url, allow_redirects=False)
    except _Stop as stop:
        return stop.reached
    except Exception:
        return None
    raise AssertionError("the recorder always stops the request")


def within(reached: Reached, trusted: Reached, prefix: str) -> bool:
    """The same scheme, host and port, and a path under `prefix` even as a lenient server reads it
    (percent-decoded, backslashes as slashes, dot segments resolved)."""
    path = posixpath.normpath(unquote(reached.path.split("?")[0]).replace("\\", "/"))
    confined = path == prefix or path.startswith(prefix.rstrip("/") + "/")
    return reached[:3] == trusted[:3] and confined


# --- the property: whatever the URL, if it would reach elsewhere, it is refused ------------------------

ORIGINS = ["https://graph.example/graph", "https://graph.example:8443", "https://127.0.0.1:8443"]
# The pieces a URL is made of: common ones, drawn three times in four, and spellings parsers disagree on.
SCHEMES = ["https://"], ["http://", "HTTPS://", "https:", "https:/", "https:///", "https:\\\\", "https:\\/", "//", ""]
AUTHORITIES = (
    ["graph.example", "graph.example:8443", "127.0.0.1:8443", "evil.example", "evil.example:8443", "localhost:8443"],
    # other spellings of the same places, and look-alikes
    *[
        [
            *("GRAPH.example", "graph.example.", "graph.example:443", "graph.example:0443", "graph.example:"),
            *("graph.example:65536", "graph.example:8443\t", "graph.example:\uff18\uff14\uff14\uff13", "127.1:8443"),
            *("2130706433:8443", "[::1]:8443", "[::ffff:127.0.0.1]:8443", "", ":8443", "graph.ex\u0430mple"),
            *(
                "\uff47\uff52\uff41\uff50\uff48.example",
                "graph\uff0eexample",
                "graph\u3002example",
                "127\uff0e0.0.1:8443",
            ),
        ]
    ],
)
PATHS = (
    ["", "/", "/graph", "/graph/", "/graph/v1.0/x", "/graphevil", "/other", "?$skiptoken=1"],
    [
        *("/graph/../other", "/graph/%2e%2e/other", "/graph/%2E./other", "/graph%2f..%2fother", "/graph\\..\\other"),
        *("/graph/..", "/graph/./x", "#frag", "/graph\uff0f..\uff0fother"),
    ],
)
# The characters that split a URL, and their look-alikes: fullwidth and ideographic punctuation, confusable
# letters, invisible characters, whitespace and controls.
SPLITTERS = (
    ["\\", "/", "@", "#", "?", ":", "%"],
    [
        *("%40", "%5c", "%2f", "%23", "%00", ";", "&", " ", "\t", "\n", "\r", "\x00", "\x7f", "\x0b", "\u00a0"),
        *("\u3000", "\u200b", "\u00ad", "\uff20", "\uff0f", "\uff3c", "\uff0e", "\u3002", "\uff61", "\uff1a"),
        *("\uff03", "\uff1f", "\u2100", "\u2024", "\u0131", "\u0130", "\u017f", "\u212a"),
    ],
)


def piece(common_and_odd: tuple[list[str], list[str]]) -> st.SearchStrategy[str]:
    common, odd = (st.sampled_from(pieces) for pieces in common_and_odd)
    return st.one_of(common, common, common, odd)


# One URL: a scheme, an authority, maybe splitters and another authority (`evil\\@graph`), then a path.
urls = st.builds(
    lambda scheme, first, tricks, path: scheme + first + "".join(tricks) + path,
    piece(SCHEMES),
    piece(AUTHORITIES),
    st.lists(st.builds(lambda split, authority: split + authority, piece(SPLITTERS), piece(AUTHORITIES)), max_size=2),
    st.lists(st.one_of(piece(PATHS), piece(SPLITTERS)), max_size=2).map("".join),
)


@pytest.mark.parametrize("root", ORIGINS)
@settings(max_examples=1500, deadline=None)
@given(url=urls)
@example(url="https://evil.example\\@graph.example/graph/v1.0/x")
@example(url="https://127.0.0.1:9999\\@127.0.0.1:8443/v1.0/x")
@example(url="https://evil.example:8443\\@graph.example:8443/v1.0/x")
@example(url="https://evil.example\\@127.0.0.1:8443/v1.0/x")
@example(url="https://graph.example\\.evil.example/graph")
@example(url="https://evil.example#@graph.example/graph")
@example(url="https://evil.example?@graph.example/graph")
@example(url="https://graph.example@evil.example/graph")
@example(url="https://evil.example\uff20graph.example/graph")
@example(url="https:\\\\evil.example/graph")
@example(url="https://graph.example/graph/../other")
@example(url="https://graph.example/graph/%2e%2e/other")
@example(url="https://graph.example/graphevil")
@example(url="https://graph.example:443\t/graph")
def test_any_url_that_would_reach_another_host_port_or_path_is_refused(root: str, url: str) -> None:
    origin = CredentialOrigin(root, "the trusted origin")
    trusted = reach(root)
    assert trusted is not None
    prefix = trusted.path.split("?")[0].rstrip("/")
    reached = reach(url)
    if reached is None:
        return  # requests itself sends nothing
    # Both forms are checked: the URL as given (next links) and as prepared (at send time, in a session).
    for candidate in (url, reached.url):
        if not within(reached, trusted, prefix):
            assert origin.refusal(candidate), f"{candidate!r} reaches {reached}, outside {root}"


IMDS = "http://169.254.169.254/metadata/identity/oauth2/token"
NEXT_LINK = (
    "https://graph.microsoft.com/v1.0/reports/authenticationMethods/userRegistrationDetails"
    "?$top=999&$skiptoken=RFNwdAIAAQAAACA6dXNlcjE%3D"
)


@pytest.mark.parametrize(
    ("root", "url"),
    [
        ("https://graph.microsoft.com", NEXT_LINK),
        (
            "https://graph.microsoft.com",
            "https://Graph.Microsoft.com:443/beta/reports/getCredentialUserRegistrationCount",
        ),
        ("https://host.example/graph", "https://host.example/graph"),
        ("https://host.example/graph", "https://host.example/graph/v1.0/x?$filter=isAdmin%20eq%20true"),
        ("https://host.example/graph", "https://host.example/graph/~a!b?c=~!"),  # the first and last printable
        ("https://login.microsoftonline.com", "https://login.microsoftonline.com/t/oauth2/v2.0/token"),
        ("https://[::1]:8443", "https://[::1]:8443/t/v2.0/.well-known/openid-configuration"),
        (IMDS, "http://169.254.169.254:80/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x"),
    ],
)
def test_a_plain_url_under_the_origin_may_carry_the_credential(root: str, url: str) -> None:
    assert CredentialOrigin(root, "the origin", allow_http=root.startswith("http:")).refusal(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://host.example/graphevil/v1.0/x", "outside the path /graph/"),  # a bare prefix is not a path
        ("https://host.example/other/v1.0/x", "outside the path /graph/"),
        ("https://host.example/", "outside the path /graph/"),
        ("https://host.example:8443/graph/x", "goes to https://host.example:8443"),
        ("https://other.example/graph/x", "goes to https://other.example:443"),
        ("http://host.example/graph/x", "goes to http://host.example:80"),
        ("https://evil.example\\@host.example/graph/x", "goes to https://evil.example:443"),
        ("https://host.example/graph\\..\\other", "backslash"),
        ("https://user@host.example/graph/x", "not a plain URL"),
        ("https://host%2eexample/graph/x", "not a plain URL"),
        ("https://host.example/graph/x#frag", "not a plain URL"),
        ("https://host.example:0443/graph/x", "not a plain URL"),
        ("https://host.example:99999/graph/x", "cannot be read by the HTTP client"),
        ("ftp://host.example/graph/x", "not a plain URL"),
        ("https://host.example/graph/x\r\nHost: evil", "whitespace, a control character"),
        ("https://host\uff0eexample/graph/x", "non-ASCII"),
        ("https://host.example/graph/../other", "dot segment"),
        ("https://host.example/graph/%2E%2E/other", "dot segment or an escaped dot"),
    ],
)
def test_the_check_says_why_it_refuses(url: str, why: str) -> None:
    refusal = CredentialOrigin("https://host.example/graph", "the Graph root").refusal(url)
    assert refusal is not None and why in refusal


def test_an_origin_that_is_not_plain_refuses_everything() -> None:
    origin = CredentialOrigin("https://evil.example\\@host.example", "the authority")
    assert "itself not a plain URL" in (origin.refusal("https://host.example/t/oauth2/v2.0/token") or "")
    assert origin.refusal("https://evil.example/t/oauth2/v2.0/token")
    plain_http = CredentialOrigin("http://graph.example", "the Graph root")  # only a managed identity may use http
    assert "is itself not a plain URL: is not https" in (plain_http.refusal("http://graph.example/v1.0/x") or "")


# --- end to end: nothing reaches the attacker, the poll fails with its reason, the last good numbers stay -----


def port(graph: FakeGraph) -> str:
    return graph.url.rsplit(":", 1)[1]


def backslash_trick(attacker: FakeGraph, home: FakeGraph) -> str:
    """A URL that urllib.parse reads as `home` and urllib3 as `attacker`."""
    return f"https://localhost:{port(attacker)}\\@127.0.0.1:{port(home)}"


def test_a_next_link_with_a_backslash_gets_no_token_and_fails_the_poll_as_a_bad_response(
    fake: FakeGraph, stranger: FakeGraph
) -> None:
    exporter = make_exporter(fake, source="details", rate_limit="off")
    tenant = fake.tenant_id
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    assert value(exporter, "tenant_total_users", tenant=tenant) == 2500

    link = f"{backslash_trick(stranger, fake)}{DETAILS_PATH}?$top=999&$skiptoken=999"
    fake.fail("details", Fault(200, {"value": fake.users[:999], "@odata.nextLink": link}))
    fake.users = fake.users[:1000]  # the tenant changed: a published number would show it
    (status,) = exporter.poller.poll_round()
    assert not status.up
    assert status.last_reason == "bad_response"
    assert "outside the Graph root" in (status.last_detail or "")
    assert stranger.seen == []  # no request, so no token
    assert value(exporter, "tenant_total_users", tenant=tenant) == 2500  # the last good number stays
    assert value(exporter, "credential_exporter_up", tenant=tenant) == 0

    (status,) = exporter.poller.poll_round()  # Graph answers well again
    assert status.up, status.last_detail
    assert value(exporter, "tenant_total_users", tenant=tenant) == 1000


def test_a_token_endpoint_with_a_backslash_never_receives_the_client_secret(
    fake: FakeGraph, stranger: FakeGraph
) -> None:
    exporter = make_exporter(fake)
    tenant = fake.tenant_id
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    tokens_before = fake.token_requests

    # The identity platform turns hostile: its discovery document names the attacker, spelt so that
    # urllib.parse reads the authority; Graph refuses the token in hand, so MSAL discovers again.
    fake.token_endpoint_origin = backslash_trick(stranger, fake)
    fake.revoke_tokens()
    (status,) = exporter.poller.poll_round()
    assert not status.up
    assert status.last_reason == "auth"
    assert "outside the authority" in (status.last_detail or "")
    assert stranger.seen == []
    assert fake.token_requests == tokens_before  # the secret went nowhere: refused before it was sent
    assert value(exporter, "tenant_total_users", tenant=tenant) == 23123  # the last good number stays

    fake.token_endpoint_origin = None  # the platform answers well again
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail


@pytest.fixture
def managed_identity(monkeypatch: pytest.MonkeyPatch, fake: FakeGraph) -> dict[str, str]:
    """App Service's managed identity, pointed at the fake: its header is a secret too."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", fake.url + MSI_PATH)
    monkeypatch.setenv("IDENTITY_HEADER", MSI_HEADER)
    return {"AZURE_TENANT_ID": fake.tenant_id}


MANAGED_IDENTITY_VARIABLES = (
    *("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT"),
    *("MSI_SECRET", "AZURE_POD_IDENTITY_AUTHORITY_HOST"),
)


@pytest.mark.parametrize(
    "env",
    [
        {},  # a VM: IMDS
        {"AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://10.0.0.7:2579/"},
        {"IDENTITY_ENDPOINT": "http://localhost:4141/MSI/token/", "IDENTITY_HEADER": "h"},  # App Service
        {"MSI_ENDPOINT": "http://127.0.0.1:46808/msi/token", "MSI_SECRET": "s"},  # Azure ML
        {"IDENTITY_ENDPOINT": "http://localhost:40342/metadata/identity/oauth2/token", "IMDS_ENDPOINT": "x"},  # Arc
        {"MSI_ENDPOINT": "http://localhost:50342/oauth2/token"},  # Cloud Shell: MSAL asks IMDS
        {  # Azure ML comes before Arc
            **{"MSI_ENDPOINT": "http://127.0.0.1:46808/msi/token", "MSI_SECRET": "s"},
            **{"IDENTITY_ENDPOINT": "http://localhost:40342/metadata/identity/oauth2/token", "IMDS_ENDPOINT": "x"},
        },
    ],
)
def test_the_managed_identity_endpoint_is_the_one_msal_asks(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, text in env.items():
        monkeypatch.setenv(name, text)
    client = msal.ManagedIdentityClient(msal.SystemAssignedManagedIdentity(), http_client=_transport)
    with pytest.raises(_Stop) as stop:  # MSAL's first request, stopped before it is sent
        client.acquire_token_for_client(resource="https://graph.microsoft.com")
    origin = managed_identity_origin(env)
    assert origin.refusal(stop.value.reached.url) is None, (origin.root, stop.value.reached.url)


def test_a_managed_identity_endpoint_with_a_backslash_is_never_asked(
    fake: FakeGraph, stranger: FakeGraph, managed_identity: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", backslash_trick(stranger, fake) + MSI_PATH)
    exporter = make_exporter(fake, env=managed_identity, auth="managed-identity")
    (status,) = exporter.poller.poll_round()
    assert not status.up
    assert status.last_reason == "auth"
    assert "managed identity endpoint" in (status.last_detail or "")
    assert stranger.seen == [] and fake.seen == []


def test_a_service_fabric_endpoint_with_a_backslash_is_never_connected_to(
    fake: FakeGraph, stranger: FakeGraph, managed_identity: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # For Service Fabric MSAL makes a session of its own (pinning the server's certificate), outside ours.
    monkeypatch.setenv("IDENTITY_ENDPOINT", backslash_trick(stranger, fake) + MSI_PATH)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", "00" * 20)
    exporter = make_exporter(fake, env=managed_identity, auth="managed-identity")
    (status,) = exporter.poller.poll_round()
    assert not status.up
    assert status.last_reason == "auth"
    assert stranger.connections == 0 and fake.connections == 0


def test_a_redirect_from_the_managed_identity_endpoint_is_not_followed_with_its_secret(
    fake: FakeGraph, stranger: FakeGraph, managed_identity: dict[str, str]
) -> None:
    fake.fail("msi", Fault(302, b"", {"Location": stranger.url + MSI_PATH}))
    exporter = make_exporter(fake, env=managed_identity, auth="managed-identity")
    (status,) = exporter.poller.poll_round()
    assert not status.up
    assert status.last_reason == "auth"
    assert "outside the managed identity endpoint" in (status.last_detail or "")
    assert stranger.seen == []
    (status,) = exporter.poller.poll_round()  # the endpoint answers well again
    assert status.up, status.last_detail


@pytest.mark.parametrize("outside", ["/graphevil", "/other", "/graph/../other", ""])
def test_the_token_goes_only_under_the_graph_roots_path(fake: FakeGraph, outside: str) -> None:
    client = graph_client(fake, graph_endpoint=fake.url + "/graph")
    deadline = time.monotonic() + 20
    with pytest.raises(BadResponse, match="outside the Graph root"):
        client.get_json(fake.url + outside + LEGACY_PATH, deadline)
    assert fake.seen == []  # refused before even a token was asked for
    with pytest.raises(PollError) as inside:  # under the root's path: sent, with the token (the fake has no /graph)
        client.get_json(fake.url + "/graph" + LEGACY_PATH, deadline)
    assert inside.value.status == 404
    (sent,) = fake.requests_to("/graph" + LEGACY_PATH)
    assert sent.headers["Authorization"].startswith("Bearer fake-at-")
    assert not [s for s in fake.seen if not s.path.startswith(("/graph/", f"/{fake.tenant_id}/"))]
