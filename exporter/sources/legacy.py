"""The legacy report: GET {graph}/beta/reports/getCredentialUserRegistrationCount (global cloud, beta).

Graph has published this resource in several shapes; all of them are read:
- a collection under `value` (what Graph returns), or the bare object of the resource page;
- `registrationStatus`/`registrationCount` (the metadata schema), `userRegistrationStatus`/
  `userRegistrationCount` (the resource page), and the misspelt `userRegistationCount`.
Anything else fails the poll with `bad_response`: nothing of it is published. This module checks the
shape; the Report checks the values (counts, status names, how many statuses) as it is built.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from exporter.errors import BadResponse
from exporter.graph.client import GraphClient
from exporter.snapshot import Report

PATH = "/beta/reports/getCredentialUserRegistrationCount"
_STATUS_KEYS = ("registrationStatus", "userRegistrationStatus")
_COUNT_KEYS = ("registrationCount", "userRegistrationCount", "userRegistationCount")


def _first_key(item: dict[str, Any], keys: tuple[str, ...], what: str) -> Any:
    for key in keys:
        if key in item:
            return item[key]
    raise BadResponse(f"{what} is missing (looked for {', '.join(keys)})")


def parse(payload: Any) -> Report:
    if not isinstance(payload, dict):
        raise BadResponse(f"expected a JSON object, got {type(payload).__name__}")
    if "value" in payload:
        items = payload["value"]
        if not isinstance(items, list) or len(items) != 1:
            size = len(items) if isinstance(items, list) else type(items).__name__
            raise BadResponse(f"expected `value` to hold exactly one credentialUserRegistrationCount, got {size}")
        payload = items[0]
        if not isinstance(payload, dict):
            raise BadResponse("the item under `value` is not a JSON object")
    if "totalUserCount" not in payload:
        raise BadResponse("totalUserCount is missing")
    entries = payload.get("userRegistrationCounts")
    if not isinstance(entries, list):
        raise BadResponse("userRegistrationCounts is missing or not a list")
    registered: list[tuple[str, Any]] = []
    for index, entry in enumerate(entries):
        where = f"userRegistrationCounts[{index}]"
        if not isinstance(entry, dict):
            raise BadResponse(f"{where} is not a JSON object")
        status = _first_key(entry, _STATUS_KEYS, f"{where}.registrationStatus")
        if not isinstance(status, str):
            raise BadResponse(f"{where}.registrationStatus is {status!r:.80}, not a status name")
        registered.append((status, _first_key(entry, _COUNT_KEYS, f"{where}.registrationCount")))
    registered.sort(key=itemgetter(0))  # by name only: a count is not checked yet, and need not compare
    return Report(source="legacy", total_users=payload["totalUserCount"], registered=tuple(registered))


class LegacySource:
    name = "legacy"

    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    def fetch(self, deadline: float) -> Report:
        return parse(self._graph.get_json(self._graph.root + PATH, deadline))
