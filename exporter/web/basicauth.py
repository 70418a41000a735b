"""HTTP basic authentication against bcrypt hashes, with successful checks cached.

A bcrypt check costs tens of milliseconds on purpose; Prometheus sends the same credentials every scrape.
So a success is remembered under an HMAC (with a key made at start and never stored) of the user, the hash
and the password: the cache holds no password, a changed hash or password misses it, and a removed user
never reaches it. Failures are not cached, and bcrypt runs one check at a time, so a flood of wrong passwords
costs one core at most and cannot push out the cached successes. An unknown user is checked against a dummy
hash, so that the answer's timing does not tell which users exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping

import bcrypt

from exporter.values import Secret

# bcrypt (cost 10) of a random password nobody knows; only its timing matters.
_DUMMY_HASH = b"$2b$10$8NNfn.Egp3F0G4ceAa0XCegRg811nXqeDKCBcUkQZ1ejz.pypz87O"
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
    def __init__(self, max_cached: int = 1024) -> None:
        self._key = secrets.token_bytes(32)
        self._max_cached = max_cached
        self._ok: set[bytes] = set()
        self._cache_lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        self.bcrypt_checks = 0  # for tests and the benchmark: how often the slow path ran

    def check(self, header: str | None, users: Mapping[str, Secret]) -> bool:
        credentials = parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        known = users.get(user)
        hashed = known.reveal().encode() if known is not None else _DUMMY_HASH
        key = self._cache_key(user.encode(), hashed, password)
        if known is not None and key in self._ok:
            return True
        with self._bcrypt_lock:
            self.bcrypt_checks += 1
            try:
                ok = bcrypt.checkpw(password, hashed)
            except ValueError:  # a password over bcrypt's 72 bytes, or a hash bcrypt cannot read
                ok = False
        if not ok or known is None:
            return False
        with self._cache_lock:
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
