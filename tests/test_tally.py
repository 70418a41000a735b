"""The details report's running sums (Tally), on records in memory: exact counts and strict types.

These pin the behaviour of the per-record hot path, so that making it faster cannot change what it counts
or what it refuses.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from exporter.errors import BadResponse
from exporter.snapshot import Report, Segment
from exporter.sources.details import ADMIN, KNOWN_METHODS, STATUSES, USER_TYPES, Tally
from tests.fakegraph import user_record


def reference(records: list[dict[str, Any]]) -> Report:
    """The report, computed the slow and obvious way from the same records."""
    users: Counter[tuple[str, str]] = Counter()
    registered: Counter[tuple[str, str, str]] = Counter()
    methods: Counter[str] = Counter(dict.fromkeys(KNOWN_METHODS, 0))
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
    )


def tally_of(*pages: list[Any]) -> Report:
    tally = Tally()
    for page in pages:
        tally.add(page)
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
        tally.add(records[start : start + 100])
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
        pytest.param({**user_record(1), "isMfaRegistered": "1"}, id="number-bool"),  # numbers arrive as text
        pytest.param({**user_record(1), "isSsprCapable": ["x"]}, id="list-bool"),
        pytest.param({**user_record(1), "userType": True}, id="bool-user-type"),
    ],
)
def test_a_record_of_the_wrong_shape_is_a_bad_response(record: Any) -> None:
    with pytest.raises(BadResponse):
        tally_of([user_record(0), record])
