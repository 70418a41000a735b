"""Graph's answers decoded as strict JSON: what two JSON readers could read two ways is refused."""

from __future__ import annotations

import json
from typing import Any

from exporter.errors import BadResponse


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


def decode_json(body: bytes) -> Any:
    """Strict JSON (no NaN or Infinity, no repeated key); BadResponse says what was wrong, also for a
    document nested too deeply to decode (RecursionError), which no real answer is."""
    try:
        return json.loads(body, parse_constant=_reject_constant, object_pairs_hook=_unique_names)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        start = body[:80].decode("utf-8", "replace").strip().replace("\n", " ")
        raise BadResponse(f"the response is not valid JSON ({exc}); it starts with {start!r}") from None
