"""The exact text Prometheus receives for a known state, compared byte for byte with a golden file."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from exporter import __version__
from exporter.collector import RegistrationCollector
from exporter.poller import TenantJob
from exporter.snapshot import Report, TenantStatus
from exporter.sources.demo import DemoSource
from exporter.sources.details import Tally
from tests.conftest import FIXTURES
from tests.fakegraph import user_record


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
    tally.add([user_record(1), user_record(2), user_record(10), user_record(14)])
    modern.status = TenantStatus(
        report=tally.report("details"), polled=True, up=True, last_success=1795820000.0, last_duration=3.0
    )
    return [ok, failing, modern]


def test_exposition_of_a_known_state_matches_the_golden_file() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RegistrationCollector(known_jobs, "15m", 900.0))
    text = generate_latest(registry).decode()
    golden = (FIXTURES / "golden" / "known_state.prom").read_text().replace("@VERSION@", __version__)
    assert text == golden
