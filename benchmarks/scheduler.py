"""Benchmark: the poller's first round of many tenants whose polls cost no CPU, so the scheduler is all there is.

    python3 benchmarks/scheduler.py [--tenants 1000 3000] [--repeats 3] [--poll 0.005]

Each finished poll wakes the scheduler. It used to walk every tenant twice per wake-up (its schedule, then
"has every tenant been polled?"): quadratic in a first round. With a heap of due times and a count of the
tenants not yet polled, a wake-up costs O(log n). Each poll sleeps --poll seconds (no CPU), so that the
polls end one by one and each wakes the scheduler, as real polls do. Prints the process CPU time of a first
round (start to /readyz's event), median of --repeats. To compare with another checkout, run the script there, e.g.
`PYTHONPATH=/path/to/other python3 benchmarks/scheduler.py`: it imports the exporter found first.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from exporter.poller import Poller, TenantJob
from exporter.snapshot import Report

REPORT = Report("legacy", 100, (("mfaRegistered", 50),))


class SleepingSource:
    name = "legacy"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def fetch(self, deadline: float) -> Report:
        time.sleep(self.seconds)
        return REPORT


def first_round(tenants: int, poll: float) -> float:
    stop = threading.Event()
    source = SleepingSource(poll)
    poller = Poller(
        [TenantJob(f"tenant-{i:05d}", source) for i in range(tenants)],
        interval=3600,
        timeout=60,
        concurrency=8,
        stop=stop,
    )
    cpu = time.process_time()
    poller.start()
    poller.first_round_done.wait()
    cpu = time.process_time() - cpu
    poller.close()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poll", type=float, default=0.005, help="seconds each poll sleeps")
    args = parser.parse_args()
    import exporter.poller

    print(f"poller: {exporter.poller.__file__}")
    for tenants in args.tenants:
        times = [first_round(tenants, args.poll) for _ in range(args.repeats)]
        print(f"{tenants:,} tenants: first round {statistics.median(times):.3f} s of CPU (min {min(times):.3f})")


if __name__ == "__main__":
    main()
