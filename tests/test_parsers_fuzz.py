"""Hostile answers: whatever bytes or JSON Graph sends, the whole path bytes -> decode_json -> parser ->
Report -> collector ends in one of two ways: BadResponse (bad_response), or a scrape that renders whole, in
both exposition formats and on the landing page, with every number exact.

Anything else escaping a parser would be counted as `internal`, or worse, crash a poll thread; a Report the
collector cannot render would break every scrape until the next good poll. The example counts are modest so
that the suite stays quick; the strategies aim near the real shapes, where bugs live.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from exporter.collector import RegistrationCollector
from exporter.errors import BadResponse
from exporter.graph.decoding import decode_json
from exporter.poller import TenantJob
from exporter.snapshot import MAX_COUNT, MAX_METHODS, MAX_STATUSES, Report, Segment, TenantStatus
from exporter.sources import legacy
from exporter.sources.demo import DemoSource
from exporter.sources.details import Tally
from exporter.sources.records import FIELDS, decode_page
from exporter.web.status import StatusPage
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


def render(report: Report) -> Report:
    """Publish `report` as a scrape would, through the real collector, in the text format, in OpenMetrics and
    on the landing page, and read each number back: nothing may raise, and each number must be exact."""
    job = TenantJob("contoso", DemoSource(), status=TenantStatus(report=report, polled=True, up=True))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RegistrationCollector(lambda: [job], "15m", 900.0))
    expected = {("tenant_total_users", ()): report.total_users}
    expected |= {("credential_registered_users", (("status", s),)): n for s, n in report.registered}
    expected |= {("credential_method_registered_users", (("method", m),)): n for m, n in report.methods}
    for seg in report.segments:
        expected[("tenant_users", (("admin", seg.admin), ("user_type", seg.user_type)))] = seg.users
        for s, n in seg.registered:
            key = (
                "credential_registered_segment_users",
                (("admin", seg.admin), ("status", s), ("user_type", seg.user_type)),
            )
            expected[key] = n
    text = generate_latest(registry).decode()
    openmetrics = generate_openmetrics(registry).decode()
    for families in (text_string_to_metric_families(text), parse_openmetrics(openmetrics)):
        published = {
            (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "tenant"))): sample.value
            for family in families
            for sample in family.samples
            if sample.name.startswith(("tenant_", "credential_registered", "credential_method"))
        }
        assert published == expected  # a float equals an int only when it holds it exactly
    page = StatusPage(lambda: [job], lambda _name: None, lambda: (), demo=False, interval_text="15m").render()
    assert '"Tenant">contoso</td>' in page
    return report


def parse_or_bad_response(payload: Any) -> Report | None:
    """The legacy parser's Report, rendered; or None after a BadResponse."""
    try:
        return render(legacy.parse(payload))
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
    parse_or_bad_response(payload)


def legacy_from_bytes(body: bytes) -> Report | None:
    try:
        payload = decode_json(body)
    except BadResponse:
        return None
    return parse_or_bad_response(payload)


# JSON written as text, so that it can hold what json.dumps never writes: a key named twice, numbers past
# float64 and past 2**53, lone surrogates and control characters in strings. Built from the report's own keys
# and near-miss values, it reaches the Report's checks rather than stopping at the first missing key.
HOSTILE_NUMBERS = ["1e400", "-0", "0.0", "2.5", "1E2", "-1", str(MAX_COUNT), str(MAX_COUNT + 1), str(10**400)]
HOSTILE_STRINGS = ['" "', '"\\ud800"', '"a\\u0000b"', '"r\\u00e9gistr\\u00e9"', '"a b"', '"' + "x" * 65 + '"']
PLAIN_STATUSES = ["registered", "enabled", "capable", "mfaRegistered", *(f"status{i}" for i in range(36))]
number_texts = st.integers(-(2**64), 2**64).map(str) | st.sampled_from(HOSTILE_NUMBERS)
string_texts = st.text(max_size=12).map(json.dumps) | st.sampled_from(HOSTILE_STRINGS)
status_texts = st.sampled_from([json.dumps(s) for s in PLAIN_STATUSES]) | string_texts
leaf_texts = number_texts | string_texts | st.sampled_from(["true", "false", "null", "[]", "{}"])


def json_object(members: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in members) + "}"


odd_entry_texts = st.lists(
    st.tuples(st.sampled_from(KEYS[3:]), status_texts | number_texts | leaf_texts), min_size=1, max_size=3
).map(json_object)


@st.composite
def legacy_texts(draw: st.DrawFn) -> str:
    """A well-formed report of up to 40 plain statuses (past the cap of 32), with at most one flaw."""
    statuses = draw(st.lists(st.sampled_from(PLAIN_STATUSES), unique=True, max_size=40))
    counts = st.integers(0, MAX_COUNT).map(str)
    entries = [
        json_object([("registrationStatus", json.dumps(s)), ("registrationCount", draw(counts))]) for s in statuses
    ]
    total, extra = draw(counts), []
    flaw = draw(st.sampled_from(["none", "total", "entry", "key-twice"]))
    if flaw == "total":
        total = draw(number_texts | leaf_texts)
    elif flaw == "entry":
        entries.insert(draw(st.integers(0, len(entries))), draw(odd_entry_texts))
    elif flaw == "key-twice":
        extra.append((draw(st.sampled_from(KEYS[1:3])), draw(number_texts | leaf_texts)))
    report = json_object([("totalUserCount", total), ("userRegistrationCounts", f"[{','.join(entries)}]"), *extra])
    return json_object([("value", f"[{report}]")]) if draw(st.booleans()) else report


json_texts = st.recursive(
    leaf_texts,
    lambda children: (
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(st.sampled_from(KEYS), children), max_size=4).map(json_object)
    ),
    max_leaves=25,
)


@FUZZ
@given(st.binary(max_size=256))
def test_the_legacy_parser_behind_decode_json_survives_any_bytes(body: bytes) -> None:
    legacy_from_bytes(body)


@FUZZ
@given(legacy_texts() | json_texts)
def test_any_legacy_answer_fails_with_bad_response_or_renders_whole_and_exact(text: str) -> None:
    legacy_from_bytes(text.encode())


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000,
        b'{"value":' * 200_000,
        b'{"totalUserCount": 5, "totalUserCount": 5, "userRegistrationCounts": []}',
        b'{"totalUserCount": 5, "userRegistrationCounts": [{"registrationStatus": "\xff", "registrationCount": 1}]}',
        b'{"totalUserCount": 1e400, "userRegistrationCounts": []}',
        b'{"totalUserCount": ' + b"9" * 5000 + b', "userRegistrationCounts": []}',
        b'{"totalUserCount": 5, "userRegistrationCounts": [{"registrationStatus": "\\ud800", "registrationCount": 1}]}',
    ],
    ids=[
        "nested-lists",
        "nested-objects",
        "key-twice",
        "invalid-utf8",
        "float-overflow",
        "5000-digits",
        "surrogate",
    ],
)
def test_a_malformed_body_is_bad_response_and_never_reaches_a_scrape(body: bytes) -> None:
    assert legacy_from_bytes(body) is None


@FUZZ
@given(
    st.integers(min_value=0, max_value=MAX_COUNT),
    st.dictionaries(st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True), st.integers(0, MAX_COUNT), max_size=8),
    st.sampled_from(["schema", "page", "misspelt"]),
    st.booleans(),
)
def test_every_well_formed_report_is_read_exactly(total: int, counts: dict[str, int], spelling: str, env: bool) -> None:
    report = legacy.parse(legacy_payload(total, counts, spelling=spelling, envelope=env))
    assert report.total_users == total
    assert dict(report.registered) == counts
    render(report)


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
        return render(tally.report("details"))
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


# --- every Report that can exist ------------------------------------------------------------------------

plain_labels = st.from_regex(r"[A-Za-z0-9_.-]{1,64}", fullmatch=True)
good_counts = st.integers(0, MAX_COUNT)
wild_labels = st.text(max_size=70) | st.integers() | st.sampled_from(["", " ", "\ud800", "a" * 65, "a\nb", "é"])
wild_counts = (
    st.integers(-(2**70), 2**70)
    | st.sampled_from([MAX_COUNT + 1, -1, 10**400, True, None, "5"])
    | st.floats(allow_nan=True, allow_infinity=True)
)


def pairs(labels: st.SearchStrategy[Any], counts: st.SearchStrategy[Any], cap: int) -> st.SearchStrategy[Any]:
    return st.lists(st.tuples(labels, counts), max_size=cap + 2).map(tuple)


def reports(labels: st.SearchStrategy[Any], counts: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Report's arguments (not Reports: building one is what is under test)."""
    return st.tuples(
        counts,
        pairs(labels, counts, MAX_STATUSES),
        st.lists(st.tuples(labels, labels, counts, pairs(labels, counts, 8)), max_size=4),
        pairs(labels, counts, MAX_METHODS),
    )


def build(args: Any) -> Report:
    total, registered, segments, methods = args
    return Report("details", total, registered, tuple(Segment(*segment) for segment in segments), methods)


@FUZZ
@given(reports(plain_labels | wild_labels, good_counts | wild_counts))
def test_a_report_either_refuses_its_values_or_renders_whole_and_exact(args: Any) -> None:
    try:
        report = build(args)
    except BadResponse as exc:
        assert exc.reason == "bad_response"
        return
    render(report)


@FUZZ
@given(reports(plain_labels, good_counts))
def test_a_report_of_plain_distinct_labels_and_counts_within_bounds_renders(args: Any) -> None:
    _, registered, segments, methods = args
    distinct = (
        len({s for s, _ in registered}) == len(registered) <= MAX_STATUSES
        and len({m for m, _ in methods}) == len(methods) <= MAX_METHODS
        and len({(u, a) for u, a, *_ in segments}) == len(segments)
        and all(len({s for s, _ in seg[3]}) == len(seg[3]) for seg in segments)
    )
    try:
        report = build(args)
    except BadResponse:
        assert not distinct  # the only reason left to refuse it is a repeat or too many values
        return
    assert distinct
    render(report)
