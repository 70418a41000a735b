"""Pacing with a clock we control: a tenant's window, the window shared by all tenants, and both at once."""

from __future__ import annotations

import pytest

from exporter.errors import PollError
from exporter.graph.pacing import Gate, Window
from exporter.values import RateLimit


class Clock:
    """A monotonic clock that only moves when a gate sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
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
    far = clock.now + 3600
    assert [a.wait_turn(far), b.wait_turn(far), a.wait_turn(far)] == [0, 0, 0]
    # The fourth request, whichever tenant sends it, waits for the first to leave the window (+ margin).
    waited = b.wait_turn(far)
    assert waited == pytest.approx(10.25)


def test_a_request_waits_for_its_tenant_window_and_the_shared_one() -> None:
    clock = Clock()
    shared = Window(RateLimit(100, 10.0))
    a, b = gate(clock, RateLimit(2, 10.0), shared), gate(clock, RateLimit(2, 10.0), shared)
    far = clock.now + 3600
    a.wait_turn(far)
    a.wait_turn(far)
    assert b.wait_turn(far) == 0  # b's own window is empty, and the shared one has room
    assert a.wait_turn(far) == pytest.approx(10.25)  # a's own window is full


def test_a_full_shared_window_past_the_deadline_fails_at_once_with_timeout() -> None:
    clock = Clock()
    shared = Window(RateLimit(1, 10.0))
    a, b = gate(clock, None, shared), gate(clock, None, shared)
    a.wait_turn(clock.now + 60)
    with pytest.raises(PollError) as caught:
        b.wait_turn(clock.now + 5)
    assert caught.value.reason == "timeout"
    assert clock.slept == []
