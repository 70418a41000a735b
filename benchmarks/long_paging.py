"""Benchmark: a paging that outlasts the interval, at Graph's pace compressed five times, on loopback only.

    python3 benchmarks/long_paging.py            # 50,000 users in pages of 999, two pagings: about a minute

Graph allows 5 requests per 10 s per app and tenant; the fake here answers 429 past 5 per 2 s, and the
exporter runs with --graph.rate-limit 5/2s, --poll.interval 10s and --poll.timeout 8s: a paging of 51 pages
takes about 23 s, more than twice the interval and the budget. The exporter runs as a process, as a user
runs it; /metrics is read every half second. It shows whether the paging completes, how many 429s Graph had
to send, whether `up` ever dropped after the first success, and how many polls failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakegraph import FakeGraph, user_record  # noqa: E402
from tests.support import free_port, get  # noqa: E402


def sample(url: str, name: str) -> float | None:
    text = get(url + "/metrics")[1]
    values = [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)]
    return sum(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--pagings", type=int, default=2)
    args = parser.parse_args()
    fake = FakeGraph(Path(tempfile.mkdtemp(prefix="bench-long-")))
    fake.users = [user_record(i) for i in range(args.users)]
    fake.rate_limit = (5, 2.0)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}, **fake.env()}
    flags = ["--source", "details", "--graph.rate-limit", "5/2s", "--poll.interval", "10s", "--poll.timeout", "8s"]
    command = [
        sys.executable,
        "-m",
        "exporter",
        "--graph.endpoint",
        fake.url,
        "--web.listen-address",
        f"127.0.0.1:{port}",
    ]
    proc = subprocess.Popen([*command, *flags], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    successes: list[float] = []
    ups: list[float] = []
    try:
        while len(successes) < args.pagings and time.monotonic() - started < 600:
            time.sleep(0.5)
            try:
                last = sample(url, "credential_exporter_last_success_timestamp_seconds")
                up = sample(url, "credential_exporter_up")
            except OSError:
                continue  # not listening yet
            if last and (not successes or last != successes[-1]):
                successes.append(last)
            if successes and up is not None:
                ups.append(up)
        duration = sample(url, "credential_exporter_poll_duration_seconds")
        failed = sample(url, "credential_exporter_poll_errors_total")
        total = sample(url, "tenant_total_users")
    finally:
        proc.terminate()
        _, log = proc.communicate(timeout=15)
        fake.close()
    forecast = [line for line in log.splitlines() if "expected to outlast" in line]
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {load:.1f}; Python {platform.python_version()}")
    print("| users | pages | pagings done | last paging | interval | 429s from Graph | failed polls | min `up` |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {int(total or 0):,} | {-(-args.users // 999)} | {len(successes)} | {duration or 0:.1f} s | 10 s | "
        f"{fake.throttled} | {int(failed or 0)} | {min(ups, default=0):.0f} ({len(ups)} samples) |"
    )
    print(f"forecast lines: {len(forecast)}; first: {forecast[0] if forecast else '-'}")


if __name__ == "__main__":
    main()
