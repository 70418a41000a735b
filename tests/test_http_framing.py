"""Request smuggling: a request whose body length two parsers could read differently is refused and its
connection closed (RFC 9112, 6.3), tried with raw sockets against the exporter binary."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import ROOT, free_port, wait_for

SMUGGLED = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--demo", "--web.listen-address", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0])
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    """Everything the server answers to `data`, and whether it then closed the connection itself."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return b"", False
    with sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            return b"".join(chunks), False  # still open after 5 s of silence: the server kept the connection
        except ConnectionResetError:
            pass
        return b"".join(chunks), True


@pytest.mark.parametrize(
    "lengths",
    [
        b"Content-Length: 0\r\nContent-Length: %d\r\n" % len(SMUGGLED),  # the case found: answered twice
        b"Content-Length: %d\r\nContent-Length: 0\r\n" % len(SMUGGLED),
        b"Content-Length: 0\r\nContent-Length: 0\r\n",  # repeated, even if equal
        b"Content-Length: 0, %d\r\n" % len(SMUGGLED),  # a list in one header
        b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % len(SMUGGLED),
        b"Content-Length: +0\r\n",
        b"Content-Length: -1\r\n",
    ],
    ids=["0-then-n", "n-then-0", "0-twice", "list", "cl-and-te", "te-and-cl", "signed", "negative"],
)
def test_an_ambiguous_body_length_gets_one_400_and_the_connection_is_closed(port: int, lengths: bytes) -> None:
    answer, closed = _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lengths + b"\r\n" + SMUGGLED)
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert answer.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in answer
    assert b"tenant_total_users" not in answer  # the smuggled request was not answered
    assert closed


def test_a_single_plain_content_length_zero_keeps_the_connection_for_the_next_request(port: int) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
    answer, closed = _exchange(port, head + b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 ") == 2 and closed
