"""Log lines in logfmt (default) or JSON, one event per line, with secrets scrubbed as a last defence.

Callers pass structured fields with `extra={"kv": {...}}`; they become key=value pairs.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from exporter.values import Scrubber, Secret

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error"}


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[Secret]) -> None:
        super().__init__()
        self._json = fmt == "json"
        self.scrub = Scrubber(secrets)

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": _LEVEL_NAMES.get(record.levelno, record.levelname.lower()),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update(getattr(record, "kv", {}))
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        # Scrub each value before it is escaped: a secret holding a quote, a backslash or a non-ASCII character
        # no longer reads the same once logfmt or JSON has escaped it, and would slip past the scrub below.
        fields = {key: self._scrub_value(value) for key, value in fields.items()}
        line = (
            json.dumps(fields, default=str)
            if self._json
            else " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        )
        return self.scrub(line)

    def _scrub_value(self, value: object) -> object:
        if value is None or isinstance(value, bool | int | float | list | dict):
            return value  # numbers stay numbers in JSON; containers are scrubbed as a whole line
        return self.scrub(str(value))


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' ="\\\n\t'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def setup(level: str, fmt: str, secrets: Iterable[Secret] = ()) -> None:
    """Send every log line to stderr in the chosen format, scrubbed: ours, the libraries', Python's warnings
    and uncaught exceptions in threads.

    Libraries speak only at --log.level debug, apart from their errors. What urllib3, requests and MSAL say
    at warning level is about a step the exporter retries or reports itself, as the poll's one failure line
    ("Retrying (...)" once gave five lines for one refused connection, even at --log.level error); at debug
    everything is shown, in the chosen format. MSAL alone stays silent: its errors are the failures it then
    returns or raises (a token answer that is not JSON: at ERROR, with a traceback), which MsalTokens turns
    into the poll's failure line, so MSAL's own would say it twice, the first time as if the exporter had
    crashed; and its debug lines echo identity endpoints' answers verbatim, tokens included."""
    global _formatter
    _formatter = _Formatter(fmt, secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter)
    chosen = _LEVELS.get(level, logging.INFO)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if chosen == logging.DEBUG else logging.ERROR)
    logging.getLogger("msal").setLevel(logging.CRITICAL)
    logging.getLogger("exporter").setLevel(chosen)
    logging.captureWarnings(True)  # warnings.warn() would write Python's own two-line format to stderr
    threading.excepthook = _log_uncaught


def scrub(text: str) -> str:
    """`text` with every configured secret replaced: for what is written other than as a log line."""
    return _formatter.scrub(text) if _formatter else text


def _log_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("exporter").error(
        "uncaught exception in a thread",
        exc_info=args.exc_value,
        extra={"kv": {"thread": args.thread.name if args.thread else "?"}},
    )


_formatter: _Formatter | None = None
