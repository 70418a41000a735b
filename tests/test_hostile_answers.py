"""A hostile Graph the exporter trusts (a compromised or impersonated endpoint, with a certificate it accepts):
each hostile answer, served over TLS by the fake, fails the poll with its reason and one warning line, keeps
the last good numbers, leaves /metrics (both formats) and / answering 200, and the next good answer recovers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from exporter.app import Exporter
from exporter.web.routes import Endpoints, serve
from tests.fakegraph import FakeGraph, Fault, legacy_payload, user_record
from tests.support import make_exporter

COUNTS = {"registered": 21000, "enabled": 22000, "capable": 20500, "mfaRegistered": 18000}
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def legacy_with(total: Any = 5, statuses: list[Any] | None = None) -> dict[str, Any]:
    """A legacy report of `total` users and one user in each of `statuses`."""
    entries = [{"registrationStatus": s, "registrationCount": 1} for s in statuses or ["mfaRegistered"]]
    return {"value": [{"id": "x", "totalUserCount": total, "userRegistrationCounts": entries}]}


def details_page(methods_of: list[list[Any]]) -> dict[str, Any]:
    """A last page of users (as user_record makes them) who registered the given methods."""
    return {"value": [{**user_record(i), "methodsRegistered": methods} for i, methods in enumerate(methods_of)]}


@contextmanager
def web(exporter: Exporter) -> Iterator[str]:
    server = serve(Endpoints.of(exporter, lambda: True, lambda: True), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, after checking that /metrics in both formats and / answer whole."""
    text = requests.get(base + "/metrics", timeout=10)
    openmetrics = requests.get(base + "/metrics", headers=OPENMETRICS, timeout=10)
    page = requests.get(base + "/", timeout=10)
    assert (text.status_code, openmetrics.status_code, page.status_code) == (200, 200, 200)
    assert openmetrics.text.endswith("# EOF\n") and page.text.endswith("</html>\n")
    assert list(parse_openmetrics(openmetrics.text))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.text)
        for s in family.samples
    }


def numbers(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[Any, float]:
    """The samples that hold Graph's numbers (not the exporter's own health, nor the process's)."""
    own = ("credential_exporter_", "process_", "python_")
    return {k: v for k, v in samples.items() if not k[0].startswith(own)}


def sample(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def poll_fails_with(
    exporter: Exporter, reason: str, caplog: pytest.LogCaptureFixture
) -> logging.LogRecord:  # the one line the failed poll wrote
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="exporter"):
        (status,) = exporter.poller.poll_round()
    assert not status.up and status.last_reason == reason
    (line,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.levelno == logging.WARNING and line.exc_info is None and line.getMessage() == "poll failed"
    assert line.kv["reason"] == reason  # type: ignore[attr-defined]
    return line


LEGACY = [
    pytest.param(legacy_with(total=10**400), id="total-10**400"),
    pytest.param(legacy_with(total=2**53 + 1), id="total-past-2**53"),
    pytest.param(b'{"value": [{"totalUserCount": 1e400, "userRegistrationCounts": []}]}', id="total-1e400"),
    pytest.param(legacy_with(statuses=[f"s{i}" for i in range(200_000)]), id="200000-statuses"),
    pytest.param(legacy_with(statuses=[f"s{i}" for i in range(33)]), id="33-statuses"),
    pytest.param(legacy_with(statuses=["s" * 65]), id="status-of-65-chars"),
    pytest.param(legacy_with(statuses=[" "]), id="whitespace-status"),
    pytest.param(legacy_with(statuses=["mfa Registered"]), id="status-with-space"),
    pytest.param(legacy_with(statuses=["mfaRegistered\n"]), id="status-with-newline"),
    pytest.param(legacy_with(statuses=["mfaRegist\u0435red"]), id="status-with-cyrillic-e"),
    pytest.param(
        b'{"value": [{"totalUserCount": 5, "userRegistrationCounts": ['
        b'{"registrationStatus": "\\ud800", "registrationCount": 1}]}]}',
        id="status-lone-surrogate",
    ),
    pytest.param(
        b'{"value": [{"totalUserCount": 5, "totalUserCount": 7, "userRegistrationCounts": []}]}', id="key-twice"
    ),
    pytest.param(b"[" * 200_000, id="nested-200000-deep"),
    pytest.param(b'{"value": [' * 100_000, id="nested-objects-100000-deep"),
    pytest.param(b'{"value": [{"totalUserCount": 5, "userRegistrationCounts": [], "id": "\xc3\x28"}]}', id="bad-utf8"),
    pytest.param({"value": [5]}, id="value-holds-a-number"),
    pytest.param({"value": [None]}, id="value-holds-null"),
]


@pytest.mark.parametrize("body", LEGACY)
def test_a_hostile_legacy_answer_fails_with_bad_response_and_every_scrape_stays_whole(
    fake: FakeGraph, body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = make_exporter(fake, source="legacy")
    tenant = fake.tenant_id
    with web(exporter) as base:
        exporter.poller.poll_round()
        good = scrape(base)
        assert sample(good, "tenant_total_users", tenant=tenant) == 23123
        fake.fail("legacy", Fault(200, body))
        poll_fails_with(exporter, "bad_response", caplog)
        after = scrape(base)
        assert numbers(after) == numbers(good)  # the last good numbers, whole
        assert sample(after, "credential_exporter_up", tenant=tenant) == 0
        assert sample(after, "credential_exporter_poll_errors_total", tenant=tenant, reason="bad_response") == 1
        fake.legacy = legacy_payload(23200, COUNTS)
        (status,) = exporter.poller.poll_round()
        assert status.up
        assert sample(scrape(base), "tenant_total_users", tenant=tenant) == 23200


DETAILS = [
    pytest.param(details_page([[f"method{i}"] for i in range(200)]), id="200-methods"),
    pytest.param(details_page([["m" * 65]]), id="method-of-65-chars"),
    pytest.param(details_page([["fido2 key"]]), id="method-with-space"),
    pytest.param(details_page([["<script>"]]), id="method-with-markup"),
    pytest.param(b'{"value": [{"methodsRegistered": ["\\udfff"]}]}', id="method-lone-surrogate"),
    pytest.param(b'{"value": ' + b"[" * 200_000, id="nested-200000-deep"),
]


@pytest.mark.parametrize("body", DETAILS)
def test_a_hostile_details_page_fails_with_bad_response_and_every_scrape_stays_whole(
    fake: FakeGraph, body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fake.users = [user_record(i) for i in range(20)]
    exporter = make_exporter(fake, source="details")
    tenant = fake.tenant_id
    with web(exporter) as base:
        exporter.poller.poll_round()
        good = scrape(base)
        assert sample(good, "credential_method_registered_users", tenant=tenant, method="fido2") == 3
        fake.fail("details", Fault(200, body))
        poll_fails_with(exporter, "bad_response", caplog)
        after = scrape(base)
        assert numbers(after) == numbers(good)
        assert sample(after, "credential_exporter_up", tenant=tenant) == 0
        fake.users = [user_record(i) for i in range(30)]
        (status,) = exporter.poller.poll_round()
        assert status.up
        assert sample(scrape(base), "tenant_users", tenant=tenant, user_type="guest", admin="false") == 3


def test_an_error_answer_nested_too_deeply_keeps_its_status_reason(
    fake: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    # The error body is read for Graph's code; one nested past the decoder's depth used to escape as `internal`.
    exporter = make_exporter(fake, source="legacy")
    fake.fail("legacy", Fault(404, b"[" * 60_000))  # under the 64 KiB read for error bodies
    line = poll_fails_with(exporter, "http_4xx", caplog)
    assert line.kv["status"] == 404  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "reason"),
    [(300, "bad_response"), (302, "bad_response"), (399, "bad_response"), (400, "http_4xx"), (499, "http_4xx")],
)
def test_each_status_at_the_edge_of_its_class_fails_with_its_reason_and_is_not_retried(
    fake: FakeGraph, status: int, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = make_exporter(fake, source="legacy")
    redirect = {"Location": "https://attacker.example/steal"}  # never followed: the token would go with it
    fake.fail("legacy", Fault(status, {"error": {"code": "Edge", "message": "edge"}}, redirect))
    line = poll_fails_with(exporter, reason, caplog)
    assert line.kv["status"] == status  # type: ignore[attr-defined]
    tenant = fake.tenant_id
    assert (
        exporter.registry.get_sample_value(
            "credential_exporter_graph_requests_total", {"tenant": tenant, "code": str(status)}
        )
        == 1
    )
