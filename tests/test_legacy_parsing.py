"""The legacy report's parser, on recorded responses in every shape Graph has published."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exporter.errors import BadResponse
from exporter.graph.client import decode_json
from exporter.sources.legacy import parse
from tests.support import FIXTURES

EXPECTED = (("capable", 323), ("enabled", 4234), ("mfaRegistered", 33), ("registered", 23423))


def load(name: str) -> Any:
    return decode_json((FIXTURES / "legacy" / name).read_bytes())


@pytest.mark.parametrize("name", ["graph_collection.json", "resource_page.json", "misspelt_example.json"])
def test_every_published_spelling_and_envelope_gives_the_same_counts(name: str) -> None:
    report = parse(load(name))
    assert report.total_users == 23123
    assert report.registered == EXPECTED
    assert report.source == "legacy"


def test_the_seed_sample_with_its_trailing_comma_is_refused_as_invalid_json() -> None:
    with pytest.raises(BadResponse, match="not valid JSON") as caught:
        load("seed_sample_invalid.json")
    assert caught.value.reason == "bad_response"


def test_an_html_error_page_is_refused_and_the_message_shows_its_start() -> None:
    with pytest.raises(BadResponse, match="<html>"):
        decode_json(b"<html><body>502 Bad Gateway</body></html>")


def test_nan_is_not_a_count() -> None:
    with pytest.raises(BadResponse):
        decode_json(b'{"totalUserCount": NaN}')


def test_unknown_statuses_are_passed_through_as_label_values() -> None:
    payload = load("graph_collection.json")
    payload["value"][0]["userRegistrationCounts"].append(
        {"registrationStatus": "unknownFutureValue", "registrationCount": 7}
    )
    assert ("unknownFutureValue", 7) in parse(payload).registered


def _with(change: dict[str, Any] | None = None, entry: dict[str, Any] | None = None) -> Any:
    payload = json.loads((FIXTURES / "legacy" / "graph_collection.json").read_text())
    item = payload["value"][0]
    item.update(change or {})
    if entry is not None:
        item["userRegistrationCounts"][0] = entry
    return payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_with({"totalUserCount": -1}), "totalUserCount is -1"),
        (_with({"totalUserCount": 12.5}), "totalUserCount is 12.5"),
        (_with({"totalUserCount": "23123"}), "not a non-negative integer"),
        (_with({"totalUserCount": True}), "not a non-negative integer"),
        (_with({"totalUserCount": None}), "not a non-negative integer"),
        (_with({"userRegistrationCounts": None}), "userRegistrationCounts is missing"),
        (_with(entry={"registrationStatus": "registered", "registrationCount": -5}), "-5"),
        (_with(entry={"registrationStatus": "registered"}), "registrationCount is missing"),
        (_with(entry={"registrationCount": 3}), "registrationStatus is missing"),
        (_with(entry={"registrationStatus": "", "registrationCount": 3}), "not a status name"),
        (_with(entry={"registrationStatus": "mfaRegistered", "registrationCount": 3}), "appears twice"),
        (_with(entry="registered"), "not a JSON object"),  # type: ignore[arg-type]
        ({"value": []}, "exactly one"),
        ({"value": [{}, {}]}, "exactly one"),
        ({"value": {}}, "exactly one"),
        ([1, 2], "expected a JSON object"),
        ({"id": "x"}, "totalUserCount is missing"),
    ],
)
def test_a_malformed_report_fails_with_bad_response_saying_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(BadResponse, match=message.replace(".", r"\.")) as caught:
        parse(payload)
    assert caught.value.reason == "bad_response"
