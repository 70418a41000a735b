#!/usr/bin/env python3
"""Scrape cost with TLS + basic auth against plain HTTP: same scraper, same exporter, loopback only.

Starts the exporter (`--demo`, one simulated tenant) as a subprocess once per setting, scrapes /metrics a
bounded number of times, and reports the scraper's latency (p50, p99) and the exporter's CPU time per scrape
(from /proc/<pid>/stat, so the scraper's own work is not counted). Each setting is measured with one kept-alive
connection (what Prometheus does) and with a new connection per scrape (a full TLS handshake every time,
the worst case). bcrypt uses cost 10, the toolkit's example; the first authenticated scrape pays for it once.

    python3 benchmarks/scrape_tls.py [--scrapes 2000]

Run it from the repository root. It prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import platform
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import trustme

ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "prometheus", "benchmark-password"


@dataclass
class Result:
    name: str
    latencies: list[float]
    cpu_per_scrape: float
    first: float | None = None

    def row(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1e3
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
        first = f"{self.first * 1e3:.1f}" if self.first is not None else "-"
        return f"| {self.name} | {len(lat)} | {p50:.2f} | {p99:.2f} | {self.cpu_per_scrape * 1e3:.2f} | {first} |"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextmanager
def exporter(web_config: Path | None) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    args = [sys.executable, "-m", "exporter", "--demo", "--web.listen-address", f"127.0.0.1:{port}"]
    if web_config:
        args += ["--web.config.file", str(web_config)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the exporter did not start") from None
                time.sleep(0.1)
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def scrape(conn: http.client.HTTPConnection, headers: dict[str, str]) -> None:
    conn.request("GET", "/metrics", headers=headers)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or b"tenant_total_users" not in body:
        raise SystemExit(f"scrape failed: {response.status}")


def measure(
    name: str, port: int, pid: int, scrapes: int, tls: ssl.SSLContext | None, auth: bool, reuse: bool
) -> Result:
    headers = {"Accept-Encoding": "identity"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def connect() -> http.client.HTTPConnection:
        if tls is not None:
            return http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=10)
        return http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    first = None
    if auth and reuse:  # the one bcrypt check (measured once per exporter); every later scrape hits the cache
        conn = connect()
        started = time.perf_counter()
        scrape(conn, headers)
        first = time.perf_counter() - started
        conn.close()
    conn = connect()
    scrape(conn, headers)  # warm up: imports, first connection
    latencies = []
    cpu_before = cpu_seconds(pid)
    for _ in range(scrapes):
        if not reuse:
            conn.close()
            conn = connect()
        started = time.perf_counter()
        scrape(conn, headers)
        latencies.append(time.perf_counter() - started)
    cpu = cpu_seconds(pid) - cpu_before
    conn.close()
    return Result(name, latencies, cpu / scrapes, first)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} CPUs (`nproc`: {len(os.sched_getaffinity(0))}), {model}; "
        f"Python {platform.python_version()}, OpenSSL {ssl.OPENSSL_VERSION.split()[1]}, Linux {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scrapes", type=int, default=2000, help="scrapes per setting (default %(default)s)")
    args = parser.parse_args()
    scrapes = max(10, min(args.scrapes, 100_000))  # bounded, whatever is asked

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        cert.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
        cert.private_key_pem.write_to_path(str(directory / "server.key"))
        (directory / "server.key").chmod(0o600)
        client = ssl.create_default_context()
        ca.configure_trust(client)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
        secured = directory / "web-tls-auth.yml"
        secured.write_text(
            f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
            f"basic_auth_users:\n  {USER}: '{hashed}'\n"
        )
        auth_only = directory / "web-auth.yml"
        auth_only.write_text(f"basic_auth_users:\n  {USER}: '{hashed}'\n")

        results = []
        for label, config, tls, auth in (
            ("plain HTTP", None, None, False),
            ("basic auth, no TLS", auth_only, None, True),
            ("TLS + basic auth", secured, client, True),
        ):
            with exporter(config) as (port, proc):
                for reuse in (True, False):
                    name = f"{label}, {'kept-alive connection' if reuse else 'new connection per scrape'}"
                    results.append(measure(name, port, proc.pid, scrapes, tls, auth, reuse))
                    print(f"measured: {name}", file=sys.stderr)

    print("## Scrape cost: TLS and basic auth vs plain HTTP\n")
    print(f"`python3 benchmarks/scrape_tls.py --scrapes {scrapes}` on {machine()}.\n")
    print(
        "| setting | scrapes | p50 latency (ms) | p99 latency (ms) | exporter CPU per scrape (ms) | first scrape (ms) |"
    )
    print("|---|---|---|---|---|---|")
    for result in results:
        print(result.row())


if __name__ == "__main__":
    main()
