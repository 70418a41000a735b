"""The fault matrix: every way Graph and the identity platform fail, for both sources, against the fake.

Each case polls once successfully, changes the tenant's numbers in the fake (so that anything published from
the failed poll would show), injects a fault, and checks that the exporter keeps the last good numbers exactly,
says `up` 0 and the right `reason`, and recovers on its own once the fault clears. For the details report the
fault hits page 2 of 3, so a partial sum would show too. The cases that a retry rides out check the retry
counters instead, and that the retry waited as long as it had to.
"""

from __future__ import annotations

import email.utils
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from exporter.app import Exporter
from exporter.errors import REASONS
from tests.fakegraph import (
    DETAILS_PATH,
    LEGACY_PATH,
    MSI_HEADER,
    MSI_PATH,
    FakeGraph,
    Fault,
    graph_error,
    legacy_payload,
    user_record,
)
from tests.support import FIXTURES, exporter_process, exposition, get, make_exporter, value, wait_for

SOURCES = ("legacy", "details")
PATHS = {"legacy": LEGACY_PATH, "details": DETAILS_PATH}
# What the fake serves after the first, good poll: anything published from a failed poll would differ.
CHANGED_LEGACY = legacy_payload(
    24000, {"registered": 22000, "enabled": 23000, "capable": 21000, "mfaRegistered": 19500}
)
CHANGED_USERS = 2700
SEED_SAMPLE = (FIXTURES / "legacy" / "seed_sample_invalid.json").read_bytes()
RECOVERY_BUDGET = 20.0  # seconds: enough to wait out any Retry-After a case sends


def registration_series(exporter: Exporter) -> list[str]:
    """Every sample of the tenant's numbers (not the exporter's own health), as served."""
    prefixes = ("tenant_total_users{", "tenant_users{", "credential_registered_", "credential_method_")
    return [line for line in exposition(exporter).splitlines() if line.startswith(prefixes)]


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def throttled(retry_after: str | None = None) -> Fault:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Fault(429, {"error": {"code": "TooManyRequests", "message": "Too many requests."}}, headers)


def answer(body: bytes | str | dict[str, Any], action: str = "respond", seconds: float = 0.0) -> Fault:
    """A 200 answer in place of the source's normal one (page 2, for details)."""
    return Fault(200, body, action=action, seconds=seconds)


def legacy_ok() -> dict[str, Any]:
    return legacy_payload(23123, {"registered": 21000, "mfaRegistered": 18000})  # type: ignore[no-any-return]


def details_page(fake: FakeGraph, start: int = 999) -> dict[str, Any]:
    """Page 2 of the changed tenant, as Graph would send it (next link included)."""
    return {
        "value": [user_record(i) for i in range(start, start + 999)],
        "@odata.nextLink": f"{fake.url}{DETAILS_PATH}?$top=999&$skiptoken={start + 999}",
    }


def normal_body(source: str, fake: FakeGraph) -> dict[str, Any]:
    return legacy_ok() if source == "legacy" else details_page(fake)


@dataclass
class Case:
    """One fault. `faults(source, fake)` gives what the route answers (for details, after page 1 passes)."""

    faults: Callable[[str, FakeGraph], list[Fault]]
    reason: str
    route: str = "graph"  # graph: the source's report route; token: the token endpoint
    flags: dict[str, str] = field(default_factory=dict)
    detail: str = ""  # a phrase the failure detail must hold
    sources: tuple[str, ...] = SOURCES
    short_lived_tokens: bool = False  # MSAL asks the identity platform on every request, not its cache


FAILURES: dict[str, Case] = {
    "429-retry-after-seconds-past-budget": Case(
        lambda s, f: [throttled("3")], "throttled", flags={"poll_timeout": "1s"}, detail="Retry-After 3s"
    ),
    "429-retry-after-date-past-budget": Case(
        lambda s, f: [throttled(http_date(4))], "throttled", flags={"poll_timeout": "1s"}, detail="Retry-After"
    ),
    "429-no-retry-after": Case(lambda s, f: [throttled()], "throttled", flags={"poll_timeout": "2s"}),
    "500": Case(
        lambda s, f: [graph_error(500, "InternalServerError", "Oops.")],
        "http_5xx",
        flags={"poll_timeout": "2s"},
        detail="HTTP 500 InternalServerError",
    ),
    "502-html": Case(
        lambda s, f: [Fault(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")],
        "http_5xx",
        flags={"poll_timeout": "2s"},
        detail="HTTP 502",
    ),
    "503-retry-after-past-budget": Case(
        lambda s, f: [Fault(503, {"error": {"code": "ServiceUnavailable", "message": "x"}}, {"Retry-After": "3"})],
        "http_5xx",
        flags={"poll_timeout": "1s"},
        detail="Retry-After 3s",
    ),
    "503-no-retry-after": Case(lambda s, f: [Fault(503, "")], "http_5xx", flags={"poll_timeout": "2s"}),
    "504": Case(lambda s, f: [Fault(504, "<html>Gateway Timeout</html>")], "http_5xx", flags={"poll_timeout": "2s"}),
    "connection-reset": Case(lambda s, f: [Fault(action="reset")], "network", flags={"poll_timeout": "1s"}),
    "read-stalls-past-timeout": Case(
        lambda s, f: [Fault(200, normal_body(s, f), action="stall", seconds=4)],
        "timeout",
        flags={"poll_timeout": "1500ms", "http_timeout": "1s"},
    ),
    "body-trickles-past-budget": Case(
        # Each piece arrives well within the read timeout; only the poll's budget can stop it.
        lambda s, f: [answer({**normal_body(s, f), "padding": "x" * 1_000_000}, "trickle", seconds=0.25)],
        "timeout",
        flags={"poll_timeout": "2s", "http_timeout": "1s"},
        detail="while reading",
    ),
    "malformed-json-seed-sample": Case(lambda s, f: [answer(SEED_SAMPLE)], "bad_response", detail="not valid JSON"),
    "truncated-body": Case(
        lambda s, f: [answer(normal_body(s, f), action="truncate")], "bad_response", detail="cut short"
    ),
    "html-with-200": Case(lambda s, f: [answer("<html>Sign in</html>")], "bad_response", detail="not valid JSON"),
    "body-over-the-cap": Case(
        lambda s, f: [answer(b'{"value": [], "pad": "' + b"x" * (33 * 1024 * 1024) + b'"}')],
        "bad_response",
        detail="byte cap",
    ),
    "wrong-types": Case(
        lambda s, f: [
            answer(
                s,
                legacy_payload("23123", {"registered": 1})  # type: ignore[arg-type]
                if s == "legacy"
                else {**details_page(f), "value": [{**user_record(1000), "isMfaRegistered": "true"}]},
            )
        ],
        "bad_response",
    ),
    "negative-count": Case(
        lambda s, f: [answer(legacy_payload(10, {"mfaRegistered": -3}))],
        "bad_response",
        detail="not a non-negative integer",
        sources=("legacy",),  # the details report has no counts, only records
    ),
    "next-link-loop": Case(
        lambda s, f: [answer({**details_page(f), "@odata.nextLink": f"{f.url}{DETAILS_PATH}?$top=999"})],
        "bad_response",
        detail="sent before",
        sources=("details",),
    ),
    "next-link-to-a-foreign-host": Case(
        # The same server under another name: had the token been sent there, the fake would have seen it.
        lambda s, f: [
            answer({**details_page(f), "@odata.nextLink": f.url.replace("127.0.0.1", "localhost") + DETAILS_PATH})
        ],
        "bad_response",
        detail="outside the Graph root",
        sources=("details",),
    ),
    "graph-4xx": Case(
        lambda s, f: [graph_error(403, "Authorization_RequestDenied", "Insufficient privileges.", "req-403")],
        "http_4xx",
        detail="Authorization_RequestDenied",
    ),
    "token-refused-even-fresh": Case(
        lambda s, f: [Fault(action="revoke"), Fault(action="revoke")], "auth", detail="HTTP 401"
    ),
    "token-endpoint-500": Case(
        lambda s, f: [Fault(500, "<html>AADSTS90033: A transient error has occurred.</html>")],
        "http_5xx",
        route="token",
        flags={"poll_timeout": "2s"},
        detail="identity platform answered HTTP 500",
        short_lived_tokens=True,
    ),
    "token-endpoint-reset": Case(
        lambda s, f: [Fault(action="reset")],
        "network",
        route="token",
        flags={"poll_timeout": "1s"},
        short_lived_tokens=True,
    ),
    "token-endpoint-not-json": Case(
        lambda s, f: [Fault(200, "<html>Down for maintenance</html>")],
        "bad_response",
        route="token",
        detail="identity platform's answer is not JSON",
        short_lived_tokens=True,
    ),
    "invalid-client": Case(
        lambda s, f: [
            Fault(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000222: The provided client secret keys are expired.",
                    "error_codes": [7000222],
                    "correlation_id": "corr-7",
                },
            )
        ],
        "auth",
        route="token",
        detail="invalid_client",
        short_lived_tokens=True,
    ),
}


def inject(fake: FakeGraph, source: str, case: Case, faults: list[Fault]) -> None:
    route = source if case.route == "graph" else case.route
    # For details, page 1 goes through; the fault hits page 2 (for the token route: page 2's token).
    first = [Fault(action="pass")] if source == "details" else []
    fake.fail(route, *first, *faults)


def change_the_tenant(fake: FakeGraph) -> None:
    fake.legacy = CHANGED_LEGACY
    fake.users = [user_record(i) for i in range(CHANGED_USERS)]


def make(fake: FakeGraph, source: str, **flags: str) -> Exporter:
    return make_exporter(fake, source=source, rate_limit="off", **flags)


def errors(exporter: Exporter, tenant: str) -> dict[str, float | None]:
    return {r: value(exporter, "credential_exporter_poll_errors_total", tenant=tenant, reason=r) for r in REASONS}


@pytest.mark.parametrize(
    ("name", "source"),
    [pytest.param(n, s, id=f"{n}-{s}") for n, case in FAILURES.items() for s in SOURCES if s in case.sources],
)
def test_a_fault_keeps_the_last_good_numbers_says_why_and_clears_by_itself(
    fake: FakeGraph, source: str, name: str
) -> None:
    case = FAILURES[name]
    if case.short_lived_tokens:
        fake.token_lifetime = 120  # under MSAL's 5-minute margin: every request asks the token endpoint
    exporter = make(fake, source, **case.flags)
    tenant = fake.tenant_id
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    before = registration_series(exporter)
    assert before

    change_the_tenant(fake)
    faults = case.faults(source, fake)
    inject(fake, source, case, faults)
    requests_before = len(fake.requests_to(PATHS[source]))
    tokens_before = fake.token_requests
    (status,) = exporter.poller.poll_round()

    assert not status.up
    assert status.last_reason == case.reason, status.last_detail
    assert case.detail in (status.last_detail or "")
    assert registration_series(exporter) == before
    assert value(exporter, "credential_exporter_up", tenant=tenant) == 0
    assert errors(exporter, tenant) == {r: float(r == case.reason) for r in REASONS}
    if name == "next-link-to-a-foreign-host":
        assert not [s for s in fake.seen if s.headers.get("Host", "").startswith("localhost")]
    # Nothing was retried past the budget: each scripted answer was asked for once (and a fault at the token
    # endpoint sent no request to Graph for the page).
    graph_faults = len(faults) if case.route == "graph" else 0
    assert len(fake.requests_to(PATHS[source])) == requests_before + (source == "details") + graph_faults
    if case.route == "token":  # invalid_client included: asked once, not again within the poll
        assert fake.token_requests == tokens_before + (source == "details") + len(faults)

    # The fault has cleared: the next poll succeeds by itself and publishes the tenant's new numbers. Its
    # budget is long enough to wait out a Retry-After that outlasted the failed poll's.
    (job,) = exporter.poller.jobs
    status = job.poll(RECOVERY_BUDGET)
    assert status.up, status.last_detail
    after = registration_series(exporter)
    assert after != before
    expected_total = 24000 if source == "legacy" else CHANGED_USERS
    assert value(exporter, "tenant_total_users", tenant=tenant) == expected_total
    assert value(exporter, "credential_exporter_up", tenant=tenant) == 1
    assert errors(exporter, tenant) == {r: float(r == case.reason) for r in REASONS}


# --- faults that a retry within the poll's budget rides out ---------------------------------------------------


@dataclass
class Ridden:
    faults: Callable[[str, FakeGraph], list[Fault]]
    retried: str  # the reason counted in credential_exporter_graph_retries_total
    min_gap: float  # the retry went out no sooner than this many seconds after the fault's answer
    route: str = "graph"
    flags: dict[str, str] = field(default_factory=dict)
    throttled_seconds: float = 0.0  # at least this much waiting is counted as throttled
    short_lived_tokens: bool = False


RIDDEN: dict[str, Ridden] = {
    "429-retry-after-seconds": Ridden(lambda s, f: [throttled("1")], "throttled", 0.9, throttled_seconds=0.9),
    # An HTTP date has whole seconds: 2 s from now is 1 to 2 s from the answer.
    "429-retry-after-date": Ridden(lambda s, f: [throttled(http_date(2))], "throttled", 0.9, throttled_seconds=0.9),
    "429-no-retry-after": Ridden(lambda s, f: [throttled()], "throttled", 4.9, throttled_seconds=4.9),
    "503-retry-after": Ridden(
        lambda s, f: [Fault(503, "", {"Retry-After": "1"})], "http_5xx", 0.9, throttled_seconds=0.9
    ),
    "504-retry-after": Ridden(lambda s, f: [Fault(504, "", {"Retry-After": "1"})], "http_5xx", 0.9),
    "500": Ridden(lambda s, f: [graph_error(500, "InternalServerError", "Oops.")], "http_5xx", 4.9),
    "connection-reset": Ridden(lambda s, f: [Fault(action="reset")], "network", 0.9),
    "read-stalls-past-timeout": Ridden(
        lambda s, f: [Fault(200, normal_body(s, f), action="stall", seconds=3)],
        "timeout",
        0.9,
        flags={"http_timeout": "1s"},
    ),
    "token-expires-mid-paging": Ridden(lambda s, f: [Fault(action="revoke")], "auth", 0.0),
    "token-endpoint-500": Ridden(
        lambda s, f: [Fault(500, "<html>transient</html>")], "http_5xx", 4.9, route="token", short_lived_tokens=True
    ),
    "token-endpoint-reset": Ridden(
        lambda s, f: [Fault(action="reset")], "network", 0.9, route="token", short_lived_tokens=True
    ),
}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", RIDDEN)
def test_a_retry_within_the_budget_rides_the_fault_out_and_is_counted(fake: FakeGraph, source: str, name: str) -> None:
    case = RIDDEN[name]
    if case.short_lived_tokens:
        fake.token_lifetime = 120
    exporter = make(fake, source, **case.flags)
    tenant = fake.tenant_id
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    change_the_tenant(fake)
    route = source if case.route == "graph" else case.route
    fake.fail(route, *([Fault(action="pass")] if source == "details" else []), *case.faults(source, fake))
    seen_before = len(fake.seen)
    tokens_before = fake.token_requests

    (status,) = exporter.poller.poll_round()

    assert status.up, status.last_detail
    expected_total = 24000 if source == "legacy" else CHANGED_USERS
    assert value(exporter, "tenant_total_users", tenant=tenant) == expected_total
    assert value(exporter, "credential_exporter_graph_retries_total", tenant=tenant, reason=case.retried) == 1
    retried = {
        r for r in REASONS if value(exporter, "credential_exporter_graph_retries_total", tenant=tenant, reason=r)
    }
    assert retried == {case.retried}
    assert errors(exporter, tenant) == dict.fromkeys(REASONS, 0.0)
    throttled_seconds = value(exporter, "credential_exporter_throttled_seconds_total", tenant=tenant) or 0.0
    assert throttled_seconds >= case.throttled_seconds
    # The retry waited as long as Graph (or the back-off) asked: the faulty answer's request and the one after
    # it on the same route are at least min_gap apart.
    poll = fake.seen[seen_before:]
    if case.route == "token":
        on_route = [s for s in poll if s.method == "POST"]
        assert fake.token_requests > tokens_before
    else:
        on_route = [s for s in poll if s.path.split("?")[0] == PATHS[source]]
    fault_at = 1 if source == "details" else 0
    gap = on_route[fault_at + 1].at - on_route[fault_at].at
    assert gap >= case.min_gap
    if name == "token-expires-mid-paging":
        assert fake.token_requests == tokens_before + 1  # one fresh token, then the page again
        assert value(exporter, "credential_exporter_graph_requests_total", tenant=tenant, code="401") == 1


def test_retry_after_holds_back_the_next_poll_too(fake: FakeGraph) -> None:
    exporter = make(fake, "legacy", poll_timeout="1s")
    fake.fail("legacy", throttled("3"))
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "throttled"
    # The next poll comes at once: Graph's three seconds have not passed, so nothing is sent and it fails.
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "throttled"
    assert len(fake.requests_to(LEGACY_PATH)) == 1
    # A poll with the budget to wait it out sends its request only once the three seconds are over.
    (job,) = exporter.poller.jobs
    assert job.poll(RECOVERY_BUDGET).up
    first, second = fake.requests_to(LEGACY_PATH)
    assert second.at - first.at >= 2.9
    assert (value(exporter, "credential_exporter_throttled_seconds_total", tenant=fake.tenant_id) or 0) >= 1.5
    # The failed polls retried nothing, and say so.
    assert value(exporter, "credential_exporter_graph_retries_total", tenant=fake.tenant_id, reason="throttled") is None


# --- the same matrix, the exporter a separate process at debug level: the secret appears nowhere ---------------


def last_success(url: str, tenant: str) -> float:
    prefix = f'credential_exporter_last_success_timestamp_seconds{{tenant="{tenant}"}} '
    for line in get(url + "/metrics")[1].splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


def test_the_client_secret_appears_in_no_byte_of_output_through_the_whole_matrix(
    fake: FakeGraph, tmp_path: Path
) -> None:
    # The details report: it meets every fault the legacy one does but the negative count, and more (paging).
    source = "details"
    secret = fake.client_secret
    fake.token_lifetime = 120  # every request sends the secret to the token endpoint
    tenant = fake.tenant_id
    args = [
        "--graph.endpoint", fake.url, "--source", source, "--graph.rate-limit", "off", "--poll.interval", "1s",
        "--poll.timeout", "1s", "--graph.timeout", "500ms", "--log.level", "debug",
    ]  # fmt: skip
    # Every failure (but the 33 MiB body: its cap is checked before a byte of it is read) and a token that expires
    # mid-paging, which a fresh token rides out.
    matrix: list[Case | Ridden] = [c for n, c in FAILURES.items() if source in c.sources and n != "body-over-the-cap"]
    matrix.append(RIDDEN["token-expires-mid-paging"])
    served = ""
    # Files, not pipes: at debug level it writes more than a pipe holds, and a full pipe would block its logging.
    with exporter_process(*args, env=fake.env(), log=tmp_path / "stderr", stdout=tmp_path / "stdout") as (url, proc):
        wait_for(lambda: _up(url), timeout=30)
        for case in matrix:
            route = source if case.route == "graph" else case.route
            fake.fail(route, *([Fault(action="pass")] if source == "details" else []), *case.faults(source, fake))
            wait_for(lambda r=route: not fake.faults[r])  # every scripted answer was given
            served += get(url + "/metrics")[1] + get(url + "/")[1] + get(url + "/healthz")[1] + get(url + "/readyz")[1]
        since = last_success(url, tenant)
        wait_for(lambda: last_success(url, tenant) > since)  # a poll after the last fault succeeded: all is logged
        served += get(url + "/metrics")[1]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    out = (tmp_path / "stdout").read_text()
    err = (tmp_path / "stderr").read_text()
    # Every kind of failure was logged, at debug level, with everything the exporter says about it.
    for reason in ("throttled", "http_5xx", "http_4xx", "network", "timeout", "bad_response", "auth"):
        assert f"reason={reason}" in err, reason
    assert "level=debug" in err and "Traceback" not in err
    for text in (served, out, err):
        assert secret not in text
        assert "<redacted>" not in text  # nothing even tried to write it: the scrubber had nothing to do


def _up(url: str) -> bool:
    try:
        return last_success(url, FakeGraph.tenant_id) > 0
    except OSError:
        return False  # not listening yet


def test_a_managed_identity_endpoint_failing_with_a_5xx_page_is_a_5xx_not_a_refused_credential(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MSAL hands the endpoint's HTML error page to json.loads: without the status, it looked like "auth".
    monkeypatch.setenv("IDENTITY_ENDPOINT", fake.url + MSI_PATH)
    monkeypatch.setenv("IDENTITY_HEADER", MSI_HEADER)
    env = {"AZURE_TENANT_ID": fake.tenant_id, "REQUESTS_CA_BUNDLE": str(fake.ca_path)}
    exporter = make_exporter(fake, env=env, auth="managed-identity", source="legacy", poll_timeout="2s")
    fake.fail("msi", Fault(500, "<html>Service Unavailable</html>"))
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "http_5xx", status.last_detail
    assert fake.requests_to(LEGACY_PATH) == []
    # The next poll, given the room for a 5 s back-off, rides it out: MSAL replays the cached 500 for 5 s
    # (no request), the retry after the back-off gets a token. The endpoint was asked twice in all.
    (job,) = exporter.poller.jobs
    assert job.poll(RECOVERY_BUDGET).up
    assert len(fake.requests_to(MSI_PATH)) == 2
    tenant = fake.tenant_id
    assert (value(exporter, "credential_exporter_graph_retries_total", tenant=tenant, reason="http_5xx") or 0) >= 1
    assert value(exporter, "tenant_total_users", tenant=tenant) == 23123


def test_a_stalled_token_endpoint_cannot_hold_a_poll_past_its_budget(fake: FakeGraph) -> None:
    fake.token_lifetime = 120  # every poll asks the token endpoint
    exporter = make(fake, "legacy", poll_timeout="2s")  # --graph.timeout stays at its 30 s default
    assert exporter.poller.poll_round()[0].up
    fake.fail("token", Fault(action="stall", seconds=30))
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "timeout", status.last_detail
    # Generous: the budget is 2 s; the read timeout alone would have let the token request run for 30 s.
    assert status.last_duration is not None and status.last_duration < 10
    assert exporter.poller.poll_round()[0].up
