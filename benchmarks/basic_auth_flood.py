#!/usr/bin/env python3
"""Basic auth under a password-guessing flood, and the cost of an unknown user against a known one.

Starts the exporter (`--demo`, basic auth without TLS so that only bcrypt is measured) with users whose
hashes have cost `--cost` (4 by default: the case where a fixed dummy hash of cost 10 told users apart), then:

1. without load: the latency of a wrong password for a known user and for an unknown one (enumeration);
2. with `--flooders` clients sending wrong passwords from 127.0.0.2 without pause: the latency of a right
   password from 127.0.0.3, each time for a user not yet in the success cache (what a scraper meets after a
   restart or a password change).

    python3 benchmarks/basic_auth_flood.py [--flooders 40] [--samples 10] [--cost 4]

Run it from the repository root. It prints a Markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import bcrypt

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = b"benchmark-password"


def request(port: int, source: str, user: str, password: bytes) -> tuple[bytes, float]:
    auth = base64.b64encode(user.encode() + b":" + password).decode()
    began = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=120, source_address=(source, 0)) as sock:
        sock.sendall(
            f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = sock.recv(64)
    return answer[:12], time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flooders", type=int, default=40)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--cost", type=int, default=4, help="bcrypt cost of every user's hash")
    args = parser.parse_args()
    hashed = bcrypt.hashpw(PASSWORD, bcrypt.gensalt(args.cost)).decode()
    users = [f"scraper{i}" for i in range(args.samples)]
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "web.yml"
        config.write_text("basic_auth_users:\n" + "".join(f"  {u}: '{hashed}'\n" for u in ["known", *users]))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--demo",
                "--web.listen-address",
                f"127.0.0.1:{port}",
                "--web.config.file",
                str(config),
                "--log.level",
                "error",
            ],
            cwd=ROOT,
        )
        try:
            while True:
                try:
                    request(port, "127.0.0.1", "known", b"x")
                    break
                except OSError:
                    time.sleep(0.1)
            known, unknown = [], []
            for _ in range(20):  # interleaved, so that a change in the machine's load weighs on both alike
                known.append(request(port, "127.0.0.4", "known", b"wrong")[1])
                unknown.append(request(port, "127.0.0.4", "nobody", b"wrong")[1])
            stop = threading.Event()

            answered: list[bytes] = []

            def flood() -> None:
                while not stop.is_set():
                    answered.append(request(port, "127.0.0.2", "known", b"guess")[0])

            flooders = [threading.Thread(target=flood, daemon=True) for _ in range(args.flooders)]
            for thread in flooders:
                thread.start()
            time.sleep(2)  # every flooder has failed once: its address is a suspect
            right, before = [], len(answered)
            for user in users:
                status, seconds = request(port, "127.0.0.3", user, PASSWORD)
                assert status == b"HTTP/1.1 200", status
                right.append(seconds)
            stop.set()
            flooded_during = len(answered) - before
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    ms = lambda values: f"{statistics.median(values) * 1000:.0f} ms"  # noqa: E731
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"Machine: {machine}, bcrypt cost {args.cost}\n")
    print("| measurement | median |")
    print("|---|---|")
    print(f"| wrong password, known user, no load | {ms(known)} |")
    print(f"| wrong password, unknown user, no load | {ms(unknown)} |")
    flooded = f"right password, not yet cached, {args.flooders} clients flooding wrong ones"
    print(f"| {flooded} | {ms(right)} (max {max(right) * 1000:.0f} ms) |")
    print(f"\nWrong passwords answered while the right ones were measured: {flooded_during}.")


if __name__ == "__main__":
    main()
