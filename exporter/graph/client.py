"""The Microsoft Graph client: one GET at a time, paced, retried within the poll's budget, read safely.

What it guarantees to its callers (the sources):
- a returned value is a whole, valid JSON document from a 2xx answer;
- anything else raises PollError with a bounded reason, Graph's error code and request-id;
- the bearer token is only ever sent to the configured Graph root;
- 429/503/504 are retried no sooner than Retry-After (bounded; it also holds back later polls), other 5xx
  and network errors after an exponential back-off with jitter, 401 once after a fresh token; nothing is
  retried once the next attempt would end past the poll's deadline (moved back by every wait for pacing);
- reading an answer stops at that deadline, however slowly the answer trickles in.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

from exporter.errors import BadResponse, PollError
from exporter.graph.credentials import TokenProvider
from exporter.graph.decoding import decode_json
from exporter.graph.pacing import Gate
from exporter.graph.retry_after import retry_after_seconds
from exporter.graph.urls import CredentialOrigin
from exporter.telemetry import TenantCounters
from exporter.values import first_line

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 32 * 1024 * 1024
_MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_ATTEMPTS = 5
_RETRYABLE = frozenset({"throttled", "http_5xx", "network", "timeout"})
_HOLD_STATUSES = frozenset({429, 503, 504})  # Graph's throttling answers, which may carry Retry-After
_CONNECT_TIMEOUT = 10.0


class _Unauthorized(Exception):
    def __init__(self, error: PollError) -> None:
        self.error = error


class GraphClient:
    def __init__(
        self,
        *,
        root: str,
        tokens: TokenProvider,
        gate: Gate,
        counters: TenantCounters,
        read_timeout: float,
        sleep: Callable[[float], bool],
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_body: int = MAX_BODY_BYTES,
        max_hold: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.root = root
        self._origin = CredentialOrigin(root, "the Graph root")
        self._tokens = tokens
        self._gate = gate
        self._counters = counters
        self._read_timeout = read_timeout
        self._max_hold = max_hold
        self._poll_deadline, self._paced = 0.0, 0.0  # see get()
        self._clipping = False  # the last Retry-After was clipped: said once, not on every answer
        self._sleep = sleep
        self._session = session or requests.Session()
        self._clock = clock
        self._max_body = max_body
        self._rng = rng or random.Random()

    def check_url(self, url: str) -> None:
        """Refuse any URL outside the Graph root: the bearer token must never go anywhere else."""
        refusal = self._origin.refusal(url)
        if refusal:
            raise BadResponse(f"refusing to follow a link outside the Graph root {self.root}: {refusal}")

    def get_json(self, url: str, deadline: float) -> Any:
        """The JSON document at `url` (see decode_json)."""
        return decode_json(self.get(url, deadline))

    def get(self, url: str, deadline: float) -> bytes:
        """The body of a 2xx answer from `url`, retried as the module docstring says.

        `deadline` bounds the time spent waiting on Graph itself: every wait for a turn in the gate (our pace,
        Graph's Retry-After) moves it back by as long, so pacing alone never fails a poll however large the
        tenant. A poll passes the same `deadline` to each of its requests, which is how its waits add up here;
        one tenant's polls never overlap, so one running total per client is enough.
        """
        self.check_url(url)
        if deadline != self._poll_deadline:
            self._poll_deadline, self._paced = deadline, 0.0
        refreshed = False
        attempt = 0
        retrying: str | None = None  # the reason of the failure being retried, counted once the retry goes out
        while True:
            attempt += 1
            waited = self._gate.wait_turn()
            self._paced += waited
            self._counters.add_throttled(waited)
            if retrying:
                self._counters.count_retry(retrying)
            moved = deadline + self._paced
            try:
                return self._get_once(url, self._tokens.token(moved), moved)
            except _Unauthorized as unauthorized:
                if refreshed:
                    raise unauthorized.error from None
                refreshed = True
                self._tokens.invalidate()
                retrying = "auth"
                continue
            except PollError as exc:
                if exc.reason not in _RETRYABLE or attempt >= MAX_ATTEMPTS:
                    raise
                # A 429/503/504 with Retry-After is waited out in the gate; anything else backs off.
                if not (exc.status in _HOLD_STATUSES and self._gate.held_until() > self._clock()):
                    self._back_off(exc, attempt, moved)
                retrying = exc.reason

    def _back_off(self, exc: PollError, attempt: int, deadline: float) -> None:
        """Exponential back-off with full jitter; the identity guidance wants 5 s before a 5xx retry."""
        floor = 5.0 if exc.reason in ("http_5xx", "throttled") else 1.0
        delay = floor + self._rng.uniform(0, min(60.0, 2.0**attempt))
        if self._clock() + delay > deadline:
            raise exc
        if exc.reason == "throttled":
            self._gate.hold_until(self._clock() + delay)  # waited in the gate, counted as throttled
        elif self._sleep(delay):
            raise exc

    def _get_once(self, url: str, token: str, deadline: float) -> bytes:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise PollError("timeout", "the poll's time budget ran out")
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "client-request-id": str(uuid.uuid4()),
        }
        timeout = (min(_CONNECT_TIMEOUT, remaining), min(self._read_timeout, remaining))
        try:
            response = self._session.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=False)
        except requests.Timeout:
            raise PollError("timeout", f"Graph did not answer within {timeout[1]:.0f}s") from None
        except requests.exceptions.SSLError as exc:
            raise PollError("network", f"TLS with Graph failed: {_reason_of(exc)}") from None
        except requests.RequestException as exc:
            raise PollError("network", f"cannot reach Graph: {_reason_of(exc)}") from None
        with response, _Cutoff(response, deadline - self._clock()) as cutoff:
            self._counters.count_request(response.status_code)
            if 200 <= response.status_code < 300:
                return self._read(response, self._max_body, cutoff)
            raise self._error(response, cutoff)

    def _read(self, response: requests.Response, cap: int, cutoff: _Cutoff) -> bytes:
        """The body, up to `cap` bytes, before `cutoff` fires: the read timeout bounds each wait for data,
        the cutoff a body that trickles in slowly, however slowly."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise BadResponse(f"the response is {declared} bytes, over the {cap}-byte cap")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > cap:
                    raise BadResponse(f"the response is over the {cap}-byte cap")
                chunks.append(chunk)
        except requests.RequestException as exc:
            if cutoff.fired:
                raise PollError(
                    "timeout",
                    f"the poll's time budget ran out while reading the answer ({size}B in); connection closed",
                ) from None
            if isinstance(exc, requests.exceptions.ChunkedEncodingError):
                raise BadResponse("the response body was cut short") from None
            if isinstance(exc, requests.exceptions.ContentDecodingError):
                raise BadResponse("the response body could not be decompressed") from None
            if "timed out" in str(exc).lower():
                raise PollError("timeout", "Graph stopped sending the response") from None
            raise PollError("network", f"the connection broke mid-response: {_reason_of(exc)}") from None
        return b"".join(chunks)

    def _error(self, response: requests.Response, cutoff: _Cutoff) -> Exception:
        status = response.status_code
        code, message, request_id = None, "", response.headers.get("request-id")
        try:
            body = decode_json(self._read(response, _MAX_ERROR_BODY_BYTES, cutoff))
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                code = str(error.get("code") or "") or None
                message = str(error.get("message") or "")
                inner = error.get("innerError") or error.get("innererror") or {}
                if isinstance(inner, dict) and inner.get("request-id"):
                    request_id = str(inner["request-id"])
        except PollError:
            pass  # an HTML error page or a broken body: the status says enough
        detail = f"Graph answered HTTP {status}"
        if code:
            detail += f" {code}"
        if message:
            detail += f": {first_line(message, 200)}"
        if status in _HOLD_STATUSES:
            wait = self._bounded(retry_after_seconds(response.headers.get("Retry-After")))
            if wait is not None:
                self._gate.hold_until(self._clock() + wait)
                detail += f" (Retry-After {wait:g}s)"
        if status == 401:
            reason = "auth"
        elif status == 429:
            reason = "throttled"
        elif status >= 500:
            reason = "http_5xx"
        elif status >= 400:
            reason = "http_4xx"
        else:
            reason = "bad_response"
        error_out = PollError(reason, detail, status=status, code=code, request_id=request_id)
        return _Unauthorized(error_out) if status == 401 else error_out

    def _bounded(self, wait: float | None) -> float | None:
        """Retry-After honoured in full up to `max_hold`: Graph's real answers (seconds to a few minutes) pass,
        while an absurd one cannot hold the tenant past its next scheduled poll for more than a minute."""
        clipped = wait is not None and wait > self._max_hold
        if clipped and not self._clipping:
            log.warning(
                "Graph's Retry-After is longer than the exporter honours; waiting the bound instead",
                extra={"kv": {"root": self.root, "bound_seconds": self._max_hold}},
            )
        self._clipping = clipped
        return min(wait, self._max_hold) if wait is not None else None


class _Cutoff:
    """Shuts the answer's socket down when the poll's deadline comes, from a timer thread.

    A body sent one byte at a time, each byte within --graph.timeout, keeps a read of a 64 KiB chunk blocked
    in the socket far past the deadline; only shutting the socket wakes it (urllib3's shutdown() exists for
    this). The read then fails, `fired` says why, and the connection is closed rather than pooled.
    """

    def __init__(self, response: requests.Response, seconds: float) -> None:
        self.fired = False
        self._response = response
        self._timer = threading.Timer(max(0.0, seconds), self._cut)
        self._timer.daemon = True

    def _cut(self) -> None:
        self.fired = True
        # Already read to its end and released, or closed: then nothing is left to cut.
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            self._response.raw.shutdown()

    def __enter__(self) -> _Cutoff:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        if self.fired:  # even if the read ended just in time: a socket shut for reading must not be pooled
            self._response.raw.close()


def _reason_of(exc: BaseException) -> str:
    """The cause urllib3 gave for a requests error, without the connection-pool noise."""
    text = str(exc) or type(exc).__name__
    _, caused, cause = text.partition("(Caused by ")
    return first_line(cause.rstrip(")") if caused else text)
