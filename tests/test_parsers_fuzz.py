"""Hostile answers: whatever bytes or JSON Graph sends, the parsers (legacy, and details' pages) fail only with
BadResponse (bad_response).

Anything else escaping a parser would be counted as `internal`, or worse, crash a poll thread. The example
counts are modest so that the suite stays quick; the strategies aim near the real shapes, where bugs live.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.errors import BadResponse
from exporter.graph.client import decode_json
from exporter.snapshot import Report
from exporter.sources import legacy
from exporter.sources.details import Tally
from exporter.sources.records import FIELDS, decode_page
from tests.fakegraph import legacy_payload

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
KEYS = [
    "value",
    "totalUserCount",
    "userRegistrationCounts",
    "registrationStatus",
    "userRegistrationStatus",
    "registrationCount",
    "userRegistrationCount",
    "userRegistationCount",
]
# Objects built from the report's own keys reach much deeper into the parser than random keys do.
near_misses = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    max_leaves=25,
)


def parse_or_bad_response(payload: Any) -> Report | None:
    try:
        return legacy.parse(payload)
    except BadResponse as exc:
        assert exc.reason == "bad_response"
        return None


@FUZZ
@given(st.binary(max_size=512))
def test_decode_json_fails_only_with_bad_response_on_any_bytes(body: bytes) -> None:
    try:
        decode_json(body)
    except BadResponse as exc:
        assert exc.reason == "bad_response"


@FUZZ
@given(json_values)
def test_decode_json_reads_back_any_json_document(value: Any) -> None:
    assert decode_json(json.dumps(value).encode()) == value


@FUZZ
@given(st.sampled_from(["NaN", "Infinity", "-Infinity"]), json_values)
def test_decode_json_refuses_the_non_standard_constants(constant: str, value: Any) -> None:
    body = json.dumps([value, constant]).replace(f'"{constant}"', constant).encode()
    try:
        decode_json(body)
    except BadResponse:
        return
    raise AssertionError(f"{constant} was accepted")


@FUZZ
@given(json_values | near_misses)
def test_the_legacy_parser_fails_only_with_bad_response_on_any_json(payload: Any) -> None:
    report = parse_or_bad_response(payload)
    if report is not None:  # whatever it accepted is a sound report
        assert report.total_users >= 0
        assert all(isinstance(s, str) and s and isinstance(c, int) and c >= 0 for s, c in report.registered)


@FUZZ
@given(st.binary(max_size=256))
def test_the_legacy_parser_behind_decode_json_survives_any_bytes(body: bytes) -> None:
    try:
        payload = decode_json(body)
    except BadResponse:
        return
    parse_or_bad_response(payload)


@FUZZ
@given(
    st.integers(min_value=0, max_value=2**63),
    st.dictionaries(st.text(min_size=1, max_size=15).filter(str.strip), st.integers(0, 2**40), max_size=6),
    st.sampled_from(["schema", "page", "misspelt"]),
    st.booleans(),
)
def test_every_well_formed_report_is_read_exactly(total: int, counts: dict[str, int], spelling: str, env: bool) -> None:
    report = legacy.parse(legacy_payload(total, counts, spelling=spelling, envelope=env))
    assert report.total_users == total
    assert dict(report.registered) == counts


# --- the details report's pages --------------------------------------------------------------------------

DETAIL_KEYS = ["value", "@odata.nextLink", *FIELDS, "userPrincipalName"]
detail_near_misses = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(DETAIL_KEYS), children, max_size=len(DETAIL_KEYS))
    ),
    max_leaves=40,
)


def read_details_pages(bodies: list[bytes]) -> Report | None:
    tally = Tally()
    try:
        for body in bodies:
            tally.add(decode_page(body).value)
        return tally.report("details")
    except BadResponse as exc:
        assert exc.reason == "bad_response"
        return None


@FUZZ
@given(st.lists(json_values | detail_near_misses, min_size=1, max_size=3))
def test_the_details_parser_fails_only_with_bad_response_on_any_json(payloads: list[Any]) -> None:
    report = read_details_pages([json.dumps(payload).encode() for payload in payloads])
    if report is not None:
        assert report.total_users == sum(segment.users for segment in report.segments)
        assert all(count >= 0 for _, count in report.registered)


@FUZZ
@given(st.binary(max_size=256))
def test_the_details_parser_survives_any_bytes(body: bytes) -> None:
    read_details_pages([body])
