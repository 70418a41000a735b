"""The poller's schedule: each tenant on its own cadence, a stuck one holding back nobody but itself.

The sources here are stand-ins at the boundary the poller talks to (a Source), not mocks of the poller.
No assertion depends on speed: the test waits for states, with a generous limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from exporter.poller import Poller, TenantJob
from exporter.snapshot import Report
from tests.support import wait_for


class CountingSource:
    name = "legacy"

    def __init__(self, total: int) -> None:
        self.total = total
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()

    def fetch(self, deadline: float) -> Report:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            self.release.wait()
            return Report("legacy", self.total, (("mfaRegistered", self.total // 2),))
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_stuck_tenant_holds_back_no_other_tenants_ticks_and_is_never_polled_twice_at_once(
    stop: threading.Event,
) -> None:
    stuck, fast = CountingSource(10), CountingSource(20)
    stuck.release.clear()
    poller = Poller(
        [TenantJob("stuck", stuck), TenantJob("fast", fast)], interval=0.05, timeout=0.05, concurrency=2, stop=stop
    )
    poller.start()
    try:
        wait_for(lambda: fast.calls >= 5)
        # Many of stuck's ticks have passed meanwhile; it was polled once and skipped the rest.
        assert stuck.calls == 1 and stuck.most_at_once == 1
        assert not poller.first_round_done.is_set()  # stuck has not finished its first poll
        stuck.release.set()
        wait_for(lambda: stuck.calls >= 3)
        wait_for(poller.first_round_done.is_set)
        assert stuck.most_at_once == 1
    finally:
        poller.close()


def test_added_tenants_are_polled_at_once_and_removed_ones_no_more(stop: threading.Event) -> None:
    kept, removed, added = CountingSource(1), CountingSource(2), CountingSource(3)
    kept_job, removed_job = TenantJob("kept", kept), TenantJob("removed", removed)
    poller = Poller([kept_job, removed_job], interval=3600, timeout=60, concurrency=2, stop=stop)
    poller.start()
    try:
        wait_for(poller.first_round_done.is_set)
        added_job = TenantJob("added", added)
        poller.replace_jobs([kept_job, added_job])
        assert [job.name for job in poller.jobs] == ["kept", "added"]
        wait_for(lambda: added_job.status.up)  # no need to wait the hour for the next tick
        assert (kept.calls, removed.calls, added.calls) == (1, 1, 1)
    finally:
        poller.close()


def test_an_empty_shard_is_ready_at_once(stop: threading.Event) -> None:
    poller = Poller([], interval=3600, timeout=60, concurrency=1, stop=stop)
    poller.start()
    try:
        wait_for(poller.first_round_done.is_set)
        assert poller.alive()
    finally:
        poller.close()


def test_each_tenants_next_poll_is_due_one_interval_after_its_last_tick(stop: threading.Event) -> None:
    poller = Poller(
        [TenantJob("a", CountingSource(1)), TenantJob("b", CountingSource(2))],
        interval=3600,
        timeout=60,
        concurrency=2,
        stop=stop,
    )
    assert poller.next_due("a") is None  # not scheduled yet
    started = time.monotonic()
    poller.start()
    try:
        wait_for(poller.first_round_done.is_set)
        for name in ("a", "b"):
            due = poller.next_due(name)
            assert due is not None and started + 3600 <= due <= time.monotonic() + 3600
        poller.replace_jobs([poller.jobs[0]])
        wait_for(lambda: poller.next_due("b") is None)  # a removed tenant has no next poll
        assert poller.next_due("a") is not None
    finally:
        poller.close()
