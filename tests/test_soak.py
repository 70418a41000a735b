"""The soak's short form (benchmarks/soak.py for about a minute): part of the normal run, so CI runs it."""

from __future__ import annotations

import json

import pytest

from benchmarks import soak


@pytest.mark.soak
@pytest.mark.timeout(240)
def test_a_minute_of_random_faults_under_50_scrapes_a_second_loses_nothing_and_leaks_nothing() -> None:
    results = soak.run(duration=60, warmup=15, quiet=True)
    assert results["ok"], json.dumps(results, indent=2, default=str)
    for stats in results["exporters"].values():
        assert stats["failed_scrapes"] == 0
        assert stats["internal_errors"] == 0
        assert stats["recovery_seconds"] is not None
    assert results["faults_total"] >= 30  # the faults did flow
