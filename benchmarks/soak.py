"""Soak: the exporter under randomly injected Graph and identity platform faults, scraped 50 times a second.

Two exporter processes (one per source: legacy and details) poll the fake Graph (tests/fakegraph.py, HTTPS on
loopback) every second, while faults of every kind in the fault matrix are queued at random on the legacy
report, the details report and the token endpoint, and a scraper per exporter fetches /metrics 50 times a
second over one keep-alive connection, as Prometheus does. It records:

- failed scrapes (an error, a status other than 200, a body without the exporter's own series, or
  registration numbers other than the fake tenant's: a partial or mixed snapshot would show);
- resident memory (VmRSS) and threads (/proc/PID/status) once a second; growth is measured from the end of
  the warm-up to the end of the run;
- errors escaping the poller: reason="internal" in /metrics, a traceback in stderr;
- recovery: once faults stop, the time until every exporter is up again;
- the client secret anywhere in stdout, stderr or a scraped page.

    python3 benchmarks/soak.py --duration 600          # the real run (10 minutes)
    python3 benchmarks/soak.py --duration 60           # the short form, also run by tests/test_soak.py

Loopback only; it stops by itself and kills what it started. Exit status 0 if every criterion held.
"""

from __future__ import annotations

import argparse
import contextlib
import email.utils
import http.client
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakegraph import (  # noqa: E402 - after the path set-up, so that it runs as a plain script too
    DETAILS_PATH,
    FakeGraph,
    Fault,
    graph_error,
    legacy_payload,
    user_record,
)

SCRAPES_PER_SECOND = 50
RSS_GROWTH_LIMIT_KB = 5 * 1024
USERS = 600  # three pages of 250: paging, without making the fake the bottleneck on two cores
PAGE_SIZE = 250
SEED_SAMPLE = (ROOT / "tests" / "fixtures" / "legacy" / "seed_sample_invalid.json").read_bytes()
OVERSIZED = b'{"value": [], "pad": "' + b"x" * (33 * 1024 * 1024) + b'"}'  # over the 32 MiB cap


def _retry_after_date(seconds: float) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


def _faults(fake: FakeGraph, route: str, rng: random.Random) -> tuple[str, list[Fault]]:
    """One random fault for `route` (legacy, details or token), by name. For details, page 1 or 2."""
    page2 = {
        "value": [user_record(i) for i in range(PAGE_SIZE, 2 * PAGE_SIZE)],
        "@odata.nextLink": f"{fake.url}{DETAILS_PATH}?$top={PAGE_SIZE}&$skiptoken={2 * PAGE_SIZE}",
    }
    good = legacy_payload(23123, {"registered": 21000}) if route == "legacy" else page2
    kinds: dict[str, list[Fault]] = {
        "429-retry-after": [Fault(429, "", {"Retry-After": str(rng.randint(1, 3))})],
        "429-retry-after-date": [Fault(429, "", {"Retry-After": _retry_after_date(rng.uniform(1, 3))})],
        "429": [Fault(429, {"error": {"code": "TooManyRequests", "message": "x"}})],
        "500": [graph_error(500, "InternalServerError", "Oops.")],
        "502-html": [Fault(502, "<html><body>Bad Gateway</body></html>")],
        "503-retry-after": [Fault(503, "", {"Retry-After": "1"})],
        "503": [Fault(503, "")],
        "504": [Fault(504, "")],
        "reset": [Fault(action="reset")],
        "stall": [Fault(200, good, action="stall", seconds=rng.uniform(0.6, 2.0))],
        "trickle": [Fault(200, {**good, "pad": "x" * 400_000}, action="trickle", seconds=0.2)],
        "seed-sample": [Fault(200, SEED_SAMPLE)],
        "truncated": [Fault(200, good, action="truncate")],
        "html-200": [Fault(200, "<html>Sign in</html>")],
        "over-the-cap": [Fault(200, OVERSIZED)],
        "wrong-types": [
            Fault(200, legacy_payload("1", {"registered": 1}))  # type: ignore[arg-type]
            if route == "legacy"
            else Fault(200, {**page2, "value": [{**user_record(1), "isAdmin": "yes"}]})
        ],
        "negative-count": [Fault(200, legacy_payload(10, {"mfaRegistered": -3}))],
        "next-link-loop": [Fault(200, {**page2, "@odata.nextLink": f"{fake.url}{DETAILS_PATH}?$top={PAGE_SIZE}"})],
        "next-link-foreign": [
            Fault(200, {**page2, "@odata.nextLink": fake.url.replace("127.0.0.1", "localhost") + DETAILS_PATH})
        ],
        "401-token-expired": [Fault(action="revoke")],
        "403": [graph_error(403, "Authorization_RequestDenied", "Insufficient privileges.")],
    }
    if route == "legacy":
        del kinds["next-link-loop"], kinds["next-link-foreign"]
    if route == "details":
        del kinds["negative-count"]
    if route == "token":
        kinds = {
            "token-500": [Fault(500, "<html>AADSTS90033: transient</html>")],
            "token-503-retry-after": [Fault(503, "", {"Retry-After": "2"})],
            "token-reset": [Fault(action="reset")],
            "token-stall": [Fault(action="stall", seconds=1.5)],
            "invalid-client": [
                Fault(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."})
            ],
            "token-not-json": [Fault(200, "<html>maintenance</html>")],
        }
    name = rng.choice(sorted(kinds))
    faults = kinds[name]
    if route == "details" and rng.random() < 0.5:
        faults = [Fault(action="pass"), *faults]  # on page 2: a partial sum must not show
    return name, faults


@dataclass
class Sample:
    t: float
    rss_kb: int
    threads: int


@dataclass
class ExporterRun:
    source: str
    expected_total: int
    proc: subprocess.Popen[bytes]
    url_port: int
    stderr_path: Path
    stdout_path: Path
    scrapes: int = 0
    failed: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)  # a few scraped pages, kept for the secret scan


def _status(pid: int) -> Sample:
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            fields[key] = rest.strip()
    return Sample(time.monotonic(), int(fields["VmRSS"].split()[0]), int(fields["Threads"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(fake: FakeGraph, source: str, workdir: Path) -> ExporterRun:
    port = _free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    out, err = workdir / f"{source}.stdout", workdir / f"{source}.stderr"
    args = [
        "--web.listen-address", f"127.0.0.1:{port}", "--graph.endpoint", fake.url, "--source", source,
        "--poll.interval", "1s", "--poll.timeout", "1s", "--graph.timeout", "500ms", "--graph.rate-limit", "off",
        "--graph.page-size", str(PAGE_SIZE), "--log.level", "debug",
    ]  # fmt: skip
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", *args],
            env={**base, **fake.env()},
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
        )
    expected = 23123 if source == "legacy" else USERS
    return ExporterRun(source, expected, proc, port, err, out)


def _scrape_once(conn: http.client.HTTPConnection, path: str = "/metrics") -> tuple[int, str]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode()


def _scraper(run: ExporterRun, tenant: str, stop: threading.Event, until_up: threading.Event) -> None:
    """GET /metrics 50 times a second on one keep-alive connection; check every answer."""
    good = f'tenant_total_users{{tenant="{tenant}"}} {run.expected_total}.0'
    conn = http.client.HTTPConnection("127.0.0.1", run.url_port, timeout=5)
    period = 1.0 / SCRAPES_PER_SECOND
    next_at = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        try:
            status, body = _scrape_once(conn)
        except (OSError, http.client.HTTPException) as exc:
            run.failed.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", run.url_port, timeout=5)
        else:
            run.latencies.append(time.monotonic() - started)
            run.scrapes += 1
            problem = None
            if status != 200:
                problem = f"status {status}"
            elif f'credential_exporter_up{{tenant="{tenant}"}}' not in body:
                problem = "no credential_exporter_up series"
            elif "tenant_total_users{" in body and good not in body:
                problem = "numbers that are not the tenant's: " + re.findall(r"tenant_total_users.*", body)[0]
            if problem:
                run.failed.append(f"{time.strftime('%H:%M:%S')} {problem}")
            if run.scrapes % 500 == 1:
                run.pages.append(body)
            if f'credential_exporter_up{{tenant="{tenant}"}} 1.0' in body:
                until_up.set()
        next_at += period
        stop.wait(max(0.0, next_at - time.monotonic()))
    conn.close()


def _metric(body: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in body.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(duration: float, warmup: float | None = None, seed: int | None = None, quiet: bool = False) -> dict[str, Any]:
    """Soak for `duration` seconds of faults (warm-up included); return the results, with `ok` and `problems`."""
    warmup = warmup if warmup is not None else min(60.0, duration / 4)
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workdir = Path(tmp)
        fake = FakeGraph(workdir)
        fake.users = [user_record(i) for i in range(USERS)]
        fake.token_lifetime = 240  # under MSAL's 5-minute margin: token requests on every poll, so token faults bite
        runs = [_start(fake, source, workdir) for source in ("legacy", "details")]
        stop, stop_faults = threading.Event(), threading.Event()
        up_events = {r.source: threading.Event() for r in runs}
        injected: dict[str, int] = {}
        threads: list[threading.Thread] = []
        try:
            deadline = time.monotonic() + 30
            for r in runs:
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", r.url_port), timeout=1).close()
                        break
                    except OSError:
                        if r.proc.poll() is not None or time.monotonic() > deadline:
                            raise RuntimeError(f"the {r.source} exporter did not start") from None
                        time.sleep(0.1)
            for r in runs:
                t = threading.Thread(target=_scraper, args=(r, fake.tenant_id, stop, up_events[r.source]), daemon=True)
                t.start()
                threads.append(t)
            for event in up_events.values():
                if not event.wait(30):
                    raise RuntimeError("an exporter never came up before the faults started")

            def inject() -> None:
                while not stop_faults.is_set():
                    route = rng.choice(("legacy", "details", "token"))
                    if not fake.faults[route]:
                        name, faults = _faults(fake, route, rng)
                        fake.fail(route, *faults)
                        injected[name] = injected.get(name, 0) + 1
                    stop_faults.wait(rng.uniform(0.1, 0.6))

            injector = threading.Thread(target=inject, daemon=True)
            injector.start()
            started = time.monotonic()
            say(f"soak: {duration:.0f}s of faults, warm-up {warmup:.0f}s, seed {seed}")
            while (elapsed := time.monotonic() - started) < duration:
                for r in runs:
                    if r.proc.poll() is not None:
                        raise RuntimeError(f"the {r.source} exporter exited with {r.proc.returncode}")
                    r.samples.append(_status(r.proc.pid))
                if int(elapsed) % 30 == 0:
                    say(
                        f"  {elapsed:4.0f}s "
                        + " ".join(f"{r.source}: {r.scrapes} scrapes, {len(r.failed)} failed" for r in runs)
                    )
                time.sleep(1.0 - (time.monotonic() - started) % 1.0)
            stop_faults.set()
            injector.join(10)
            with fake.lock:
                for queue in fake.faults.values():
                    queue.clear()

            # Recovery: with the faults gone, every exporter comes back up by itself.
            recovered_at = time.monotonic()
            recovery: dict[str, float | None] = {}
            for r in runs:
                conn = http.client.HTTPConnection("127.0.0.1", r.url_port, timeout=5)
                recovery[r.source] = None
                limit = time.monotonic() + 30
                while time.monotonic() < limit:
                    # Up after a poll that started once the faults had stopped (not a stale 1 from before).
                    _, body = _scrape_once(conn)
                    ok = _metric(body, "credential_exporter_up", tenant=fake.tenant_id) == 1.0
                    last = _metric(body, "credential_exporter_last_success_timestamp_seconds", tenant=fake.tenant_id)
                    if ok and last and last > time.time() - (time.monotonic() - recovered_at):
                        recovery[r.source] = round(time.monotonic() - recovered_at, 1)
                        break
                    time.sleep(0.1)
                r.pages.append(body)
                r.pages.append(_scrape_once(conn, "/")[1])
                conn.close()
            stop.set()
            for t in threads:
                t.join(10)
            for r in runs:
                r.proc.send_signal(signal.SIGTERM)
            exit_codes = {r.source: r.proc.wait(timeout=15) for r in runs}
        finally:
            stop.set()
            stop_faults.set()
            for r in runs:
                if r.proc.poll() is None:
                    r.proc.kill()
                    r.proc.wait()
            fake.close()

        problems: list[str] = []
        results: dict[str, Any] = {
            "duration_seconds": duration,
            "warmup_seconds": warmup,
            "seed": seed,
            "faults_injected": dict(sorted(injected.items())),
            "faults_total": sum(injected.values()),
            "exporters": {},
        }
        secret = fake.client_secret
        for r in runs:
            err = r.stderr_path.read_text(errors="replace")
            out = r.stdout_path.read_text(errors="replace")
            final = r.pages[-2]
            after = [s for s in r.samples if s.t - r.samples[0].t >= warmup]
            window = max(1, min(10, len(after) // 4))
            base_rss = statistics.median(s.rss_kb for s in after[:window]) if after else 0
            end_rss = statistics.median(s.rss_kb for s in after[-window:]) if after else 0
            errors = {
                reason: _metric(final, "credential_exporter_poll_errors_total", tenant=fake.tenant_id, reason=reason)
                for reason in ("auth", "throttled", "http_4xx", "http_5xx", "bad_response", "timeout", "network")
            }
            retries = {
                reason: _metric(final, "credential_exporter_graph_retries_total", tenant=fake.tenant_id, reason=reason)
                for reason in ("auth", "throttled", "http_5xx", "network", "timeout")
            }
            stats = {
                "scrapes": r.scrapes,
                "failed_scrapes": len(r.failed),
                "failures": r.failed[:10],
                "scrape_latency_ms": {
                    "p50": round(1000 * _percentile(r.latencies, 0.5), 2),
                    "p99": round(1000 * _percentile(r.latencies, 0.99), 2),
                    "max": round(1000 * max(r.latencies, default=0.0), 2),
                },
                "rss_kb": {
                    "start": r.samples[0].rss_kb if r.samples else 0,
                    "after_warmup": base_rss,
                    "end": end_rss,
                    "max": max((s.rss_kb for s in r.samples), default=0),
                    "growth_after_warmup": end_rss - base_rss,
                },
                "threads": {
                    "after_warmup": after[0].threads if after else 0,
                    "min": min((s.threads for s in after), default=0),
                    "max": max((s.threads for s in after), default=0),
                    "end": after[-1].threads if after else 0,
                },
                "poll_errors": {k: v for k, v in errors.items() if v},
                "retries": {k: v for k, v in retries.items() if v},
                "internal_errors": _metric(
                    final, "credential_exporter_poll_errors_total", tenant=fake.tenant_id, reason="internal"
                ),
                "tracebacks_in_stderr": err.count("Traceback"),
                "recovery_seconds": recovery[r.source],
                "exit_code": exit_codes[r.source],
            }
            results["exporters"][r.source] = stats
            name = r.source
            if r.failed:
                problems.append(f"{name}: {len(r.failed)} failed scrapes, first: {r.failed[0]}")
            if r.scrapes < SCRAPES_PER_SECOND * duration * 0.8:
                problems.append(f"{name}: only {r.scrapes} scrapes in {duration:.0f}s")
            if stats["rss_kb"]["growth_after_warmup"] >= RSS_GROWTH_LIMIT_KB:
                problems.append(f"{name}: resident memory grew {stats['rss_kb']['growth_after_warmup']} kB")
            if stats["threads"]["end"] > stats["threads"]["after_warmup"] + 2:
                problems.append(f"{name}: threads went from {stats['threads']['after_warmup']} to {stats['threads']}")
            if stats["internal_errors"] != 0.0:
                problems.append(f"{name}: reason=internal is {stats['internal_errors']}")
            if stats["tracebacks_in_stderr"]:
                problems.append(f"{name}: a traceback in stderr")
            if recovery[name] is None:
                problems.append(f"{name}: not up again 30 s after the faults stopped")
            if exit_codes[name] != 0:
                problems.append(f"{name}: exit code {exit_codes[name]} on SIGTERM")
            if not any(errors.values()):
                problems.append(f"{name}: no poll ever failed: the faults did not reach it")
            for text in (err, out, *r.pages):
                if secret in text or "<redacted>" in text:
                    problems.append(f"{name}: the client secret (or a scrubbed trace of it) in the output")
                    break
        results["machine"] = machine()
        results["problems"] = problems
        results["ok"] = not problems
        return results


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of faults (default 600)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds before memory is measured")
    parser.add_argument("--seed", type=int, default=None, help="random seed, for a run to be repeated")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this file")
    args = parser.parse_args()
    results = run(args.duration, args.warmup, args.seed)
    text = json.dumps(results, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
