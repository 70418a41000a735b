"""CPU time and peak memory of paging userRegistrationDetails: the exporter against its floor and the SDK.

Issue 3's benchmark. For each tenant size it starts a fake Graph in a separate process (so that serving
costs nothing here) with every page encoded once beforehand, then runs, each as a child process measured
by os.wait4 (user + system CPU time, peak RSS), and interleaved so that noise from other work on the
machine falls on all of them alike:

  bare      a plain `requests` + `json` loop that follows @odata.nextLink and sums isMfaRegistered
            (the transport's floor);
  exporter  `python3 -m exporter --source details --once --graph.rate-limit off --graph.global-rate-limit off`,
            which computes every series (statuses, segments, methods, MFA strength), validating every field;
  sdk       the official Graph SDK for Python (msgraph-sdk) with its PageIterator, summing the same
            field (only at the smaller sizes: it costs milliseconds of CPU per user).

Every child's answer is checked against the fake tenant's known sums. Medians over --repeat runs are
printed as Markdown, with the spread. Needs `pip install -e '.[test,bench]'`. Usage:

    python3 benchmarks/details_cpu.py [--sizes 30000,100000,300000] [--sdk-sizes 1000,10000] [--repeat 3]
        [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PATH = "/v1.0/reports/authenticationMethods/userRegistrationDetails"


# --- the children -------------------------------------------------------------------------------


def serve(users: int, page_size: int) -> None:
    """The fake Graph with `users` users, every page pre-encoded; runs until stdin closes."""
    sys.path.insert(0, str(ROOT))
    from tests.fakegraph import FakeGraph, user_record

    with tempfile.TemporaryDirectory() as directory:
        fake = FakeGraph(Path(directory))
        fake.users = [user_record(i) for i in range(users)]
        fake.encode_details_pages(page_size)
        fake.users = []  # the encoded pages are all that is served; the dicts would only take memory
        info = {"url": fake.url, "ca": str(fake.ca_path), "token": fake.issue_token(), "env": fake.env()}
        print(json.dumps(info), flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        fake.close()


def bare(root: str, token: str, page_size: int) -> None:
    """The floor: what any Python client must at least do to sum one field of every record."""
    import requests

    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    url: str | None = f"{root}{PATH}?$top={page_size}"
    users = mfa = 0
    while url:
        response = session.get(url, headers=headers, timeout=60)
        response.raise_for_status()
        page = json.loads(response.content)
        for record in page["value"]:
            mfa += record["isMfaRegistered"]
        users += len(page["value"])
        url = page.get("@odata.nextLink")
    print(json.dumps({"users": users, "mfaRegistered": mfa}))


def sdk(root: str, token: str, ca: str, page_size: int) -> None:
    """The same sum with msgraph-sdk's PageIterator, pointed at the fake with a static token."""
    import asyncio
    import ssl
    from urllib.parse import urlsplit

    import httpx
    from azure.core.credentials import AccessToken
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.reports.authentication_methods.user_registration_details.user_registration_details_request_builder import (  # noqa: E501
        UserRegistrationDetailsRequestBuilder,
    )
    from msgraph_core import GraphClientFactory
    from msgraph_core.tasks.page_iterator import PageIterator

    class StaticToken:
        """An azure-identity style async credential that always returns the fake's token."""

        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(token, int(time.time()) + 3600)

        async def close(self) -> None:
            pass

    async def run() -> None:
        auth = AzureIdentityAuthenticationProvider(
            StaticToken(),  # type: ignore[arg-type]
            scopes=["https://graph.microsoft.com/.default"],
            allowed_hosts=[urlsplit(root).hostname or ""],
        )
        client = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca), timeout=60)
        )
        adapter = GraphRequestAdapter(auth, client)
        adapter.base_url = f"{root}/v1.0"  # not on the httpx client, whose base URL gains a trailing slash
        graph = GraphServiceClient(request_adapter=adapter)
        query = UserRegistrationDetailsRequestBuilder.UserRegistrationDetailsRequestBuilderGetQueryParameters(
            top=page_size
        )
        first = await graph.reports.authentication_methods.user_registration_details.get(
            RequestConfiguration(query_parameters=query)
        )
        totals = {"users": 0, "mfaRegistered": 0}

        def add(record: Any) -> bool:
            totals["users"] += 1
            totals["mfaRegistered"] += bool(record.is_mfa_registered)
            return True

        await PageIterator(first, adapter).iterate(add)
        print(json.dumps(totals))

    asyncio.run(run())


# --- the parent ---------------------------------------------------------------------------------


@dataclass
class Run:
    cpu: float  # seconds, user + system, of the child
    rss_mb: float  # peak resident set of the child
    wall: float
    out: str


def measure(cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> Run:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait for it again
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        text = out.read().decode()
        if child.returncode != 0:
            raise RuntimeError(f"{cmd[2:5]} exited {child.returncode}: {err.read().decode()[-2000:]}")
    return Run(usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, wall, text)


def exporter_sums(exposition: str) -> dict[str, int]:
    sums = {}
    for line in exposition.splitlines():
        if line.startswith("tenant_total_users{"):
            sums["users"] = int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("credential_registered_users{") and 'status="mfaRegistered"' in line:
            sums["mfaRegistered"] = int(float(line.rsplit(" ", 1)[1]))
    return sums


def expected(users: int) -> dict[str, int]:
    return {"users": users, "mfaRegistered": sum(1 for i in range(users) if i % 3 != 0)}  # see user_record()


class Server:
    def __init__(self, users: int, page_size: int) -> None:
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(users), "--page-size", str(page_size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.child.stdout is not None
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError("the fake Graph did not start")
        self.info = json.loads(line)

    def close(self) -> None:
        assert self.child.stdin is not None
        self.child.stdin.close()
        try:
            self.child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()


def bench_size(
    users: int, kinds: list[str], repeat: int, page_size: int, baseline: Path | None = None
) -> dict[str, list[Run]]:
    server = Server(users, page_size)
    try:
        info = server.info
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "REQUESTS_CA", "SSL_CERT"))}
        env = {**base_env, **info["env"]}  # AZURE_* for the exporter's MSAL, REQUESTS_CA_BUNDLE for requests
        me = [sys.executable, __file__, "--root", info["url"], "--token", info["token"], "--ca", info["ca"]]
        commands = {
            "bare": [*me, "--page-size", str(page_size), "--bare"],
            "sdk": [*me, "--page-size", str(page_size), "--sdk"],
            "exporter": [
                sys.executable,
                "-m",
                "exporter",
                "--source",
                "details",
                "--once",
                "--graph.rate-limit",
                "off",
                "--graph.global-rate-limit",
                "off",
                "--graph.endpoint",
                info["url"],
                "--graph.page-size",
                str(page_size),
                "--tenant.name",
                "bench",
                "--log.level",
                "warn",
            ],
        }
        if baseline:  # the same command, run from another copy of the source tree (e.g. an older commit)
            commands["baseline"] = commands["exporter"]
        want = expected(users)
        runs: dict[str, list[Run]] = {kind: [] for kind in kinds}
        for rep in range(repeat):
            order = kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]  # rotate: noise falls on all alike
            for kind in order:
                cwd = baseline if kind == "baseline" and baseline else ROOT
                run = measure(commands[kind], env, cwd)
                got = exporter_sums(run.out) if kind in ("exporter", "baseline") else json.loads(run.out)
                if got != want:
                    raise RuntimeError(f"{kind} summed {got} for {users} users, expected {want}")
                runs[kind].append(run)
                line = (
                    f"{users:>7} users {kind:<8} cpu {run.cpu:7.2f}s  rss {run.rss_mb:6.1f} MB  wall {run.wall:5.1f}s"
                )
                print("  " + line, file=sys.stderr, flush=True)
        return runs
    finally:
        server.close()


def median(runs: list[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def spread(runs: list[Run]) -> str:
    """The runs' CPU range."""
    cpus = [r.cpu for r in runs]
    return f"{min(cpus):.2f} to {max(cpus):.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="30000,100000,300000", help="tenant sizes for bare and exporter")
    p.add_argument("--sdk-sizes", default="1000,10000", help="tenant sizes for the SDK too (it is slow)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--page-size", type=int, default=999)
    p.add_argument(
        "--baseline",
        type=Path,
        help="also run the exporter from this copy of the source tree (e.g. `git archive` of an older commit)",
    )
    # the children's modes
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    p.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sdk", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    p.add_argument("--token", help=argparse.SUPPRESS)
    p.add_argument("--ca", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve is not None:
        return serve(args.serve, args.page_size)
    if args.bare:
        return bare(args.root, args.token, args.page_size)
    if args.sdk:
        return sdk(args.root, args.token, args.ca, args.page_size)

    sizes = [int(s) for s in args.sizes.split(",") if s]
    sdk_sizes = [int(s) for s in args.sdk_sizes.split(",") if s]
    results: dict[int, dict[str, list[Run]]] = {}
    for users in sorted(set(sizes) | set(sdk_sizes)):
        kinds = ["bare", "exporter"] + (["baseline"] if args.baseline else []) + (["sdk"] if users in sdk_sizes else [])
        if users not in sizes:
            kinds = ["bare", "sdk"]
        results[users] = bench_size(users, kinds, args.repeat, args.page_size, args.baseline)

    print(f"\nMedians of {args.repeat} runs; CPU = user + system time of the child process, start-up included.\n")
    print("| users | client | CPU s (median) | CPU s (min to max) | CPU µs/user | peak RSS MB (median) |")
    print("|---:|---|---:|---:|---:|---:|")
    for users, by_kind in results.items():
        for kind, runs in by_kind.items():
            cpu = median(runs, "cpu")
            print(
                f"| {users:,} | {kind} | {cpu:.2f} | {spread(runs)} | {cpu / users * 1e6:,.1f} | "
                f"{median(runs, 'rss_mb'):.0f} |"
            )

    def marginal(kind: str, chosen: list[int]) -> float | None:
        """CPU per user past start-up: the slope between the smallest and the largest size."""
        have = [u for u in chosen if kind in results[u]]
        if len(have) < 2:
            return None
        lo, hi = min(have), max(have)
        return (median(results[hi][kind], "cpu") - median(results[lo][kind], "cpu")) / (hi - lo)

    print("\n| client | CPU µs per user past start-up (slope between sizes) |")
    print("|---|---:|")
    slopes = {k: marginal(k, sizes if k != "sdk" else sdk_sizes) for k in ("bare", "exporter", "baseline", "sdk")}
    for kind, slope in slopes.items():
        if slope is not None:
            print(f"| {kind} | {slope * 1e6:,.2f} |")
    if sizes:
        top = max(sizes)
        ratio = median(results[top]["exporter"], "cpu") / median(results[top]["bare"], "cpu")
        print(f"\nexporter / bare CPU at {top:,} users: {ratio:.2f}x (whole process)")
        for users in sizes:  # each repeat's pair, run back to back: the same-run ratio, its spread over repeats
            by_kind = results[users]
            pairs = sorted(e.cpu / b.cpu for e, b in zip(by_kind["exporter"], by_kind["bare"], strict=True))
            print(
                f"exporter / bare CPU at {users:,} users, per repeat: min {pairs[0]:.2f}x, "
                f"median {statistics.median(pairs):.2f}x, max {pairs[-1]:.2f}x"
            )
        if "baseline" in results[top]:
            ratio = median(results[top]["baseline"], "cpu") / median(results[top]["bare"], "cpu")
            print(f"baseline / bare CPU at {top:,} users: {ratio:.2f}x (whole process)")
        if slopes["exporter"] and slopes["bare"]:
            print(f"exporter / bare CPU per user past start-up: {slopes['exporter'] / slopes['bare']:.2f}x")
        if slopes["sdk"] and slopes["exporter"]:
            print(f"sdk / exporter CPU per user past start-up: {slopes['sdk'] / slopes['exporter']:,.0f}x")
        rss = [median(results[u]["exporter"], "rss_mb") for u in sizes]
        print("exporter peak RSS by size: " + ", ".join(f"{u:,}: {r:.0f} MB" for u, r in zip(sizes, rss, strict=True)))


if __name__ == "__main__":
    main()
