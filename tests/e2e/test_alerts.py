"""The shipped alert rules on a real Prometheus, delivering to a real Alertmanager, fed by the exporter
polling the fake Graph: what an operator would see when MFA coverage drops or Graph keeps failing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.stack import RULES, AlwaysFailingGraph, Stack, monitoring, wait_until
from tests.fakegraph import Fault, legacy_payload
from tests.support import exporter_process, rules_generator

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TENANT = "contoso"
TOTAL = 23123
COUNTS = {"registered": 21000, "enabled": 22000, "capable": 20500, "mfaRegistered": 18000}  # 77.84% MFA


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[AlwaysFailingGraph]:
    fake = AlwaysFailingGraph(tmp_path)
    fake.legacy = legacy_payload(TOTAL, COUNTS)
    yield fake
    fake.close()


@contextmanager
def polled_and_monitored(
    graph: AlwaysFailingGraph, tmp_path: Path, *flags: str, rules: str | None = None
) -> Iterator[Stack]:
    """The exporter polling the fake every 2 s, scraped by Prometheus, which alerts to Alertmanager."""
    args = ("--graph.endpoint", graph.url, "--poll.interval", "2s", "--tenant.name", TENANT, *flags)
    with (
        exporter_process(*args, env=graph.env()) as (url, _proc),
        monitoring(tmp_path, [url.removeprefix("http://")], rules) as s,
    ):
        wait_until(
            "the exporter's target up in Prometheus",
            lambda: [t for t in s.targets() if t["health"] == "up"],
            30,
            s.logs,
        )
        yield s


@pytest.fixture
def stack(graph: AlwaysFailingGraph, tmp_path: Path) -> Iterator[Stack]:
    with polled_and_monitored(graph, tmp_path) as s:
        yield s


def test_the_exporter_is_a_healthy_target_and_its_numbers_are_recorded(stack: Stack) -> None:
    (target,) = stack.targets()
    assert target["labels"]["job"] == "entra-credential-exporter"
    assert target["health"] == "up" and target["lastError"] == ""
    share = wait_until(
        "the recorded MFA share",
        lambda: stack.query(f'tenant:credential_mfa_registered_users:ratio{{tenant="{TENANT}"}}'),
        30,
        stack.logs,
    )
    assert float(share[0]["value"][1]) == pytest.approx(18000 / TOTAL)
    sspr = stack.query(f'tenant:credential_sspr_registered_users:ratio{{tenant="{TENANT}"}}')
    assert float(sspr[0]["value"][1]) == pytest.approx(21000 / TOTAL)


def test_an_mfa_coverage_drop_reaches_alertmanager_with_the_tenant_and_the_values(
    stack: Stack, graph: AlwaysFailingGraph
) -> None:
    # Steady numbers: the pipeline delivers the floor alert (77.84% < 90%) but no drop alert.
    floor = stack.wait_for_alert("EntraMFACoverageBelowFloor", TENANT)
    assert floor["annotations"]["summary"] == f"MFA coverage of tenant {TENANT} is 77.84%, below the floor of 90%"
    assert stack.prometheus_alerts("EntraMFACoverageDropped") == []
    assert stack.alertmanager_alerts("EntraMFACoverageDropped") == []

    graph.legacy = legacy_payload(TOTAL, {**COUNTS, "mfaRegistered": 12000})  # 51.9%: 26 points lost

    alert = stack.wait_for_alert("EntraMFACoverageDropped", TENANT)
    assert alert["labels"] == {"alertname": "EntraMFACoverageDropped", "severity": "critical", "tenant": TENANT}
    assert alert["annotations"]["summary"] == (
        f"MFA coverage of tenant {TENANT} dropped by more than 5 percentage points in 24 h, to 51.9%"
    )
    assert alert["annotations"]["description"].startswith(
        f"77.84% of the users of tenant {TENANT} were registered for MFA at the highest point of the last 24 hours;"
        " now 51.9% are."
    )
    assert alert["annotations"]["runbook_url"] == (
        "https://github.com/entra-credential-exporter/entra-credential-exporter/blob/main/docs/runbook.md"
        "#entramfacoveragedropped"
    )
    assert alert["status"]["state"] == "active"


def test_graph_failing_on_every_poll_reaches_alertmanager_as_polls_failing(
    stack: Stack, graph: AlwaysFailingGraph
) -> None:
    wait_until(
        "a successful poll",
        lambda: stack.query(f'credential_exporter_up{{tenant="{TENANT}"}} == 1'),
        30,
        stack.logs,
    )
    assert stack.alertmanager_alerts("EntraCredentialPollsFailing") == []

    graph.failing = Fault(503, {"error": {"code": "ServiceUnavailable", "message": "Service Unavailable"}})

    alert = stack.wait_for_alert("EntraCredentialPollsFailing", TENANT)
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"] == (
        f"Polls of Microsoft Graph for tenant {TENANT} have been failing for 30 minutes"
    )
    description = alert["annotations"]["description"]
    assert "(mostly with reason http_5xx)" in description
    assert "the numbers served are those of the last successful poll, at 20" in description
    # The last good numbers are still served, so the coverage itself is still known.
    assert stack.query(f'tenant:credential_mfa_registered_users:ratio{{tenant="{TENANT}"}}')


def test_admins_without_mfa_in_the_modern_report_reach_alertmanager(graph: AlwaysFailingGraph, tmp_path: Path) -> None:
    # The fake's 2,500 users: 25 admins (user 1, 101, ...), 8 of them without MFA (201, 501, ..., 2301).
    admins = [u for u in graph.users if u["isAdmin"] is True]
    without = [u for u in admins if not u["isMfaRegistered"]]
    assert (len(admins), len(without)) == (25, 8)
    with polled_and_monitored(graph, tmp_path, "--source", "details", "--graph.rate-limit", "off") as stack:
        alert = stack.wait_for_alert("EntraAdminsWithoutMFA", TENANT)
        assert alert["labels"] == {"alertname": "EntraAdminsWithoutMFA", "severity": "critical", "tenant": TENANT}
        assert alert["annotations"]["summary"] == f"8 admins of tenant {TENANT} are not registered for MFA"
        assert alert["annotations"]["description"].endswith("; 68% of its admins are.")
        # Every admin registers: the recorded count reaches 0 and Prometheus stops sending the alert.
        for user in without:
            user["isMfaRegistered"] = True
        wait_until(
            "no admin without MFA",
            lambda: stack.query(f'tenant:credential_admins_without_mfa:count{{tenant="{TENANT}"}} == 0'),
            30,
            stack.logs,
        )
        wait_until("the alert resolved", lambda: stack.prometheus_alerts("EntraAdminsWithoutMFA") == [], 30)


def test_stale_data_reaches_alertmanager_silenced_by_the_failing_polls_that_explain_it(
    graph: AlwaysFailingGraph, tmp_path: Path
) -> None:
    # The shipped rule as it is: it reads the exporter's own interval (the test's 2 s), not a fixed 45 minutes.
    with polled_and_monitored(graph, tmp_path) as stack:
        wait_until("a successful poll", lambda: stack.query(f'credential_exporter_up{{tenant="{TENANT}"}} == 1'), 30)
        graph.failing = Fault(503, {"error": {"code": "ServiceUnavailable", "message": "Service Unavailable"}})

        stale = stack.wait_for_alert("EntraCredentialDataStale", TENANT)
        assert stale["labels"]["severity"] == "warning"
        assert stale["annotations"]["summary"].startswith(f"Registration numbers of tenant {TENANT} are ")
        # Alertmanager's example configuration inhibits it while the polls-failing alert explains it.
        failing = stack.wait_for_alert("EntraCredentialPollsFailing", TENANT)
        wait_until(
            "the stale alert inhibited",
            lambda: [a for a in stack.alertmanager_alerts("EntraCredentialDataStale") if a["status"]["inhibitedBy"]],
            30,
            stack.logs,
        )
        (stale,) = stack.alertmanager_alerts("EntraCredentialDataStale")
        assert stale["status"]["state"] == "suppressed"
        assert stale["status"]["inhibitedBy"] == [failing["fingerprint"]]


def test_admins_who_could_still_be_phished_and_a_phishing_resistant_drop_reach_alertmanager(
    graph: AlwaysFailingGraph, tmp_path: Path
) -> None:
    # The fake's 25 admins: 4 have a FIDO2 key (301, 1001, 1701, 2401); every 7th of its 2,500 users has one.
    admins = [u for u in graph.users if u["isAdmin"] is True]
    phishable = [u for u in admins if "fido2" not in u["methodsRegistered"]]
    assert (len(admins), len(phishable)) == (25, 21)
    generator = rules_generator()  # as a user sets the allowance: 18 admins may still be phishable
    rules = generator.customise(RULES.read_text(), generator.JOB, generator.RUNBOOK_URL, 0, phishable_allowance=18)
    flags = ("--source", "details", "--graph.rate-limit", "off")
    with polled_and_monitored(graph, tmp_path, *flags, rules=rules) as stack:
        alert = stack.wait_for_alert("EntraAdminsWithoutPhishingResistantMFA", TENANT)
        assert alert["labels"] == {
            "alertname": "EntraAdminsWithoutPhishingResistantMFA",
            "severity": "warning",
            "tenant": TENANT,
        }
        assert alert["annotations"]["summary"] == f"21 admins of tenant {TENANT} have no phishing-resistant MFA method"
        assert alert["annotations"]["description"].endswith(" 16% of its admins have one.")
        share = stack.query(f'tenant:credential_phishing_resistant_users:ratio{{tenant="{TENANT}"}}')
        assert float(share[0]["value"][1]) == pytest.approx(358 / 2500)

        # Three admins register a passkey: 18 are left, within the allowance, and the alert resolves.
        for user in phishable[:3]:
            user["methodsRegistered"] = [*user["methodsRegistered"], "passKeyDeviceBound"]
        wait_until(
            "18 admins without phishing-resistant MFA",
            lambda: stack.query(
                f'tenant:credential_admins_without_phishing_resistant_mfa:count{{tenant="{TENANT}"}} == 18'
            ),
            30,
            stack.logs,
        )
        wait_until(
            "the alert resolved",
            lambda: stack.prometheus_alerts("EntraAdminsWithoutPhishingResistantMFA") == [],
            30,
            stack.logs,
        )

        # Every key and passkey is removed: the share drops from 14.44% to 0.
        for user in graph.users:
            user["methodsRegistered"] = [
                m for m in user["methodsRegistered"] if m not in ("fido2", "passKeyDeviceBound")
            ]
        drop = stack.wait_for_alert("EntraPhishingResistantShareDropped", TENANT)
        assert drop["labels"]["severity"] == "warning"
        assert drop["annotations"]["summary"] == (
            f"Phishing-resistant MFA of tenant {TENANT} dropped by more than 5 percentage points in 24 h, to 0%"
        )
        assert drop["annotations"]["description"].startswith(
            f"14.44% of the users of tenant {TENANT} had a phishing-resistant MFA method at the highest point of"
            " the last 24 hours; now 0% do."
        )
        assert drop["annotations"]["runbook_url"].endswith("docs/runbook.md#entraphishingresistantsharedropped")
