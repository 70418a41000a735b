"""The exact text Prometheus receives for a known state, compared byte for byte with a golden file, and the
cache that serves it: the same bytes as an uncached rendering, new bytes after a poll."""

from __future__ import annotations

import gzip
import platform

import msgspec
import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.collector import RegistrationCollector
from exporter.poller import TenantJob
from exporter.snapshot import Report, TenantStatus
from exporter.sources.demo import DemoSource
from exporter.sources.details import Tally
from exporter.sources.records import Record
from exporter.web.exposition import Exposition
from exporter.web.routes import Endpoints, serve
from tests.fakegraph import FakeGraph, legacy_payload, user_record
from tests.support import FIXTURES, make_exporter


def known_jobs() -> list[TenantJob]:
    ok = TenantJob("contoso", DemoSource())
    ok.status = TenantStatus(
        report=Report(
            "legacy", 23123, (("capable", 323), ("enabled", 4234), ("mfaRegistered", 33), ("registered", 23423))
        ),
        polled=True,
        up=True,
        last_success=1795820000.0,
        last_duration=0.25,
    )
    ok.counters.count_request(200)
    ok.counters.count_request(200)
    ok.counters.count_request(429)
    ok.counters.count_retry("throttled")
    ok.counters.add_throttled(2.5)
    # A tenant whose polls have failed from the start: health series only, no numbers.
    failing = TenantJob('fabrikam "eu"', DemoSource())
    failing.status = TenantStatus(polled=True, up=False, last_duration=1.5, last_reason="auth", last_detail="x")
    failing.counters.count_error("auth")
    # A tenant read through the modern report: every breakdown, zeros included.
    modern = TenantJob("northwind", DemoSource())
    tally = Tally()
    tally.add(msgspec.convert([user_record(i) for i in (1, 2, 10, 14)], list[Record]))
    modern.status = TenantStatus(
        report=tally.report("details"), polled=True, up=True, last_success=1795820000.0, last_duration=3.0
    )
    return [ok, failing, modern]


def test_exposition_of_a_known_state_matches_the_golden_file() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RegistrationCollector(known_jobs, "15m", 900.0))
    text = generate_latest(registry).decode()
    golden = (FIXTURES / "golden" / "known_state.prom").read_text()
    golden = golden.replace("@VERSION@", __version__).replace("@PYTHON_VERSION@", platform.python_version())
    assert text == golden


# --- the cache of /metrics ---------------------------------------------------------------------------------

ACCEPTS = (
    "",
    "text/plain;version=0.0.4",
    "text/plain;version=1.0.0",
    "application/openmetrics-text; version=1.0.0",
    "application/openmetrics-text",
)


def served(exposition: Exposition, accept: str, compress: bool) -> bytes:
    body, _ = exposition.render(accept, compress)
    return gzip.decompress(body) if compress else body


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_cached_exposition_is_the_uncached_rendering_byte_for_byte(accept: str, compress: bool) -> None:
    collector = RegistrationCollector(known_jobs, "15m", 900.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    encoder, content_type = choose_encoder(accept)
    exposition = Exposition(collector.parts())
    for _ in range(2):  # rendered, then from the cache
        assert served(exposition, accept, compress) == encoder(registry)
        assert exposition.render(accept, compress)[1] == content_type


def test_a_graph_request_renders_the_traffic_again_but_not_the_statuses() -> None:
    jobs = known_jobs()
    reads: list[str] = []

    def tenants() -> list[TenantJob]:
        reads.append("read")
        return jobs

    exposition = Exposition(RegistrationCollector(tenants, "15m", 900.0).parts())
    first = served(exposition, "", True)
    rendered = len(reads)  # each part reads the tenants once
    assert served(exposition, "", True) == first and len(reads) == rendered  # nothing changed: all from the cache
    jobs[0].counters.count_request(200)
    after = served(exposition, "", True)
    assert len(reads) == rendered + 1  # the traffic part alone
    assert 'credential_exporter_graph_requests_total{code="200",tenant="contoso"} 3.0' in after.decode()


def test_the_cache_serves_new_numbers_after_a_poll(fake: FakeGraph) -> None:
    exporter = make_exporter(fake, source="legacy")
    exporter.poller.poll_round()
    server = serve(Endpoints.of(exporter, lambda: True, lambda: True), "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        tenant = fake.tenant_id
        assert f'tenant_total_users{{tenant="{tenant}"}} 23123.0' in requests.get(url, timeout=5).text
        fake.legacy = legacy_payload(30000, {"registered": 1, "mfaRegistered": 2})
        exporter.poller.poll_round()
        for accept in ACCEPTS:
            answer = requests.get(url, headers={"Accept": accept, "Accept-Encoding": "gzip"}, timeout=5)
            assert answer.headers["Content-Encoding"] == "gzip"
            assert f'tenant_total_users{{tenant="{tenant}"}} 30000.0' in answer.text
            assert 'credential_registered_users{status="mfaRegistered",tenant="' + tenant + '"} 2.0' in answer.text
            # The same text as the registry renders uncached, but for the process metrics, which move between the two.
            encoder, _ = choose_encoder(accept)
            assert own_lines(answer.text) == own_lines(encoder(exporter.registry).decode())
        assert requests.head(url, timeout=5).content == b""
    finally:
        server.shutdown()
        server.server_close()


def own_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "process_" not in line and "python_info" not in line]
