"""HTTP basic authentication against bcrypt hashes, with successful checks cached.

A bcrypt check costs tens of milliseconds on purpose; Prometheus sends the same credentials every scrape.
So a success is remembered under an HMAC (with a key made at start and never stored) of the user, the hash
and the password: the cache holds no password, a changed hash or password misses it, and a removed user
never reaches it. Failures are not cached.

bcrypt runs in a bounded pool (one check per core), not behind one lock: forty clients guessing passwords
once held a legitimate scraper that was not yet cached (after a restart or a password change) for seconds.
A client address whose last check failed is a suspect, and so is one that already has a check in flight:
all suspects share one slot of the pool, so a flood from them costs one core at most and never takes a
slot from another client, whose answer then waits for one bcrypt check at most, its own. (Behind a proxy
every client has the proxy's address: a flood through it and a scraper through it share the one slot.)

An unknown user is checked against the configured hash of the highest cost: what a known user costs, so
that the answer's timing does not tell which users exist (a fixed dummy hash does, whenever its cost differs
from the users' costs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import nullcontext

import bcrypt

from exporter.values import Secret

CHALLENGE = 'Basic realm="entra-credential-exporter", charset="UTF-8"'


def parse_basic(header: str | None) -> tuple[str, bytes] | None:
    """(user, password) from an Authorization header, or None if it is not well-formed basic auth."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
        user_bytes, sep, password = decoded.partition(b":")
        user = user_bytes.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class BasicAuth:
    def __init__(self, max_cached: int = 1024, workers: int | None = None, max_suspects: int = 4096) -> None:
        self._key = secrets.token_bytes(32)
        self._max_cached = max_cached
        self._ok: set[bytes] = set()
        self._cache_lock = threading.Lock()
        self._pool = threading.BoundedSemaphore(workers or max(2, os.cpu_count() or 2))
        self._suspect_slot = threading.Lock()  # the one slot of the pool that every suspect client shares
        self._suspects: OrderedDict[str, None] = OrderedDict()  # client addresses whose last check failed
        self._checking: set[str] = set()  # addresses with a check in flight outside the suspects' slot
        self._max_suspects = max_suspects
        self.bcrypt_checks = 0  # for tests and the benchmark: how often the slow path ran

    def check(self, header: str | None, users: Mapping[str, Secret], client: str = "") -> bool:
        """Whether the Authorization header names a user of `users` with the right password.

        `client` is the address the request came from: it decides which part of the pool may check it."""
        credentials = parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        known = users.get(user)
        hashed = known.reveal().encode() if known is not None else _costliest(users)
        key = self._cache_key(user.encode(), hashed, password)
        if known is not None and key in self._ok:
            return True
        with self._cache_lock:
            # One check at a time per address outside the suspects' slot: a burst from a new address is
            # otherwise all in flight before its first failure marks it.
            suspect = client in self._suspects or client in self._checking
            if not suspect:
                self._checking.add(client)
            self.bcrypt_checks += 1
        try:
            with self._suspect_slot if suspect else nullcontext(), self._pool:
                ok = _checkpw(password, hashed)
        finally:
            if not suspect:
                with self._cache_lock:
                    self._checking.discard(client)
        ok = ok and known is not None
        with self._cache_lock:
            if not ok:
                self._suspects[client] = None
                self._suspects.move_to_end(client)
                if len(self._suspects) > self._max_suspects:
                    self._suspects.popitem(last=False)  # bounded: the longest-forgotten suspect goes first
                return False
            self._suspects.pop(client, None)
            if len(self._ok) >= self._max_cached:
                self._ok.clear()  # crude, but bounded: a handful of scrapers refill it at once
            self._ok.add(key)
        return True

    def _cache_key(self, *parts: bytes) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in parts:  # length-prefixed, so that no two different triples give the same input
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return mac.digest()


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:  # a password over bcrypt's 72 bytes, or a hash bcrypt cannot read
        return False


def _costliest(users: Mapping[str, Secret]) -> bytes:
    """The configured hash of the highest cost ("$2b$NN$..."): checking a password against it, whatever the
    answer, costs what checking a known user costs at most, and it is thrown away."""
    return max((hashed.reveal().encode() for hashed in users.values()), key=lambda h: h[4:6])
