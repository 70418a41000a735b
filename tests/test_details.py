"""The modern report (userRegistrationDetails): exact sums, paging, privacy, fallback and pacing."""

from __future__ import annotations

import logging
import os
import pty
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from exporter.sources.details import KNOWN_METHODS
from tests.fakegraph import DETAILS_PATH, LEGACY_PATH, FakeGraph, Fault, graph_error, user_record
from tests.support import ROOT, exposition, make_exporter, run_cli, value

STATUS_FIELDS = {
    "registered": "isSsprRegistered",
    "enabled": "isSsprEnabled",
    "capable": "isSsprCapable",
    "mfaRegistered": "isMfaRegistered",
    "mfaCapable": "isMfaCapable",
    "passwordlessCapable": "isPasswordlessCapable",
}


def segment_of(user: dict[str, Any]) -> tuple[str, str]:
    user_type = user["userType"] if user["userType"] in ("member", "guest") else "unknown"
    admin = {True: "true", False: "false", None: "unknown"}[user["isAdmin"]]
    return user_type, admin


def test_every_series_is_the_exact_sum_of_the_records(fake: FakeGraph) -> None:
    exporter = make_exporter(fake, source="details", rate_limit="off")
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    t = fake.tenant_id
    users = fake.users
    assert value(exporter, "tenant_total_users", tenant=t) == 2500
    for status_name, field in STATUS_FIELDS.items():
        expected = sum(1 for u in users if u[field])
        assert value(exporter, "credential_registered_users", tenant=t, status=status_name) == expected
    segments = Counter(segment_of(u) for u in users)
    for user_type in ("member", "guest", "unknown"):
        for admin in ("true", "false", "unknown"):
            labels = {"tenant": t, "user_type": user_type, "admin": admin}
            assert value(exporter, "tenant_users", **labels) == segments[(user_type, admin)]
            for status_name, field in STATUS_FIELDS.items():
                expected = sum(1 for u in users if segment_of(u) == (user_type, admin) and u[field])
                assert value(exporter, "credential_registered_segment_users", **labels, status=status_name) == expected
    methods = Counter(m for u in users for m in u["methodsRegistered"])
    for method in set(methods) | set(KNOWN_METHODS):
        assert value(exporter, "credential_method_registered_users", tenant=t, method=method) == methods[method]
    assert value(exporter, "credential_exporter_source_info", tenant=t, source="details") == 1
    # 2,500 users at 999 a page: three pages, each followed verbatim from the previous one's next link.
    pages = fake.requests_to(DETAILS_PATH)
    assert [p.path for p in pages] == [
        f"{DETAILS_PATH}?$top=999",
        f"{DETAILS_PATH}?$top=999&$skiptoken=999",
        f"{DETAILS_PATH}?$top=999&$skiptoken=1998",
    ]


def test_every_mfa_strength_count_is_what_the_records_say_and_a_legacy_tenant_has_none(fake: FakeGraph) -> None:
    # Every class of the table, with unknown and recovery-only methods mixed in, in varied segments.
    mixes = [
        ["sms", "passKeySynced"],
        ["microsoftAuthenticatorPasswordless", "email"],
        ["hardwareOneTimePasscode", "officePhone"],
        ["alternateMobilePhone", "securityQuestion"],
        ["temporaryAccessPass", "holographicToken"],
        [],
        ["x509CertificateMultiFactor"],
    ]
    for i, user in enumerate(fake.users):
        user["methodsRegistered"] = mixes[i % len(mixes)]
    exporter = make_exporter(fake, source="details", rate_limit="off")
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    grade = {
        0: "phishing_resistant",
        1: "passwordless",
        2: "app",
        3: "phone",
        4: "none",
        5: "none",
        6: "phishing_resistant",
    }
    expected = Counter((*segment_of(u), grade[i % len(mixes)]) for i, u in enumerate(fake.users))
    for user_type in ("member", "guest", "unknown"):
        for admin in ("true", "false", "unknown"):
            labels = {"tenant": fake.tenant_id, "user_type": user_type, "admin": admin}
            classes = ("phishing_resistant", "passwordless", "app", "phone", "none")
            got = {c: value(exporter, "credential_mfa_strength_users", **labels, strength=c) for c in classes}
            assert got == {c: expected[(user_type, admin, c)] for c in classes}
            assert sum(got.values()) == value(exporter, "tenant_users", **labels)
    unknown = value(exporter, "credential_method_registered_users", tenant=fake.tenant_id, method="holographicToken")
    assert unknown == len(fake.users[4 :: len(mixes)])
    assert status.report is not None
    assert status.report.phishing_resistant_share() == pytest.approx(
        sum(1 for i in range(len(fake.users)) if i % len(mixes) in (0, 6)) / len(fake.users)
    )

    legacy = make_exporter(fake, source="legacy")
    legacy.poller.poll_round()
    assert "credential_mfa_strength_users{" not in exposition(legacy)


def test_admins_without_mfa_are_one_division_away(fake: FakeGraph) -> None:
    exporter = make_exporter(fake, source="details", rate_limit="off")
    exporter.poller.poll_round()
    labels = {"tenant": fake.tenant_id, "admin": "true"}
    admins = sum(value(exporter, "tenant_users", **labels, user_type=u) or 0 for u in ("member", "guest", "unknown"))
    with_mfa = sum(
        value(exporter, "credential_registered_segment_users", **labels, user_type=u, status="mfaRegistered") or 0
        for u in ("member", "guest", "unknown")
    )
    # Admins are users 100k+1 (25 of them); those divisible by 3 lack MFA: k = 2, 5, ..., 23.
    assert (admins, with_mfa) == (25, 17)


def test_the_page_size_flag_sets_top(fake: FakeGraph) -> None:
    exporter = make_exporter(fake, source="details", rate_limit="off", page_size=1000)
    fake.max_page_size = 1000
    exporter.poller.poll_round()
    assert len(fake.requests_to(DETAILS_PATH)) == 3
    assert fake.requests_to(DETAILS_PATH)[0].path.endswith("$top=1000")


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(500, "<html>Internal Server Error</html>"), id="500"),
        pytest.param(Fault(200, '{"value": [{"userType": "member",'), id="cut-json"),
        pytest.param(Fault(200, {"value": [{**user_record(5), "isMfaRegistered": "true"}]}), id="string-bool"),
        pytest.param(Fault(200, {"value": [{**user_record(5), "isMfaRegistered": 1}]}), id="number-bool"),
        pytest.param(Fault(200, {"value": [{**user_record(5), "isAdmin": "yes"}]}), id="string-admin"),
        pytest.param(Fault(200, {"value": [{**user_record(5), "methodsRegistered": "email"}]}), id="string-methods"),
        pytest.param(Fault(200, {"value": [["not", "an", "object"]]}), id="list-record"),
        pytest.param(Fault(200, {"records": []}), id="no-value"),
    ],
)
def test_a_failure_on_a_later_page_publishes_nothing_partial_and_recovers(fake: FakeGraph, fault: Fault) -> None:
    exporter = make_exporter(fake, source="details", rate_limit="off", poll_timeout="3s")
    exporter.poller.poll_round()
    before = exposition(exporter).split("# HELP credential_exporter_up")[0]
    fake.users = [user_record(i) for i in range(3000)]  # the tenant changed: any partial sum would show
    fake.fail("details", Fault(action="pass"), fault)  # page 1 answers normally, page 2 with the fault
    (status,) = exporter.poller.poll_round()
    assert not status.up
    assert status.last_reason in ("bad_response", "http_5xx")
    assert exposition(exporter).split("# HELP credential_exporter_up")[0] == before
    (status,) = exporter.poller.poll_round()
    assert status.up
    assert value(exporter, "tenant_total_users", tenant=fake.tenant_id) == 3000


def test_a_next_link_seen_twice_fails_the_poll_instead_of_looping(fake: FakeGraph) -> None:
    looping = f"{fake.url}{DETAILS_PATH}?$top=999&$skiptoken=999"
    fake.fail(
        "details",
        Fault(200, {"value": fake.users[:999], "@odata.nextLink": looping}),
        Fault(200, {"value": fake.users[999:1998], "@odata.nextLink": looping}),
    )
    exporter = make_exporter(fake, source="details", rate_limit="off")
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "bad_response"
    assert "next link it had sent before" in (status.last_detail or "")
    assert len(fake.requests_to(DETAILS_PATH)) == 2


def test_more_pages_than_the_cap_fail_the_poll(fake: FakeGraph) -> None:
    exporter = make_exporter(fake, source="details", rate_limit="off", max_pages=2)
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "bad_response"
    assert "--graph.max-pages=2" in (status.last_detail or "")
    assert len(fake.requests_to(DETAILS_PATH)) == 2


def test_a_next_link_to_another_host_is_refused_and_gets_no_token(fake: FakeGraph, tmp_path: Any) -> None:
    (tmp_path / "other").mkdir()
    other = FakeGraph(tmp_path / "other")
    try:
        foreign = f"{other.url}{DETAILS_PATH}?$top=999&$skiptoken=999"
        fake.fail("details", Fault(200, {"value": fake.users[:999], "@odata.nextLink": foreign}))
        exporter = make_exporter(fake, source="details", rate_limit="off")
        (status,) = exporter.poller.poll_round()
        assert status.last_reason == "bad_response"
        assert "outside the Graph root" in (status.last_detail or "")
        assert other.seen == []
    finally:
        other.close()


def test_nulls_and_unknown_values_are_counted_not_fatal(fake: FakeGraph) -> None:
    odd = {**user_record(3), "userType": "unknownFutureValue", "isAdmin": None, "methodsRegistered": ["quantumKey"]}
    no_type = {
        **user_record(4),
        "userType": None,
        "methodsRegistered": None,
        "isSystemPreferredAuthenticationMethodEnabled": None,
    }
    fake.users = [odd, no_type, user_record(6)]
    exporter = make_exporter(fake, source="details", rate_limit="off")
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    t = fake.tenant_id
    assert value(exporter, "tenant_users", tenant=t, user_type="unknown", admin="unknown") == 1
    assert value(exporter, "tenant_users", tenant=t, user_type="unknown", admin="false") == 1
    assert value(exporter, "credential_method_registered_users", tenant=t, method="quantumKey") == 1
    assert value(exporter, "credential_method_registered_users", tenant=t, method="fido2") == 0
    assert value(exporter, "tenant_total_users", tenant=t) == 3


def test_auto_falls_back_to_details_once_and_remembers(fake: FakeGraph, caplog: pytest.LogCaptureFixture) -> None:
    fake.legacy = None  # Graph answers 400 "Resource not found for the segment"
    exporter = make_exporter(fake, rate_limit="off")
    with caplog.at_level(logging.INFO, logger="exporter"):
        exporter.poller.poll_round()
        exporter.poller.poll_round()
    t = fake.tenant_id
    assert value(exporter, "credential_exporter_up", tenant=t) == 1
    assert value(exporter, "credential_exporter_source_info", tenant=t, source="details") == 1
    assert value(exporter, "tenant_total_users", tenant=t) == 2500
    assert len(fake.requests_to(LEGACY_PATH)) == 1
    assert len([r for r in caplog.records if "not available" in r.getMessage()]) == 1


@pytest.mark.parametrize("status", [404, 410])
def test_auto_falls_back_when_the_function_is_gone(fake: FakeGraph, status: int) -> None:
    fake.fail("legacy", graph_error(status, "ResourceNotFound", "Gone."))
    exporter = make_exporter(fake, rate_limit="off")
    (result,) = exporter.poller.poll_round()
    assert result.up and result.report is not None and result.report.source == "details"


def test_auto_keeps_the_legacy_report_while_graph_has_it(fake: FakeGraph) -> None:
    exporter = make_exporter(fake, rate_limit="off")
    exporter.poller.poll_round()
    assert value(exporter, "credential_exporter_source_info", tenant=fake.tenant_id, source="legacy") == 1
    assert fake.requests_to(DETAILS_PATH) == []


def test_auto_does_not_switch_when_the_tenant_lacks_the_licence(fake: FakeGraph) -> None:
    fake.fail("legacy", graph_error(403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "No P1/P2."))
    exporter = make_exporter(fake, rate_limit="off")
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "http_4xx"
    assert fake.requests_to(DETAILS_PATH) == []


def test_pacing_keeps_a_throttling_graph_from_ever_answering_429(fake: FakeGraph) -> None:
    fake.rate_limit = (5, 10.0)  # Graph's limit for these reports, enforced on arrival
    fake.users = [user_record(i) for i in range(2800)]
    exporter = make_exporter(fake, source="details", page_size=400)  # 7 pages, default --graph.rate-limit 5/10s
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    assert fake.throttled == 0
    assert value(exporter, "tenant_total_users", tenant=fake.tenant_id) == 2800
    assert value(exporter, "credential_exporter_throttled_seconds_total", tenant=fake.tenant_id) > 5


def test_personal_data_never_reaches_logs_or_metrics(fake: FakeGraph) -> None:
    fake.fail("details", Fault(200, {"value": [{**user_record(7), "isMfaRegistered": "maybe"}]}))
    args = ("--once", "--source", "details", "--graph.rate-limit", "off", "--log.level", "debug")
    failed, ok = (run_cli(*args, "--graph.endpoint", fake.url, env=fake.env()) for _ in range(2))
    assert failed.returncode == 1 and ok.returncode == 0
    for text in (failed.stdout, failed.stderr, ok.stdout, ok.stderr):
        assert "contoso.example" not in text and "Person Number" not in text
        assert str(user_record(7)["id"]) not in text


def test_once_shows_progress_on_a_terminal_and_nothing_extra_on_a_pipe(fake: FakeGraph) -> None:
    args = ["--once", "--source", "details", "--graph.rate-limit", "off", "--graph.endpoint", fake.url]
    piped = run_cli(*args, env=fake.env())
    assert piped.returncode == 0 and piped.stderr == ""
    leader, follower = pty.openpty()
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        env={**base, **fake.env()},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=60,
        check=False,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"3 pages, 2,500 users summed" in shown
