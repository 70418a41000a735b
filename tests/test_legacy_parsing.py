"""The legacy report's parser, on recorded responses in every shape Graph has published."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from exporter.errors import BadResponse
from exporter.graph.decoding import decode_json
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


def test_a_key_named_twice_is_refused_and_named_since_readers_disagree_on_which_value_counts() -> None:
    with pytest.raises(BadResponse, match="names the key 'totalUserCount' twice"):
        decode_json(b'{"value": [{"totalUserCount": 5, "userRegistrationCounts": [], "totalUserCount": 7}]}')


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


def _statuses(names: list[str]) -> Any:
    return _with({"userRegistrationCounts": [{"registrationStatus": n, "registrationCount": 1} for n in names]})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_with({"totalUserCount": -1}), "total of users is -1, not a non-negative integer up to 2**53"),
        (_with({"totalUserCount": 12.5}), "total of users is 12.5, not a non-negative integer"),
        (_with({"totalUserCount": 23123.0}), "total of users is 23123.0, not a non-negative integer"),
        (_with({"totalUserCount": "23123"}), "total of users is '23123', not a non-negative integer"),
        (_with({"totalUserCount": True}), "total of users is True, not a non-negative integer"),
        (_with({"totalUserCount": None}), "total of users is None, not a non-negative integer"),
        # Beyond 2**53 a float64 (what Prometheus stores) no longer holds every integer; 10**400 none at all.
        (_with({"totalUserCount": 2**53 + 1}), "total of users is 9007199254740993, not a non-negative integer"),
        (_with({"totalUserCount": 10**400}), "total of users is a 1329-bit integer, not a non-negative integer"),
        (_with({"userRegistrationCounts": None}), "userRegistrationCounts is missing"),
        (_with(entry={"registrationStatus": "registered", "registrationCount": -5}), "status registered is -5"),
        (_with(entry={"registrationStatus": "registered", "registrationCount": 10**400}), "1329-bit integer"),
        (_with(entry={"registrationStatus": "registered"}), "registrationCount is missing"),
        (_with(entry={"registrationCount": 3}), "registrationStatus is missing"),
        (_with(entry={"registrationStatus": 5, "registrationCount": 3}), "registrationStatus is 5, not a status name"),
        (_with(entry={"registrationStatus": "", "registrationCount": 3}), "'' is not a plain label value"),
        (_with(entry={"registrationStatus": " \t", "registrationCount": 3}), "' \\t' is not a plain label value"),
        (_with(entry={"registrationStatus": "mfa registered", "registrationCount": 3}), "not a plain label value"),
        (_with(entry={"registrationStatus": "r\u00e9gistr\u00e9", "registrationCount": 3}), "not a plain label"),
        (_with(entry={"registrationStatus": "\ud800", "registrationCount": 3}), "not a plain label value"),
        (_with(entry={"registrationStatus": "a" * 65, "registrationCount": 3}), "not a plain label value"),
        (_with(entry={"registrationStatus": "mfaRegistered", "registrationCount": 3}), "'mfaRegistered' appears twice"),
        (_statuses([f"status{i}" for i in range(33)]), "33 registration status values, over the cap of 32"),
        (_with(entry="registered"), "not a JSON object"),  # type: ignore[arg-type]
        ({"value": []}, "exactly one"),
        ({"value": [{}, {}]}, "exactly one"),
        ({"value": {}}, "exactly one"),
        ({"value": [5]}, "the item under `value` is not a JSON object"),
        ({"value": [None]}, "the item under `value` is not a JSON object"),
        ([1, 2], "expected a JSON object"),
        ({"id": "x"}, "totalUserCount is missing"),
    ],
)
def test_a_malformed_report_fails_with_bad_response_saying_what_is_wrong(payload: Any, message: str) -> None:
    with pytest.raises(BadResponse, match=re.escape(message)) as caught:
        parse(payload)
    assert caught.value.reason == "bad_response"


def test_the_largest_values_within_the_bounds_are_read_exactly() -> None:
    names = [f"s{i:02d}{'x' * 61}" for i in range(32)]  # 32 statuses of 64 characters
    payload = _statuses(names)
    payload["value"][0]["totalUserCount"] = 2**53
    payload["value"][0]["userRegistrationCounts"][0]["registrationCount"] = 2**53
    report = parse(payload)
    assert report.total_users == 2**53
    assert len(report.registered) == 32 and report.registered[0] == (names[0], 2**53)


def test_a_plain_status_of_every_allowed_character_is_passed_through() -> None:
    status = "Az09_.-unknownFutureValue"
    assert (status, 1) in parse(_statuses([status])).registered
