"""Benchmark: gzip scrapes of 1,000 and 3,000 details tenants, from the exposition cache and rendered every time.

    python3 benchmarks/scrape_cache.py [--tenants 1000 3000] [--repeats 3] [--scrapes 40] [--uncached-scrapes 4]

The exporter's own web server runs in this process, serving tenants whose statuses hold the largest details
report a tenant can have (as benchmarks/tenants.py's render measurement: 93 series a tenant). A scraper in a
child process scrapes /metrics as Prometheus does (keep-alive, gzip, text format) one scrape after another
and records each latency (request sent to body read); the server's CPU per scrape is this process's CPU time
over the window divided by the scrapes. Three ways, interleaved, --repeats times each:

  uncached  the whole exposition rendered and compressed at every scrape (what /metrics did before the cache)
  cached    nothing changed between scrapes: every part served from the cache
  traffic   cached, while a thread counts a Graph request every 5 ms (a poll running): the traffic part is
            rendered again at nearly every scrape, the statuses never

Loopback only; the machine is shared and noisy, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.tenants import full_details_report  # noqa: E402
from exporter.collector import Part, RegistrationCollector  # noqa: E402
from exporter.poller import TenantJob  # noqa: E402
from exporter.snapshot import TenantStatus  # noqa: E402
from exporter.sources.demo import DemoSource  # noqa: E402
from exporter.web.exposition import Exposition  # noqa: E402
from exporter.web.routes import Endpoints, serve  # noqa: E402
from exporter.web.status import StatusPage  # noqa: E402


def jobs_of(count: int) -> list[TenantJob]:
    source = DemoSource(seed=1)  # never polled here: only the statuses below are served
    jobs = []
    for i in range(count):
        job = TenantJob(f"tenant-{i:04d}", source)
        job.status = TenantStatus(
            report=full_details_report(1000 + i), polled=True, up=True, last_success=1.8e9, last_duration=2.0
        )
        for code in (200, 200, 429):
            job.counters.count_request(code)
        jobs.append(job)
    return jobs


def scrape(port: int, scrapes: int, results: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Accept": "text/plain;version=0.0.4;q=1,*/*;q=0.1", "Accept-Encoding": "gzip"}
    latencies = []
    size = 0
    for _ in range(scrapes):
        sent = time.perf_counter()
        conn.request("GET", "/metrics", headers=headers)
        response = conn.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - sent)
        assert response.status == 200 and response.getheader("Content-Encoding") == "gzip"
        size = len(body)
    results.put((latencies, size))


def measure(port: int, scrapes: int) -> dict[str, float]:
    results: Any = multiprocessing.Queue()
    child = multiprocessing.Process(target=scrape, args=(port, scrapes, results))
    cpu = time.process_time()
    child.start()
    latencies, size = results.get()
    cpu = time.process_time() - cpu
    child.join()
    return {"median": statistics.median(latencies), "cpu": cpu / scrapes, "gzip_bytes": size}


def run(tenants: int, way: str, scrapes: int) -> dict[str, float]:
    jobs = jobs_of(tenants)
    collector = RegistrationCollector(lambda: jobs, "15m", 900.0)
    parts = collector.parts() if way != "uncached" else (Part(collector.collect, None),)
    status = StatusPage(lambda: jobs, lambda _: None, lambda: (), False, "15m")
    server = serve(Endpoints(Exposition(parts), status, lambda: True, lambda: True), "127.0.0.1", 0)
    stop = threading.Event()

    def requests_running() -> None:
        while not stop.wait(0.005):
            jobs[0].counters.count_request(200)

    try:
        port = server.server_address[1]
        measure(port, 1)  # the first scrape renders everything, whatever the way
        if way == "traffic":
            threading.Thread(target=requests_running, daemon=True).start()
        return measure(port, scrapes)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scrapes", type=int, default=40, help="scrapes per cached window")
    parser.add_argument("--uncached-scrapes", type=int, default=4, help="scrapes per uncached window")
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"Linux {platform.release()}, load {os.getloadavg()[0]:.1f}"
    )
    rows: dict[tuple[int, str], list[dict[str, float]]] = {}
    for tenants in args.tenants:
        for _ in range(args.repeats):
            for way in ("uncached", "cached", "traffic"):
                scrapes = args.uncached_scrapes if way == "uncached" else args.scrapes
                rows.setdefault((tenants, way), []).append(run(tenants, way, scrapes))
    print("| tenants | way | gzip body | median latency (min-max of repeats) | CPU per scrape | vs uncached |")
    print("|---:|---|---:|---:|---:|---:|")
    for tenants in args.tenants:
        base = statistics.median(r["median"] for r in rows[(tenants, "uncached")])
        for way in ("uncached", "cached", "traffic"):
            results = rows[(tenants, way)]
            medians = sorted(r["median"] for r in results)
            cpu = statistics.median(r["cpu"] for r in results)
            print(
                f"| {tenants:,} | {way} | {results[-1]['gzip_bytes'] / 1024:,.0f} KiB | "
                f"{statistics.median(medians) * 1000:,.1f} ms ({medians[0] * 1000:,.1f}-{medians[-1] * 1000:,.1f}) | "
                f"{cpu * 1000:,.1f} ms | {statistics.median(medians) / base:.3f}x |"
            )


if __name__ == "__main__":
    main()
