"""The status page, opened in a real browser (headless Chromium): is it working, and if not, why.

Chromium renders what the exporter serves, under the page's own Content-Security-Policy, so a style the
policy blocked or a script would show here and not in a look at the HTML text. Set UPDATE_SCREENSHOTS=1
to write the screenshots of docs/ from this run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from exporter.app import Exporter
from exporter.web.routes import Endpoints, serve
from exporter.web.status import CONTENT_SECURITY_POLICY
from tests.fakegraph import FakeGraph, Fault, legacy_payload
from tests.support import (
    ROOT,
    SECRET_ENV,
    config_of,
    exporter_process,
    get,
    make_exporter,
    serve_tenants,
    tenant_entry,
    tenant_id,
    wait_for,
)

DOCS = ROOT / "docs"
PNG = b"\x89PNG\r\n\x1a\n"


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":  # CI installs it: a missing browser there is a broken CI, not a skip
            pytest.fail("chromium is not installed")
        pytest.skip("chromium is not installed")
    return path


def browse(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on `url`, with its console messages on stderr; nothing reaches the network."""
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            f"--user-data-dir={profile}",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )


def dom(url: str, profile: Path) -> str:
    result = browse(url, profile, "--dump-dom")
    # Chromium logs each CSP refusal on its console: the page's own style must pass the page's own policy.
    assert "Content Security Policy" not in result.stderr, result.stderr
    return result.stdout


def screenshot(url: str, profile: Path, path: Path, width: int, height: int) -> bytes:
    browse(url, profile, f"--screenshot={path}", f"--window-size={width},{height}", "--hide-scrollbars")
    data = path.read_bytes()
    assert data.startswith(PNG)
    assert int.from_bytes(data[16:20], "big") == width  # the IHDR width: the page was laid out at that width
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copyfile(path, DOCS / path.name)
    return data


@pytest.fixture
def two_tenants(fake: FakeGraph, tmp_path: Path) -> Iterator[tuple[str, Exporter]]:
    """An exporter serving `contoso` (details report, polls fine) and `fabrikam`, whose report is refused, with
    the client secret echoed in the very value Graph sent: the page must show why, and not the secret."""
    serve_tenants(fake, [2])
    fake.legacy_by_tenant[tenant_id(2)] = legacy_payload(fake.client_secret, {"registered": 1})  # type: ignore[arg-type]
    config = tmp_path / "tenants.yaml"
    tenants = [{**tenant_entry(1), "name": "contoso", "source": "details"}, {**tenant_entry(2), "name": "fabrikam"}]
    config.write_text(yaml.safe_dump({"source": "legacy", "tenants": tenants}))
    env = {SECRET_ENV: fake.client_secret, "AZURE_AUTHORITY_HOST": fake.url}
    argv = ("--config.file", str(config), "--graph.endpoint", fake.url, "--poll.interval", "15m")
    exporter = Exporter(config_of(*argv, "--graph.rate-limit", "off", env=env))
    exporter.poller.start()
    server = serve(
        Endpoints.of(exporter, exporter.poller.alive, exporter.poller.first_round_done.is_set), "127.0.0.1", 0
    )
    try:
        wait_for(exporter.poller.first_round_done.is_set)
        yield f"http://127.0.0.1:{server.server_address[1]}/", exporter
    finally:
        server.shutdown()
        server.server_close()
        exporter.poller.close()


def row(page: str, tenant: str) -> str:
    start = page.index(f'<td data-label="Tenant">{tenant}</td>')
    return page[start : page.index("</tr>", start)]


def test_the_page_shows_a_working_tenant_and_why_the_other_fails(
    two_tenants: tuple[str, Exporter], fake: FakeGraph, tmp_path: Path
) -> None:
    url, exporter = two_tenants
    page = dom(url, tmp_path / "profile")
    ok = row(page, "contoso")
    report = next(job for job in exporter.poller.jobs if job.name == "contoso").status.report
    assert report is not None and (share := report.phishing_resistant_share()) is not None
    assert f'data-label="Phishing-resistant" class="n">{100 * share:.1f}%' in ok  # the records' own share
    assert '<span class="ok">ok</span>' in ok and "details" in ok
    assert "2,500" in ok  # the fake's users
    assert 'data-label="SSPR" class="n">50.0%' in ok  # every other user of the fake
    assert 'data-label="Admins\' MFA" class="n">' in ok and "in 15 min" in ok and "s ago" in ok
    failing = row(page, "fabrikam")
    assert '<span class="failed">failed</span>' in failing and "never" in failing  # no success yet
    assert 'data-label="Phishing-resistant" class="n">—' in failing  # only the details report grades methods
    assert "<b>bad_response</b>: the total of users is '&lt;redacted&gt;', not a non-negative integer" in failing
    assert fake.client_secret not in page
    assert "polled from Microsoft Graph every 15m" in page and "Demo mode" not in page
    assert "<script" not in page


def test_the_page_sends_a_strict_content_security_policy(two_tenants: tuple[str, Exporter]) -> None:
    url, _ = two_tenants
    answer = requests.get(url, timeout=5)
    assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["style-src"].startswith("'sha256-")  # the page's one style sheet, nothing else
    assert "script-src" not in policy  # no script at all: default-src 'none' forbids them
    assert '<meta http-equiv="refresh"' in answer.text


def test_the_page_is_laid_out_for_a_desk_and_for_a_phone(two_tenants: tuple[str, Exporter], tmp_path: Path) -> None:
    url, _ = two_tenants
    wide = screenshot(url, tmp_path / "profile", tmp_path / "status-page.png", 1400, 520)
    narrow = screenshot(url, tmp_path / "profile", tmp_path / "status-page-phone.png", 390, 940)
    assert wide != narrow
    page = dom(url, tmp_path / "profile")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "@media (max-width:760px)" in page  # each tenant a card of label: value lines


def test_a_long_paging_shows_its_progress(fake: FakeGraph, tmp_path: Path) -> None:
    fake.users = fake.users[:1500]
    # The second page of three is held back: the poll is mid-paging for as long as the test looks.
    fake.fail("details", Fault(action="pass"), Fault(action="stall", seconds=60, status=500, body="late"))
    exporter = make_exporter(fake, source="details", page_size=500, rate_limit="off", poll_interval="15m")
    threading.Thread(target=exporter.poller.jobs[0].poll, args=(90,), daemon=True).start()
    server = serve(Endpoints.of(exporter, lambda: True, lambda: True), "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        wait_for(lambda: "pages read: 1 " in requests.get(url, timeout=5).text)
        assert "polling now · pages read: 1 · users: 500" in dom(url, tmp_path / "profile")
    finally:
        server.shutdown()
        server.server_close()


def test_demo_mode_says_so_in_a_banner_and_never_claims_graph(tmp_path: Path) -> None:
    with exporter_process("--demo") as (url, _proc):
        wait_for(lambda: get(url + "/readyz")[0] == 200)
        page = dom(url + "/", tmp_path / "profile")
    assert '<p class="banner">Demo mode: one simulated tenant with made-up numbers.' in page
    assert "polled from Microsoft Graph" not in page
    assert '<td data-label="Tenant">demo</td>' in row(page, "demo")
