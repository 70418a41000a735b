"""The details report's running sums (Tally), on records in memory: exact counts and strict types.

These pin the behaviour of the per-record hot path, so that making it faster cannot change what it counts
or what it refuses.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.errors import BadResponse
from exporter.snapshot import Report, Segment
from exporter.sources.details import ADMIN, KNOWN_METHODS, STATUSES, USER_TYPES, Tally
from exporter.sources.records import Record, decode_page
from exporter.sources.strength import STRENGTHS
from tests.fakegraph import user_record

STRENGTH_OF = {  # the table, written out again so that a slip in the code's table shows
    **dict.fromkeys(["fido2", "fido2SecurityKey", "passKeyDeviceBound", "passKeyDeviceBoundAuthenticator"], 0),
    **dict.fromkeys(["passKeyDeviceBoundWindowsHello", "passKeySynced", "windowsHelloForBusiness"], 0),
    **dict.fromkeys(["macOsSecureEnclaveKey", "x509CertificateMultiFactor"], 0),
    "microsoftAuthenticatorPasswordless": 1,
    **dict.fromkeys(["microsoftAuthenticatorPush", "softwareOneTimePasscode", "hardwareOneTimePasscode"], 2),
    **dict.fromkeys(["mobilePhone", "alternateMobilePhone", "officePhone", "sms"], 3),
}
GRADES = ("phishing_resistant", "passwordless", "app", "phone", "none")


def reference(records: list[dict[str, Any]]) -> Report:
    """The report, computed the slow and obvious way from the same records."""
    users: Counter[tuple[str, str]] = Counter()
    registered: Counter[tuple[str, str, str]] = Counter()
    methods: Counter[str] = Counter(dict.fromkeys(KNOWN_METHODS, 0))
    strengths: Counter[tuple[str, str, str]] = Counter()
    for record in records:
        user_type = record.get("userType")
        segment = (
            user_type if user_type in ("member", "guest") else "unknown",
            {True: "true", False: "false", None: "unknown"}[record.get("isAdmin")],
        )
        users[segment] += 1
        for status, field in STATUSES:
            registered[(*segment, status)] += record.get(field) is True
        methods.update(set(record.get("methodsRegistered") or ()))
        ranks = [STRENGTH_OF.get(m, 4) for m in record.get("methodsRegistered") or ()]
        strengths[(*segment, GRADES[min(ranks, default=4)])] += 1
    statuses = sorted(status for status, _ in STATUSES)
    return Report(
        source="details",
        total_users=len(records),
        registered=tuple((s, sum(registered[(u, a, s)] for u in USER_TYPES for a in ADMIN)) for s in statuses),
        segments=tuple(
            Segment(u, a, users[(u, a)], tuple((s, registered[(u, a, s)]) for s in statuses))
            for u in USER_TYPES
            for a in ADMIN
        ),
        methods=tuple(sorted(methods.items())),
        strengths=tuple((u, a, s, strengths[(u, a, s)]) for u in USER_TYPES for a in ADMIN for s in GRADES),
    )


def records_of(page: list[Any]) -> list[Record]:
    """The records as the details source gets them: a page of JSON, decoded."""
    return decode_page(json.dumps({"value": page}).encode()).value


def tally_of(*pages: list[Any]) -> Report:
    tally = Tally()
    for page in pages:
        tally.add(records_of(page))
    return tally.report("details")


def test_every_count_matches_the_obvious_computation_page_by_page() -> None:
    records = [user_record(i) for i in range(2500)]
    assert tally_of(records[:999], records[999:1998], records[1998:]) == reference(records)


def test_odd_records_count_as_they_always_have() -> None:
    base = user_record(7)
    records = [
        {**base, "methodsRegistered": ["email", "email", "fido2"]},  # a method listed twice is one user
        {**base, "methodsRegistered": ["fido2", "email"]},  # the same methods in another order
        {**base, "methodsRegistered": []},
        {**base, "methodsRegistered": None},
        {k: v for k, v in base.items() if k != "methodsRegistered"},
        {k: v for k, v in base.items() if k not in ("isAdmin", "isMfaRegistered")},  # left out reads as null
        {**base, "userType": "unknownFutureValue", "isAdmin": None, "isSsprEnabled": None},
        {**base, "methodsRegistered": ["quantumKey"]},
        {},
    ]
    report = tally_of(records)
    assert report == reference(records)
    assert dict(report.methods)["email"] == 2
    assert dict(report.methods)["quantumKey"] == 1


def test_many_method_orders_are_folded_so_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Tally, "fold_at", 8)
    rng = random.Random(3)
    names = ["email", "fido2", "mobilePhone", "softwareOneTimePasscode", "windowsHelloForBusiness", "x", "y"]
    records = [{**user_record(i), "methodsRegistered": rng.sample(names, rng.randint(0, 5))} for i in range(3000)]
    tally = Tally()
    for start in range(0, len(records), 100):
        tally.add(records_of(records[start : start + 100]))
        assert tally.pending_keys() <= 8 + 100
    assert tally.report("details") == reference(records)


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(["not", "an", "object"], id="list-record"),
        pytest.param("a string", id="string-record"),
        pytest.param(None, id="null-record"),
        pytest.param({**user_record(1), "methodsRegistered": "email"}, id="string-methods"),
        pytest.param({**user_record(1), "methodsRegistered": {"email": True}}, id="object-methods"),
        pytest.param({**user_record(1), "methodsRegistered": [{"name": "email"}]}, id="object-in-methods"),
        pytest.param({**user_record(1), "methodsRegistered": [["email"]]}, id="list-in-methods"),
        pytest.param({**user_record(1), "methodsRegistered": [""]}, id="empty-method"),
        pytest.param({**user_record(1), "isAdmin": {"value": True}}, id="object-admin"),
        pytest.param({**user_record(1), "isAdmin": "yes"}, id="string-admin"),
        pytest.param({**user_record(1), "isMfaRegistered": "true"}, id="string-bool"),
        pytest.param({**user_record(1), "isMfaRegistered": 1}, id="number-bool"),  # in Python 1 == True
        pytest.param({**user_record(1), "isSsprCapable": ["x"]}, id="list-bool"),
        pytest.param({**user_record(1), "userType": True}, id="bool-user-type"),
    ],
)
def test_a_record_of_the_wrong_shape_is_a_bad_response(record: Any) -> None:
    with pytest.raises(BadResponse) as failure:
        tally_of([user_record(0), record])
    assert "contoso" not in str(failure.value) and "Person" not in str(failure.value)  # no personal data


# --- MFA strength ------------------------------------------------------------------------------------------

METHOD_NAMES = [*STRENGTH_OF, "email", "securityQuestion", "temporaryAccessPass", "externalAuthenticationMethod", "x"]
generated_records = st.lists(
    st.fixed_dictionaries(
        {
            "userType": st.sampled_from(["member", "guest", "unknownFutureValue"]),
            "isAdmin": st.sampled_from([True, False, None]),
            "isMfaRegistered": st.booleans(),
            "methodsRegistered": st.lists(st.sampled_from(METHOD_NAMES), max_size=5) | st.none(),
        }
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(generated_records)
def test_every_user_is_counted_once_by_the_strongest_class_of_the_table(records: list[dict[str, Any]]) -> None:
    report = tally_of(records)
    assert report == reference(records)
    assert STRENGTHS == GRADES
    by_segment: Counter[tuple[str, str]] = Counter()
    for user_type, admin, _, count in report.strengths:
        by_segment[(user_type, admin)] += count
    assert {(s.user_type, s.admin): s.users for s in report.segments} == by_segment  # sums to tenant_users
    assert len(report.strengths) == len(USER_TYPES) * len(ADMIN) * len(STRENGTHS)  # zeros included


@pytest.mark.parametrize(
    ("methods", "strength"),
    [
        (["mobilePhone", "passKeySynced", "email"], "phishing_resistant"),
        (["x509CertificateMultiFactor"], "phishing_resistant"),
        (["microsoftAuthenticatorPasswordless", "microsoftAuthenticatorPush"], "passwordless"),
        (["sms", "hardwareOneTimePasscode"], "app"),
        (["officePhone", "email"], "phone"),
        (["email", "securityQuestion", "temporaryAccessPass"], "none"),
        ([], "none"),
    ],
)
def test_a_user_is_graded_by_the_strongest_method_registered(methods: list[str], strength: str) -> None:
    report = tally_of([{**user_record(3), "methodsRegistered": methods}])
    assert [s for _, _, s, count in report.strengths if count] == [strength]


def test_an_unknown_method_is_counted_but_never_raises_a_class_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = {**user_record(3), "methodsRegistered": ["mobilePhone", "quantumEntangledKey"]}
    with caplog.at_level("WARNING"):
        reports = [tally_of([record, record]) for _ in range(2)]  # two polls
    assert dict(reports[0].methods)["quantumEntangledKey"] == 2
    assert {s: count for _, _, s, count in reports[0].strengths if count} == {"phone": 2}
    assert [r.getMessage().count("quantumEntangledKey") for r in caplog.records] == [1]


def test_the_phishing_resistant_share_is_of_all_users_and_absent_without_the_breakdown() -> None:
    records = [{**user_record(i), "methodsRegistered": ["fido2"] if i < 3 else ["sms"]} for i in range(12)]
    assert tally_of(records).phishing_resistant_share() == 0.25
    assert Report("legacy", 10, (("mfaRegistered", 3),)).phishing_resistant_share() is None


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000,
        b'{"value":' * 200_000,
        b'{"value": [{"userPrincipalName": ' + b"[" * 200_000 + b"]" * 200_000 + b"}]}",  # deep in a skipped field
        b'{"value": [{"userType": "\\ud800"}]}',
        b"\xff",
    ],
    ids=["nested-lists", "nested-objects", "nested-in-a-skipped-field", "surrogate", "invalid-utf8"],
)
def test_a_malformed_page_is_a_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        decode_page(body)


def test_a_page_of_made_up_methods_fails_whole_without_a_log_line_per_name(caplog: pytest.LogCaptureFixture) -> None:
    records = [{**user_record(i), "methodsRegistered": [f"madeUp{i}"]} for i in range(200)]  # past the cap of 128
    with caplog.at_level("WARNING"), pytest.raises(BadResponse):
        tally_of(records)
    assert not [r for r in caplog.records if "madeUp" in r.getMessage()]


def test_a_report_holds_up_to_128_methods_and_refuses_the_129th() -> None:
    def report(methods: int) -> Report:
        return Report("details", 1, (("mfaRegistered", 1),), methods=tuple((f"m{n:03d}", 1) for n in range(methods)))

    assert len(report(128).methods) == 128
    with pytest.raises(BadResponse, match="129 authentication method values, over the cap of 128"):
        report(129)


def test_a_paging_of_ever_new_method_names_is_refused_as_they_pile_up_not_at_its_end() -> None:
    tally = Tally()
    tally.fold_at = 10  # the names of each few records are counted as the paging goes
    with pytest.raises(BadResponse, match="over 128 authentication method values"):
        for page in range(100):  # 1,100 made-up names in all, 11 a page
            tally.add(records_of([{**user_record(i), "methodsRegistered": [f"madeUp{page}x{i}"]} for i in range(11)]))
    assert page < 20  # refused within a page or two of the cap, long before the report
