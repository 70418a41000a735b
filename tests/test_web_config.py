"""The web config file at start: every problem named, exit code 2, nothing served; and what it never reveals."""

from __future__ import annotations

import base64
from pathlib import Path

import bcrypt
import pytest
import trustme

from exporter.errors import ConfigError
from exporter.web.basicauth import BasicAuth
from exporter.web.throttle import TokenBucket
from exporter.web.tls import san_allowed
from exporter.web.webconfig import ThrottleLimit, read_web_config
from tests.support import run_cli

HASH = "$2b$04$C4n6Y1QJ8YbvxC0VZ1r0Ku2wq1iGk9x8Kx8y3yJ0uQ9Zp1l3yZr3W"  # shape only; never checked here


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    trustme.CA().issue_cert("localhost").private_key_pem.write_to_path(str(tmp_path / "other.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "garbage.crt").write_text("not a certificate\n")
    return tmp_path


TLS = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
BAD_FILES = [
    pytest.param("tls_server_config: [unclosed\n", ["not valid YAML"], id="bad-yaml"),
    pytest.param("- a list\n", ["must hold a YAML mapping"], id="not-a-mapping"),
    pytest.param("tls_config:\n  cert_file: server.crt\n", ["unknown key 'tls_config'"], id="unknown-top-key"),
    pytest.param("tls_server_config:\n  cert_file: server.crt\n", ["key_file is missing"], id="no-key"),
    pytest.param(
        "tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n",
        ["nope.crt is not a readable file"],
        id="missing-cert",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: garbage.crt\n  key_file: server.key\n",
        ["cannot load cert_file"],
        id="garbage-cert",
    ),
    pytest.param(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n",
        ["cannot load cert_file"],
        id="key-mismatch",
    ),
    pytest.param(
        TLS + "  client_auth_type: RequireAnyClientCert\n",
        ["RequireAnyClientCert", "RequireAndVerifyClientCert"],
        id="require-any",
    ),
    pytest.param(
        TLS + "  client_auth_type: Maybe\n", ["client_auth_type: 'Maybe' is not one of"], id="bad-client-auth"
    ),
    pytest.param(TLS + "  client_ca_file: ca.pem\n", ["never checks it"], id="ca-without-client-auth"),
    pytest.param(TLS + "  min_version: TLS14\n", ["min_version: 'TLS14'"], id="bad-version"),
    pytest.param(
        TLS + "  client_allowed_sans: [a]\n",
        ["client_allowed_sans needs client_auth_type RequireAndVerifyClientCert"],
        id="sans-without-client-certificates",
    ),
    pytest.param("rate_limit:\n  interval: soon\n  burst: 5\n", ["rate_limit: interval: 'soon'"], id="bad-interval"),
    pytest.param("rate_limit:\n  interval: 1s\n", ["burst: must be at least 1"], id="no-burst"),
    pytest.param("rate_limit:\n  interval: 1s\n  burst: -2\n", ["burst: must be a whole number"], id="bad-burst"),
    pytest.param(
        "http_server_config:\n  headers:\n    Server: nginx\n", ["'Server' cannot be configured"], id="bad-header"
    ),
    pytest.param(
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        ["X-Frame-Options: 'allow'"],
        id="bad-header-value",
    ),
    pytest.param("basic_auth_users:\n  alice: hunter2\n", ["alice: the password must be a bcrypt hash"], id="plain-pw"),
]


@pytest.mark.parametrize(("text", "messages"), BAD_FILES)
def test_an_invalid_web_config_names_the_problem_and_exits_2(certs: Path, text: str, messages: list[str]) -> None:
    path = certs / "web.yml"
    path.write_text(text)
    result = run_cli("--demo", "--web.listen-address", "127.0.0.1:0", "--web.config.file", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "--web.config.file" in result.stderr
    for message in messages:
        assert message in result.stderr


def test_a_user_named_twice_is_refused_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  alice: {HASH}\n  alice: {HASH}\n")
    with pytest.raises(ConfigError) as caught:
        read_web_config(path)
    (problem,) = caught.value.problems
    assert "line 3, column 3: not valid YAML: the key 'alice' appears twice" in problem


def test_a_missing_web_config_file_is_a_configuration_error() -> None:
    result = run_cli("--demo", "--web.config.file", "/nonexistent/web.yml")
    assert result.returncode == 2
    assert "--web.config.file: cannot read /nonexistent/web.yml" in result.stderr


def test_web_config_problems_are_reported_with_the_other_configuration_problems(certs: Path) -> None:
    path = certs / "web.yml"
    path.write_text("tls_server_config:\n  cert_file: nope.crt\n  min_version: TLS9\nbasic_auth_users:\n  a: b\n")
    result = run_cli("--poll.interval", "soon", "--web.config.file", str(path), env={})
    assert result.returncode == 2
    for name in ("--poll.interval", "AZURE_TENANT_ID", "nope.crt", "key_file is missing", "TLS9", "a: the password"):
        assert name in result.stderr


def test_a_pasted_password_is_never_echoed_back(certs: Path) -> None:
    path = certs / "web.yml"
    path.write_text("basic_auth_users:\n  alice: correct-horse-battery-staple\n")
    with pytest.raises(ConfigError) as caught:
        read_web_config(path)
    assert "correct-horse" not in str(caught.value)
    result = run_cli("--demo", "--web.config.file", str(path))
    assert result.returncode == 2 and "correct-horse" not in result.stderr


def test_relative_paths_are_relative_to_the_web_config_file(certs: Path) -> None:
    path = certs / "web.yml"
    path.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    config = read_web_config(path)
    assert config.tls is not None and config.tls.cert_file == certs / "server.crt"
    assert config.context is not None


def test_an_empty_file_means_plain_http_without_authentication(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("")
    config = read_web_config(path)
    assert config.tls is None and not config.users and config.headers == ()


def test_the_repr_of_a_web_config_shows_no_hash(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  alice: '{HASH}'\n")
    config = read_web_config(path)
    assert "alice" in config.users
    assert HASH not in repr(config) and HASH[10:30] not in repr(config.users)


@pytest.mark.parametrize("prefix", ["$2y$", "$2a$", "$2b$"])
def test_every_bcrypt_variant_htpasswd_and_others_write_is_accepted(tmp_path: Path, prefix: str) -> None:
    hashed = prefix + bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()[4:]
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  alice: '{hashed}'\n")
    users = read_web_config(path).users
    credentials = "Basic " + base64.b64encode(b"alice:secret").decode()
    assert BasicAuth().check(credentials, users)
    assert not BasicAuth().check("Basic " + base64.b64encode(b"alice:Secret").decode(), users)


def test_allowed_sans_compare_ip_addresses_as_addresses() -> None:
    peer = {"subjectAltName": (("DNS", "scraper.example"), ("IP Address", "2001:DB8:0:0:0:0:0:1"))}
    assert san_allowed(peer, ("2001:db8::1",))
    assert san_allowed(peer, ("scraper.example",))
    assert not san_allowed(peer, ("other.example", "2001:db8::2"))
    assert not san_allowed({}, ("scraper.example",))


def test_a_rate_limit_interval_of_zero_turns_it_off(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("rate_limit:\n  interval: 0s\n  burst: 0\n")
    assert read_web_config(path).rate_limit is None
    path.write_text("rate_limit:\n  interval: 500ms\n  burst: 3\n")
    assert read_web_config(path).rate_limit == ThrottleLimit(0.5, 3)


def test_the_token_bucket_allows_a_burst_then_one_request_per_interval() -> None:
    now = [0.0]
    bucket = TokenBucket(interval=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    now[0] += 1.9
    assert not bucket.allow()
    now[0] += 0.1
    assert bucket.allow() and not bucket.allow()
    now[0] += 100
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]  # never more than the burst
