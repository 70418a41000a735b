"""What guards the HTTP endpoints: the current web configuration, re-read when its files change.

Every connection and request asks for the current configuration. That costs a few stat() calls (the file
and the files it names); only when one of them changed is the file read again, so a rotated certificate or
a changed user list applies to the next connection without a restart. A change that does not load (bad
YAML, a key that does not match its certificate) is ignored with one log line, and the last good
configuration stays in force. Whether TLS is on is fixed at start, as in the toolkit: a file edit must not
be able to turn an HTTPS endpoint into a plain HTTP one.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from exporter.errors import ConfigError
from exporter.web import webconfig
from exporter.web.basicauth import BasicAuth
from exporter.web.throttle import TokenBucket
from exporter.web.webconfig import WebConfig

log = logging.getLogger(__name__)

_Signature = tuple[tuple[int, int, int, int] | None, ...]


def _signature(paths: tuple[Path, ...]) -> _Signature:
    out: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)  # follows symlinks: Kubernetes swaps a symlink when it updates a secret
        except OSError:
            out.append(None)
        else:
            out.append((st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev))
    return tuple(out)


class WebGuard:
    def __init__(self, initial: WebConfig) -> None:
        self._config = initial
        self._signature = _signature(initial.files())
        self._rejected: _Signature | None = None
        self._lock = threading.Lock()
        self.tls = initial.tls is not None
        self.auth = BasicAuth()
        self._bucket = _bucket(initial)

    def current(self) -> WebConfig:
        config = self._config
        if _signature(config.files()) == self._signature:
            return config
        with self._lock:
            return self._reload()

    def admit(self, config: WebConfig) -> bool:
        """False if the rate limit refuses this request."""
        bucket = self._bucket
        if config.rate_limit is None or bucket is None:
            return True
        return bucket.allow()

    def authorized(self, config: WebConfig, authorization: str | None, client: str = "") -> bool:
        """True if `config` asks for no authentication, or the Authorization header satisfies it."""
        return not config.users or self.auth.check(authorization, config.users, client)

    def _reload(self) -> WebConfig:
        old = self._config
        signature = _signature(old.files())
        if signature == self._signature or signature == self._rejected:
            return old  # another thread got here first, or this very change was already refused
        try:
            new = webconfig.read_web_config(old.path)
            if (new.tls is not None) != self.tls:
                raise ConfigError(["TLS cannot be switched on or off while running: restart the exporter"])
        except ConfigError as exc:
            self._rejected = signature
            log.error(
                "web config change ignored, keeping the previous one",
                extra={"kv": {"file": str(old.path), "problems": "; ".join(exc.problems)}},
            )
            return old
        if new.rate_limit != old.rate_limit:
            self._bucket = _bucket(new)
        self._config, self._signature, self._rejected = new, _signature(new.files()), None
        log.info("web config reloaded", extra={"kv": {"file": str(old.path), "tls": self.tls, "users": len(new.users)}})
        return new


def _bucket(config: WebConfig) -> TokenBucket | None:
    limit = config.rate_limit
    return TokenBucket(limit.interval, limit.burst) if limit else None
