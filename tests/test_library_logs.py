"""What the libraries say follows --log.level and --log.format, and everything written is scrubbed.

The identity platform refusing connections makes urllib3 warn "Retrying (...)" before each retry; the poll
then fails with its own warning line. That one line is all a user should get for one failed poll."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter import logs
from exporter.values import Secret
from tests.fakegraph import FakeGraph
from tests.support import run_cli


@pytest.fixture
def gone(fake: FakeGraph) -> dict[str, str]:
    """The exporter's environment for a fake whose every connection is refused: urllib3 retries, then fails."""
    env = fake.env()
    fake.close()
    return env


def once(fake: FakeGraph, env: dict[str, str], *flags: str) -> tuple[int, list[str]]:
    result = run_cli("--once", "--graph.endpoint", fake.url, "--poll.timeout", "5s", *flags, env=env)
    return result.returncode, result.stderr.splitlines()


def log_lines(lines: list[str]) -> list[str]:
    """The log lines; --once also writes one plain summary line per failed tenant, for a person."""
    return [line for line in lines if not line.startswith("tenant ")]


def test_at_log_level_error_no_library_warning_is_written(fake: FakeGraph, gone: dict[str, str]) -> None:
    code, lines = once(fake, gone, "--log.level", "error")
    assert code == 1
    assert log_lines(lines) == [], lines  # urllib3 wrote "Retrying (...)" at warning level here


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_one_failed_poll_gives_one_warning_line_in_the_chosen_format(
    fake: FakeGraph, gone: dict[str, str], fmt: str
) -> None:
    code, lines = once(fake, gone, "--log.format", fmt)
    assert code == 1
    warnings = [line for line in log_lines(lines) if "warn" in line]
    assert len(warnings) == 1 and "poll failed" in warnings[0] and "Retrying" not in "".join(lines), lines
    if fmt == "json":
        assert json.loads(warnings[0])["reason"] == "network"


def test_at_debug_library_lines_are_written_in_the_chosen_format(fake: FakeGraph, gone: dict[str, str]) -> None:
    code, lines = once(fake, gone, "--log.level", "debug", "--log.format", "json")
    assert code == 1
    events = [json.loads(line) for line in log_lines(lines)]  # every line one JSON event
    assert any(event["logger"].startswith("urllib3") for event in events)
    assert not any(event["logger"].startswith("msal") for event in events)  # it echoes token answers


def test_the_once_summary_line_is_scrubbed(fake: FakeGraph, tmp_path: Path) -> None:
    # A secret that is also a word of the URL in the failure's detail: the summary printed it in clear.
    secret = "openid-configuration"
    env = fake.env(AZURE_CLIENT_SECRET=secret)
    fake.close()
    code, lines = once(fake, env)
    summary = [line for line in lines if line.startswith("tenant ")]
    assert code == 1 and len(summary) == 1
    assert secret not in "\n".join(lines) and "<redacted>" in summary[0]


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """logs.setup() rewires the process's logging: put back what pytest had."""
    root, hook = logging.getLogger(), threading.excepthook
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], threading.excepthook = handlers, hook
    root.setLevel(level)
    logging.captureWarnings(False)


def test_an_uncaught_exception_in_a_thread_is_one_scrubbed_log_line(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.setup("info", "logfmt", [Secret("hunter2-but-longer")])

    def fail() -> None:
        raise ValueError("bad answer hunter2-but-longer\nsecond line")

    thread = threading.Thread(target=fail, name="poller")
    thread.start()
    thread.join()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "thread=poller" in lines[0] and "level=error" in lines[0], lines
    assert "hunter2-but-longer" not in lines[0] and "<redacted>" in lines[0]
