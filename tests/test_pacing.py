"""Pacing with a clock we control: a tenant's window, the window shared by all tenants, both at once, and
Graph's Retry-After."""

from __future__ import annotations

import logging
import random
import time

import pytest

from exporter.errors import REASONS, PollError
from exporter.graph.client import MAX_ATTEMPTS, GraphClient
from exporter.graph.credentials import token_provider
from exporter.graph.pacing import Gate, Window
from exporter.telemetry import TenantCounters
from exporter.values import RateLimit
from tests.fakegraph import DETAILS_PATH, LEGACY_PATH, FakeGraph, Fault, user_record
from tests.support import make_exporter, value, wait_for


class Clock:
    """A monotonic clock that only moves when a gate sleeps."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.slept.append(seconds)
        self.now += seconds
        return False


def gate(clock: Clock, limit: RateLimit | None, shared: Window | None) -> Gate:
    return Gate(limit, clock=clock, sleep=clock.sleep, shared=shared)


def test_the_shared_window_paces_all_tenants_together() -> None:
    clock = Clock()
    shared = Window(RateLimit(3, 10.0))
    a, b = gate(clock, None, shared), gate(clock, None, shared)
    assert [a.wait_turn(), b.wait_turn(), a.wait_turn()] == [0, 0, 0]
    # The fourth request, whichever tenant sends it, waits for the first to leave the window (+ margin).
    waited = b.wait_turn()
    assert waited == pytest.approx(10.25)


def test_a_request_waits_for_its_tenant_window_and_the_shared_one() -> None:
    clock = Clock()
    shared = Window(RateLimit(100, 10.0))
    a, b = gate(clock, RateLimit(2, 10.0), shared), gate(clock, RateLimit(2, 10.0), shared)
    a.wait_turn()
    a.wait_turn()
    assert b.wait_turn() == 0  # b's own window is empty, and the shared one has room
    assert a.wait_turn() == pytest.approx(10.25)  # a's own window is full


def test_a_long_wait_for_a_turn_is_waited_out_not_failed() -> None:
    clock = Clock()
    a = gate(clock, RateLimit(1, 600.0), None)
    a.wait_turn()
    a.hold_until(clock.now + 900)  # a Retry-After longer than the window
    assert a.wait_turn() == pytest.approx(900)
    assert a.wait_turn() == pytest.approx(600.25)  # then the window: waits add up, none is a failure


def test_shutting_down_ends_a_wait_for_a_turn_without_sending() -> None:
    clock = Clock()
    stopping: list[float] = []

    def sleep(seconds: float) -> bool:
        stopping.append(seconds)
        return True  # the exporter is shutting down

    a = Gate(RateLimit(1, 10.0), clock=clock, sleep=sleep)
    a.wait_turn()
    with pytest.raises(PollError) as caught:
        a.wait_turn()
    assert caught.value.reason == "timeout"
    assert stopping == [pytest.approx(10.25)]  # one sleep, not a spin


def test_a_hold_extended_while_waiting_is_waited_and_counted_in_full() -> None:
    clock = Clock()

    def sleep(seconds: float) -> bool:
        if not clock.slept:
            a.hold_until(clock.now + seconds + 5)  # another answer's Retry-After arrives meanwhile
        return clock.sleep(seconds)

    a = Gate(None, clock=clock, sleep=sleep)
    a.hold_until(clock.now + 10)
    assert a.wait_turn() == pytest.approx(15)
    assert clock.slept == pytest.approx([10, 5])


# --- Graph's Retry-After, from a real answer over TLS: bounded, and never an error of the exporter -------------


def paced_client(fake: FakeGraph, clock: Clock) -> GraphClient:
    """A client whose pacing waits run on `clock` (instantly), talking to the fake for real."""
    config = make_exporter(fake, source="legacy").config
    return GraphClient(
        root=config.graph_root,
        tokens=token_provider(config.tenants[0], config),
        gate=Gate(None, clock=clock, sleep=clock.sleep),
        counters=TenantCounters(),
        read_timeout=5,
        sleep=clock.sleep,
        clock=clock,
        max_hold=60.0,
        rng=random.Random(7),
    )


def retry_after(value: str, status: int = 429) -> Fault:
    return Fault(status, {"error": {"code": "TooManyRequests", "message": "x"}}, {"Retry-After": value})


@pytest.mark.parametrize(
    "hostile",
    ["999999", "9" * 400, "Fri, 31 Dec 9999 23:59:59 GMT"],
    ids=["a-million-seconds", "400-digits", "year-9999"],
)
def test_an_absurd_retry_after_is_clipped_to_the_bound_and_said_once(
    fake: FakeGraph, hostile: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(time.monotonic())
    client = paced_client(fake, clock)
    fake.fail("legacy", retry_after(hostile), retry_after(hostile))
    with caplog.at_level(logging.WARNING):
        assert client.get_json(fake.url + LEGACY_PATH, clock.now + 30)
    # Two holds of exactly the bound (the clock only moves when the gate sleeps), then the answer.
    assert clock.slept == pytest.approx([60.0, 60.0])
    assert len(fake.requests_to(LEGACY_PATH)) == 3
    clipped = [r for r in caplog.records if "Retry-After is longer" in r.getMessage()]
    assert len(clipped) == 1


def test_a_504_with_retry_after_holds_the_gate_as_long_as_it_says(fake: FakeGraph) -> None:
    clock = Clock(time.monotonic())
    client = paced_client(fake, clock)
    fake.fail("legacy", retry_after("30", 504))
    assert client.get_json(fake.url + LEGACY_PATH, clock.now + 3600)
    # 30 s in the gate, where the back-off after a bare 5xx would be 5 to 7 s of sleep.
    assert clock.slept == pytest.approx([30.0])
    assert len(fake.requests_to(LEGACY_PATH)) == 2


@pytest.mark.parametrize("unreadable", ["soon", "²", "Mon, 99 Foo 2024 99:99:99 GMT", "1.5", "-3"])
@pytest.mark.parametrize(("status", "reason"), [(429, "throttled"), (503, "http_5xx")])
def test_an_unreadable_retry_after_is_treated_as_absent(
    fake: FakeGraph, unreadable: str, status: int, reason: str
) -> None:
    clock = Clock(time.monotonic())
    client = paced_client(fake, clock)
    fake.fail("legacy", *[retry_after(unreadable, status)] * MAX_ATTEMPTS)
    with pytest.raises(PollError) as caught:
        client.get_json(fake.url + LEGACY_PATH, clock.now + 3600)
    # The answer's own reason after every attempt, not an error of the exporter; no hold came from the header.
    assert caught.value.reason == reason
    assert caught.value.status == status
    assert "Retry-After" not in caught.value.detail


ERRORS = "credential_exporter_poll_errors_total"


@pytest.mark.parametrize(
    ("status", "reason"),
    [(302, "bad_response"), (399, "bad_response"), (400, "http_4xx"), (499, "http_4xx"), (599, "http_5xx")],
)
def test_the_status_decides_the_reason_at_its_edges(fake: FakeGraph, status: int, reason: str) -> None:
    clock = Clock(time.monotonic())
    client = paced_client(fake, clock)
    fake.fail("legacy", *[Fault(status, "", {"Location": fake.url + LEGACY_PATH})] * MAX_ATTEMPTS)
    with pytest.raises(PollError) as caught:
        client.get_json(fake.url + LEGACY_PATH, clock.now + 3600)
    assert (caught.value.reason, caught.value.status) == (reason, status)


# --- a paging longer than the interval, at Graph's pace compressed to seconds ----------------------------------


def test_a_paging_longer_than_the_interval_completes_at_graphs_pace_with_up_held(
    fake: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    # Graph's 5 requests per 10 s, compressed to 5 per 2 s: 13 pages of 5 users take about 5 s, more than twice
    # the 2 s interval and five times the 1 s budget, all of it but a few milliseconds spent waiting for a turn.
    fake.users = [user_record(i) for i in range(63)]
    fake.rate_limit = (5, 2.0)
    exporter = make_exporter(
        fake,
        source="details",
        poll_interval="2s",
        poll_timeout="1s",
        page_size=5,
        rate_limit="5/2s",
        global_rate_limit="off",
    )
    tenant = fake.tenant_id
    up: list[float | None] = []
    successes: set[float] = set()

    def two_pagings_done() -> bool:
        up.append(value(exporter, "credential_exporter_up", tenant=tenant))
        successes.add(value(exporter, "credential_exporter_last_success_timestamp_seconds", tenant=tenant) or 0.0)
        return len(successes - {0.0}) >= 2

    with caplog.at_level(logging.INFO):
        exporter.poller.start()
        try:
            # Two whole pagings, the second started at the first tick after the first ended.
            wait_for(two_pagings_done, 60)
            errors = [
                value(exporter, "credential_exporter_poll_errors_total", tenant=tenant, reason=r) for r in REASONS
            ]
            duration = value(exporter, "credential_exporter_poll_duration_seconds", tenant=tenant)
        finally:
            exporter.poller.close()
    assert value(exporter, "tenant_total_users", tenant=tenant) == 63
    # From the first success on, `up` never dropped, no poll failed, and Graph never had to say 429.
    assert up[up.index(1.0) :] == [1.0] * len(up[up.index(1.0) :])
    assert errors == [0.0] * len(REASONS)
    assert fake.throttled == 0
    assert value(exporter, "credential_exporter_graph_requests_total", tenant=tenant, code="429") is None
    assert duration is not None and duration > 2  # the paging did outlast the interval
    # The first paging could not know the tenant's size: it said once, when it passed the interval.
    outlasted = [r for r in caplog.records if "has outlasted the interval" in r.getMessage()]
    assert len(outlasted) == 1
    # The second paging knew the tenant's size after its first page, and said once what to expect.
    # (A third paging may have begun by the time the poller stopped: once a paging, not once in all.)
    expected = [r for r in caplog.records if "expected to outlast the interval" in r.getMessage()]
    pagings = [seen for seen in fake.requests_to(DETAILS_PATH) if "skiptoken" not in seen.path]
    assert 1 <= len(expected) <= len(pagings) - 1
    assert {r.kv["pages_left"] for r in expected} == {12}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("flags", "warned"),
    [
        ({"poll_interval": "1s", "poll_timeout": "1s", "rate_limit": "5/10s"}, "graph.rate-limit"),
        (
            {"poll_interval": "1s", "poll_timeout": "1s", "rate_limit": "off", "global_rate_limit": "1/2s"},
            "graph.global-rate-limit",
        ),
        ({"poll_interval": "15m", "poll_timeout": "12m"}, None),
    ],
    ids=["tenant-pace", "global-pace", "defaults"],
)
def test_an_interval_too_short_for_the_pace_is_said_at_start(
    fake: FakeGraph, caplog: pytest.LogCaptureFixture, flags: dict[str, str], warned: str | None
) -> None:
    with caplog.at_level(logging.WARNING):
        make_exporter(fake, **flags)
    said = [r for r in caplog.records if "fewer requests than one poll needs" in r.getMessage()]
    assert [next(iter(set(r.kv) & {"graph.rate-limit", "graph.global-rate-limit"})) for r in said] == (  # type: ignore[attr-defined]
        [warned] if warned else []
    )
