"""The Microsoft Graph client: one GET at a time, paced, retried within the poll's budget, read safely.

What it guarantees to its callers (the sources):
- a returned value is a whole, valid JSON document from a 2xx answer;
- anything else raises PollError with a bounded reason, Graph's error code and request-id;
- the bearer token is only ever sent to the configured Graph root;
- 429/503/504 are retried no sooner than Retry-After (which also holds back later polls), other 5xx and
  network errors after an exponential back-off with jitter, 401 once after a fresh token; nothing is
  retried once the next attempt would end past the poll's deadline.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from exporter.errors import BadResponse, PollError
from exporter.graph.credentials import TokenProvider
from exporter.graph.pacing import Gate
from exporter.graph.urls import CredentialOrigin
from exporter.telemetry import TenantCounters
from exporter.values import first_line

MAX_BODY_BYTES = 32 * 1024 * 1024
_MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_ATTEMPTS = 5
_RETRYABLE = frozenset({"throttled", "http_5xx", "network", "timeout"})
_HOLD_STATUSES = frozenset({429, 503, 504})  # Graph's throttling answers, which may carry Retry-After
_CONNECT_TIMEOUT = 10.0


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object that names a key twice is refused: which value counts would be the reader's guess
    (Python keeps the last, other readers the first), so Graph's meaning cannot be known."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:  # only now, to name the key: dict() above is the fast path
            if key in seen:
                raise ValueError(f"an object names the key {key!r:.80} twice")
            seen.add(key)
    return obj


def decode_json(body: bytes, numbers_as_text: bool = False) -> Any:
    """Strict JSON (no NaN or Infinity, no repeated key); BadResponse says what was wrong, also for a
    document nested too deeply to decode (RecursionError), which no real answer is.

    `numbers_as_text` keeps numbers as their text, for documents that should hold none: in Python
    1 == True, so a number where a boolean belongs would otherwise pass for one.
    """
    hooks: dict[str, Any] = {"parse_int": str, "parse_float": str} if numbers_as_text else {}
    try:
        return json.loads(body, parse_constant=_reject_constant, object_pairs_hook=_unique_names, **hooks)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        start = body[:80].decode("utf-8", "replace").strip().replace("\n", " ")
        raise BadResponse(f"the response is not valid JSON ({exc}); it starts with {start!r}") from None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


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
        rng: random.Random | None = None,
    ) -> None:
        self.root = root
        self._origin = CredentialOrigin(root, "the Graph root")
        self._tokens = tokens
        self._gate = gate
        self._counters = counters
        self._read_timeout = read_timeout
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

    def get_json(self, url: str, deadline: float, numbers_as_text: bool = False) -> Any:
        """The JSON document at `url` (see decode_json)."""
        return decode_json(self.get(url, deadline), numbers_as_text)

    def get(self, url: str, deadline: float) -> bytes:
        """The body of a 2xx answer from `url`, retried as the module docstring says."""
        self.check_url(url)
        refreshed = False
        attempt = 0
        retrying: str | None = None  # the reason of the failure being retried, counted once the retry goes out
        while True:
            attempt += 1
            self._counters.add_throttled(self._gate.wait_turn(deadline))
            if retrying:
                self._counters.count_retry(retrying)
            try:
                return self._get_once(url, self._tokens.token(deadline), deadline)
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
                held = self._gate.held_until()
                if exc.status in _HOLD_STATUSES and held > self._clock():
                    if held > deadline:
                        # Graph's Retry-After outlasts the budget: fail now, with the answer's own reason
                        # (a 503 is http_5xx, a 429 throttled); the hold still keeps the next poll back.
                        raise
                else:
                    self._back_off(exc, attempt, deadline)
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
        with response:
            self._counters.count_request(response.status_code)
            if 200 <= response.status_code < 300:
                return self._read(response, self._max_body, deadline)
            raise self._error(response, deadline)

    def _read(self, response: requests.Response, cap: int, deadline: float) -> bytes:
        """The body, up to `cap` bytes, by `deadline`: the read timeout bounds each wait for data, not a
        body that trickles in slowly."""
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
                if self._clock() > deadline:
                    raise PollError("timeout", f"the poll's time budget ran out while reading the answer ({size}B in)")
                chunks.append(chunk)
        except requests.exceptions.ChunkedEncodingError:
            raise BadResponse("the response body was cut short") from None
        except requests.exceptions.ContentDecodingError:
            raise BadResponse("the response body could not be decompressed") from None
        except requests.ConnectionError as exc:
            if "timed out" in str(exc).lower():
                raise PollError("timeout", "Graph stopped sending the response") from None
            raise PollError("network", f"the connection broke mid-response: {_reason_of(exc)}") from None
        return b"".join(chunks)

    def _error(self, response: requests.Response, deadline: float) -> Exception:
        status = response.status_code
        code, message, request_id = None, "", response.headers.get("request-id")
        try:
            body = decode_json(self._read(response, _MAX_ERROR_BODY_BYTES, deadline))
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
            wait = retry_after_seconds(response.headers.get("Retry-After"))
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


def _reason_of(exc: BaseException) -> str:
    """The cause urllib3 gave for a requests error, without the connection-pool noise."""
    text = str(exc) or type(exc).__name__
    _, caused, cause = text.partition("(Caused by ")
    return first_line(cause.rstrip(")") if caused else text)
