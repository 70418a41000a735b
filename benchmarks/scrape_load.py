"""Scrape latency with 16 concurrent scrapers, on an idle exporter and while it pages 150,000 users.

Issue 4's load measurement. It starts the fast fake Graph of details_cpu.py (a separate process, pages
encoded once) and the exporter (`python3 -m exporter --source details`, serving on a loopback port) with
a modest rate limit, so that a paging of the tenant takes about 20 s, as a real one (at Graph's 5 per
10 s) takes minutes. Then, in two windows of --window seconds each:

  idle    after the first poll has published its snapshot, before the second poll begins;
  paging  while the second poll pages the tenant (the previous snapshot is what /metrics serves).

In each window, --scrapers processes each scrape /metrics every --every seconds as Prometheus does
(keep-alive, gzip, text format), and record every scrape's latency (request sent to body read) and any
failure: an error, a status other than 200, a timeout (--timeout) or a body without the tenant's numbers.
The exporter's own request counter shows that pages were fetched during the paging window and none
during the idle one; the run refuses to report a window that did not hold. Loopback only; bounded in
time; stops by itself. Needs `pip install -e '.[test]'`. Usage:

    python3 benchmarks/scrape_load.py [--users 150000] [--scrapers 16] [--window 12] [--every 0.1]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from details_cpu import ROOT, Server

TENANT = "bench"


@dataclass
class Window:
    name: str
    latencies: list[float]  # seconds, of the successful scrapes
    failures: list[str]
    pages: int  # pages the exporter fetched during the window
    seconds: float
    listen_overflows: int  # the kernel's count of connections dropped for a full accept queue (whole machine)
    exporter_cpu: float  # seconds of CPU the exporter used during the window
    load: float  # the machine's 1-minute load average at the window's end (other work included)


def scraper(
    port: int, start: float, end: float, every: float, timeout: float, users: int
) -> tuple[list[float], list[str]]:
    """One scraper: a keep-alive connection, one scrape every `every` seconds from `start` to `end`."""
    latencies: list[float] = []
    failures: list[str] = []
    expected = f'tenant_total_users{{tenant="{TENANT}"}} {float(users)}'
    headers = {"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1", "Accept-Encoding": "gzip"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    time.sleep(max(0.0, start - time.time()))
    next_at = time.time()
    while next_at < end:
        sent = time.perf_counter()
        try:
            conn.request("GET", "/metrics", headers=headers)
            response = conn.getresponse()
            body = response.read()
            took = time.perf_counter() - sent
            if response.getheader("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if response.status != 200:
                failures.append(f"HTTP {response.status}")
            elif expected not in body.decode():
                failures.append("the tenant's numbers are missing")
            else:
                latencies.append(took)
        except (OSError, http.client.HTTPException) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        next_at += every
        time.sleep(max(0.0, next_at - time.time()))
    conn.close()
    return latencies, failures


def metrics(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def sample(text: str, name: str) -> float:
    total = 0.0
    for match in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M):
        total += float(match.group(1))
    return total


def pages_fetched(port: int) -> float:
    return sample(metrics(port), "credential_exporter_graph_requests_total")


def last_success(port: int) -> float:
    return sample(metrics(port), "credential_exporter_last_success_timestamp_seconds")


def wait_for(what: str, check: object, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def listen_overflows() -> int:
    """TcpExt ListenOverflows: a SYN dropped because the accept queue was full (retried by the client 1 s later)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True)).get("ListenOverflows", 0))
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_window(name: str, port: int, pid: int, args: argparse.Namespace) -> Window:
    before = pages_fetched(port)
    overflows = listen_overflows()
    cpu = cpu_seconds(pid)
    start = time.time() + 3.0  # every scraper starts together, once all 16 processes are up
    end = start + args.window
    jobs = [(port, start, end, args.every, args.timeout, args.users)] * args.scrapers
    with multiprocessing.get_context("spawn").Pool(args.scrapers) as pool:
        results = pool.starmap(scraper, jobs)
    pages = int(pages_fetched(port) - before)
    return Window(
        name,
        [lat for lats, _ in results for lat in lats],
        [fail for _, fails in results for fail in fails],
        pages,
        args.window,
        listen_overflows() - overflows,
        cpu_seconds(pid) - cpu,
        os.getloadavg()[0],
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=150_000)
    p.add_argument("--scrapers", type=int, default=16)
    p.add_argument("--window", type=float, default=12.0, help="seconds of scraping in each window")
    p.add_argument("--every", type=float, default=0.1, help="seconds between one scraper's scrapes")
    p.add_argument("--timeout", type=float, default=5.0, help="a scrape slower than this fails")
    p.add_argument("--rate-limit", default="10/1s", help="the exporter's --graph.rate-limit: paces the paging")
    p.add_argument("--interval", default="45s", help="the exporter's --poll.interval: when the second poll begins")
    args = p.parse_args()

    server = Server(args.users, 999)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "REQUESTS_CA"))} | server.info["env"]
    command = [
        sys.executable, "-m", "exporter", "--source", "details",
        "--graph.endpoint", server.info["url"], "--graph.rate-limit", args.rate_limit,
        "--poll.interval", args.interval, "--tenant.name", TENANT,
        "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        exporter = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            started = time.monotonic()
            print(f"exporter on :{port}; waiting for the first poll of {args.users:,} users", file=sys.stderr)
            wait_for("the first poll", lambda: last_success(port) > 0, 300)
            print(f"first poll done after {time.monotonic() - started:.0f}s; idle window", file=sys.stderr)
            first = last_success(port)
            idle = run_window("idle", port, exporter.pid, args)
            if idle.pages != 0:
                raise RuntimeError("the exporter fetched pages during the idle window: lengthen --interval")
            print("waiting for the second poll to begin", file=sys.stderr)
            pages = pages_fetched(port)
            wait_for("the second poll", lambda: pages_fetched(port) > pages, 300)
            paging = run_window("paging", port, exporter.pid, args)
            if last_success(port) != first or paging.pages == 0:
                raise RuntimeError("the second poll was not in progress for the whole window: lower --rate-limit")
        finally:
            exporter.send_signal(signal.SIGTERM)
            try:
                exporter.wait(timeout=20)
            except subprocess.TimeoutExpired:
                exporter.kill()
                exporter.wait()
            server.close()
            if exporter.returncode not in (0, -signal.SIGTERM):
                log.seek(0)
                print(log.read().decode()[-3000:], file=sys.stderr)

    print(
        f"\n{args.scrapers} scrapers, each every {args.every:g}s for {args.window:g}s per window; "
        f"{args.users:,} users; paging paced at {args.rate_limit}.\n"
    )
    print(
        "| exporter | scrapes | failed | pages fetched meanwhile | p50 ms | p99 ms | max ms "
        "| exporter CPU s | load avg |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in (idle, paging):
        lat = w.latencies or [float("nan")]
        print(
            f"| {w.name} | {len(w.latencies) + len(w.failures)} | {len(w.failures)} | {w.pages} | "
            f"{statistics.median(lat) * 1e3:.1f} | {percentile(lat, 99) * 1e3:.1f} | {max(lat) * 1e3:.1f} | "
            f"{w.exporter_cpu:.1f} | {w.load:.1f} |"
        )
    for w in (idle, paging):
        if w.listen_overflows:
            print(f"{w.name}: {w.listen_overflows} connections dropped for a full accept queue (1 s SYN retry)")
        for failure in sorted(set(w.failures))[:10]:
            print(f"{w.name}: failed scrape: {failure}")


if __name__ == "__main__":
    main()
