"""Basic auth under attack: no user enumeration by cost, and a flood of wrong passwords cannot hold up a
scraper with the right one. bcrypt's checkpw is wrapped to see which hash is checked and to hold the wrong
checks in flight for as long as a test needs: what is shown is the order of events, never a duration."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from exporter.values import Secret
from exporter.web.basicauth import BasicAuth
from tests.support import write_config

RIGHT = b"correct horse battery"


def header(user: str, password: bytes) -> str:
    return "Basic " + base64.b64encode(user.encode() + b":" + password).decode()


def users(**costs: int) -> dict[str, Secret]:
    """Each user with the password RIGHT, hashed at the given bcrypt cost."""
    return {user: Secret(bcrypt.hashpw(RIGHT, bcrypt.gensalt(cost)).decode()) for user, cost in costs.items()}


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every hash bcrypt is asked to check a password against, in order."""
    real, seen = bcrypt.checkpw, []

    def checkpw(password: bytes, hashed: bytes) -> bool:
        seen.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    return seen


def cost(hashed: bytes) -> int:
    return int(hashed.split(b"$")[2])


def test_an_unknown_user_costs_what_a_known_user_costs(checked: list[bytes]) -> None:
    auth = BasicAuth()
    assert not auth.check(header("alice", b"wrong"), users(alice=4))
    assert not auth.check(header("mallory", b"wrong"), users(alice=4))
    assert [cost(h) for h in checked] == [4, 4]  # a fixed dummy hash of cost 10 told mallory from alice


def test_an_unknown_user_costs_what_the_costliest_known_user_costs(checked: list[bytes]) -> None:
    configured = users(alice=4, bob=5, carol=4)
    assert not BasicAuth().check(header("mallory", b"wrong"), configured)
    assert [cost(h) for h in checked] == [5]


def test_an_unknown_user_is_refused_even_with_the_password_of_the_hash_it_was_checked_against() -> None:
    assert not BasicAuth().check(header("mallory", RIGHT), users(alice=4))


def test_checks_run_at_the_same_time_not_one_after_another(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each check waits inside bcrypt until the other has entered it too: behind one lock, neither could.
    meet, real = threading.Barrier(2, timeout=30), bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        meet.wait()
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    auth, configured = BasicAuth(workers=2), users(alice=4)
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(auth.check(header("alice", b"wrong"), configured, c)))
        for c in ("192.0.2.1", "192.0.2.2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [False, False] and not meet.broken


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, threading.Event]]:
    """bcrypt that holds every check of a wrong password until released: a flood still in flight."""
    entered, release, real = threading.Event(), threading.Event(), bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        if password != RIGHT:
            entered.set()
            release.wait(timeout=60)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    yield entered, release
    release.set()


def flood(check: Callable[[], Any], clients: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=check, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def test_a_flood_of_wrong_passwords_does_not_hold_up_the_right_one(
    held: tuple[threading.Event, threading.Event],
) -> None:
    entered, release = held
    auth, configured = BasicAuth(workers=2), users(prometheus=4)
    release.set()
    assert not auth.check(header("prometheus", b"guess"), configured, "198.51.100.66")  # its first failure
    release.clear()
    flooders = forty_wrong_passwords_in_flight(auth, configured, entered)
    assert answer_to_a_scraper(auth, configured) == [True]
    assert sum(t.is_alive() for t in flooders) == 40  # answered while the whole flood was still in flight
    release.set()
    for thread in flooders:
        thread.join(timeout=60)


def forty_wrong_passwords_in_flight(
    auth: BasicAuth, configured: dict[str, Secret], entered: threading.Event
) -> list[threading.Thread]:
    """Forty checks of a wrong password from one address, held inside bcrypt until the test releases them."""
    flooders = flood(lambda: auth.check(header("prometheus", b"guess"), configured, "198.51.100.66"), 40)
    assert entered.wait(timeout=30)
    return flooders


def answer_to_a_scraper(auth: BasicAuth, configured: dict[str, Secret]) -> list[bool]:
    """What a scraper with the right password, from another address, is answered while the flood is held."""
    answer: list[bool] = []
    scraper = threading.Thread(target=lambda: answer.append(auth.check(header("prometheus", RIGHT), configured, "x")))
    scraper.start()
    scraper.join(timeout=60)
    return answer


def test_a_burst_from_a_new_address_takes_one_slot_besides_the_suspects_one(
    held: tuple[threading.Event, threading.Event],
) -> None:
    # No failure is on record for the flooding address yet: all forty arrive before the first is answered.
    entered, _ = held
    auth, configured = BasicAuth(workers=3), users(prometheus=4)
    flooders = forty_wrong_passwords_in_flight(auth, configured, entered)
    assert answer_to_a_scraper(auth, configured) == [True]
    assert sum(t.is_alive() for t in flooders) == 40


def _get(port: int, source: str, authorization: str) -> bytes:
    """One request from the loopback address `source`: the server tells clients apart by address."""
    with socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0)) as sock:
        sock.sendall(
            f"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n".encode()
        )
        return sock.recv(65536)


def test_over_http_a_flooding_client_does_not_hold_up_a_scraper_from_another_address(
    start: Any,
    tmp_path: Path,
    held: tuple[threading.Event, threading.Event],
) -> None:
    entered, release = held
    hashed = bcrypt.hashpw(RIGHT, bcrypt.gensalt(4)).decode()
    port, _ = start(write_config(tmp_path / "web.yml", {"basic_auth_users": {"prometheus": hashed}}))
    release.set()
    assert _get(port, "127.0.0.2", header("prometheus", b"guess")).startswith(b"HTTP/1.1 401 ")
    release.clear()
    flooders = flood(lambda: _get(port, "127.0.0.2", header("prometheus", b"guess")), 40)
    assert entered.wait(timeout=30)
    assert _get(port, "127.0.0.3", header("prometheus", RIGHT)).startswith(b"HTTP/1.1 200 ")
    assert sum(t.is_alive() for t in flooders) == 40
    release.set()
    for thread in flooders:
        thread.join(timeout=60)
