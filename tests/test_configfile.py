"""The configuration file: one small YAML file per error case, and what the user is told about it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.config import Certificate, ClientSecret, Config, FederatedToken, ManagedIdentity
from exporter.errors import ConfigError
from exporter.values import RateLimit
from tests.support import FIXTURES, config_of, run_cli

CONFIGS = FIXTURES / "config"
ENV = {"FABRIKAM_SECRET": "not-a-real-secret-fabrikam"}


def load(name: str, *argv: str, env: dict[str, str] | None = None) -> Config:
    """Load a fixture the way main() does, with `argv` as the rest of the command line."""
    return config_of("--config.file", str(CONFIGS / name), *argv, env=ENV if env is None else env)


def problems(name: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(name)
    return caught.value.problems


def test_a_valid_file_gives_every_tenant_with_its_credential_and_the_options() -> None:
    config = load("valid.yaml")
    tenants = {t.name: t for t in config.tenants}
    assert list(tenants) == [
        "contoso",
        "fabrikam",
        "northwind",
        "adatum",
        "tailspin",
        "66666666-6666-6666-6666-666666666666",
    ]
    contoso = tenants["contoso"]
    assert contoso.tenant_id == "11111111-1111-1111-1111-111111111111"
    assert contoso.client_id == "aaaaaaaa-0000-0000-0000-000000000001"
    assert contoso.source == "legacy"
    assert isinstance(contoso.credential, ClientSecret)
    assert contoso.credential.secret.reveal() == "not-a-real-secret-contoso"  # read from the file, trimmed
    fabrikam = tenants["fabrikam"].credential
    assert isinstance(fabrikam, ClientSecret) and fabrikam.secret.reveal() == ENV["FABRIKAM_SECRET"]
    northwind = tenants["northwind"].credential
    assert isinstance(northwind, Certificate)
    assert northwind.path == CONFIGS / "secrets" / "contoso"  # relative to the file's folder
    assert northwind.send_chain and northwind.password and northwind.password.reveal() == "not-a-real-key-password"
    assert tenants["adatum"].credential == FederatedToken(CONFIGS / "secrets" / "contoso")
    assert tenants["tailspin"].credential == ManagedIdentity(None) and tenants["tailspin"].client_id is None
    unnamed = tenants["66666666-6666-6666-6666-666666666666"]  # the name defaults to the tenant ID
    assert unnamed.credential == ManagedIdentity("bbbbbbbb-0000-0000-0000-000000000006")
    assert config.graph_root == "https://graph.example.test"
    assert config.http_timeout == 20 and config.poll_interval == 600 and config.poll_timeout == 300
    assert config.poll_concurrency == 4
    assert config.global_rate_limit == RateLimit(100, 10.0)
    assert config.rate_limit is None  # YAML reads a bare `off` as false: it means off here
    assert config.page_size == 500 and config.max_pages == 20
    assert config.config_file == str(CONFIGS / "valid.yaml")


def test_flags_win_over_the_file() -> None:
    config = load("valid.yaml", "--poll.interval", "15m", "--graph.global-rate-limit", "off", "--poll.concurrency", "8")
    assert config.poll_interval == 900 and config.poll_concurrency == 8
    assert config.global_rate_limit is None
    assert config.poll_timeout == 300  # still the file's
    # A flag given with its default value still wins: what counts is that it was written.
    assert load("valid.yaml", "--poll.concurrency", "8").poll_concurrency == 8


@pytest.mark.parametrize(("flag", "value"), [("--tenant.name", "contoso"), ("--auth", "managed-identity")])
def test_single_tenant_flags_are_refused_with_a_file(flag: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load("valid.yaml", flag, value)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{flag}: only for one tenant from the environment")


def test_no_secret_shows_in_the_configuration_repr() -> None:
    config = load("valid.yaml")
    text = repr(config)
    for secret in ("not-a-real-secret-contoso", "not-a-real-key-password", ENV["FABRIKAM_SECRET"]):
        assert secret not in text
    assert len(config.secrets) == 3


ERRORS = [
    pytest.param("missing-client-id.yaml", ["tenants[0] 'contoso': client_id: missing"], id="missing-client-id"),
    pytest.param(
        "two-credentials.yaml",
        [
            "tenants[0] 'contoso': federated_token_file: give exactly one credential, "
            "not client_secret_file and federated_token_file"
        ],
        id="two-credentials",
    ),
    pytest.param("no-credential.yaml", ["tenants[0] 'contoso': credential: missing: give exactly one of"], id="none"),
    pytest.param("unknown-tenant-key.yaml", ["tenants[0] 'contoso': tenantid: unknown key"], id="unknown-tenant-key"),
    pytest.param("unknown-option.yaml", ["poll.intervall: unknown key (known: cloud,"], id="unknown-option"),
    pytest.param(
        "duplicate-name.yaml",
        ["tenants[1] 'contoso': name: 'contoso' is already used by tenants[0] 'contoso'"],
        id="duplicate-name",
    ),
    pytest.param(
        "duplicate-tenant-id.yaml",
        ["tenants[1] 'contoso-again': tenant_id: '11111111-aaaa-1111-1111-111111111111' is already used by tenants[0]"],
        id="duplicate-tenant-id-in-another-case",
    ),
    pytest.param(
        "unreadable-secret-file.yaml",
        ["tenants[0] 'contoso': client_secret_file: cannot read", "secrets/no-such-file"],
        id="unreadable-secret-file",
    ),
    pytest.param(
        "inline-secret.yaml",
        [
            "tenants[0] 'contoso': client_secret: secrets are never written in the file: use client_secret_file or "
            "client_secret_env"
        ],
        id="inline-secret",
    ),
    pytest.param(
        "secret-env-not-set.yaml",
        ["tenants[0] 'contoso': client_secret_env: the environment variable CONTOSO_SECRET_NOT_SET is not set"],
        id="secret-env-not-set",
    ),
    pytest.param(
        "bad-managed-identity.yaml",
        ["tenants[0] 'contoso': managed_identity: expected true (system-assigned) or {client_id: …}"],
        id="bad-managed-identity",
    ),
    pytest.param(
        "client-id-with-managed-identity.yaml",
        ["tenants[0] 'contoso': client_id: not used with managed_identity"],
        id="client-id-with-managed-identity",
    ),
    pytest.param(
        "password-without-certificate.yaml",
        ["tenants[0] 'contoso': certificate_password_file: only goes with certificate_path"],
        id="password-without-certificate",
    ),
    pytest.param("bad-source.yaml", ["tenants[0] 'contoso': source: 'magic' is not one of"], id="bad-source"),
    pytest.param(
        "bad-option-value.yaml",
        [
            "bad-option-value.yaml: poll.interval: '15 minutes' is not a duration",  # the file's key, not the flag
            "bad-option-value.yaml: poll.concurrency: expected a whole number, got str 'many'",
        ],
        id="bad-option-value",
    ),
    pytest.param("not-yaml.yaml", ["not-yaml.yaml: line 4, column 1: not valid YAML"], id="not-yaml"),
    pytest.param("no-tenants.yaml", ["no-tenants.yaml: tenants: missing"], id="no-tenants"),
    pytest.param(
        "short-secret.yaml",
        ["tenants[0] 'contoso': client_secret_file: shorter than 8 characters"],
        id="secret-too-short-to-scrub",
    ),
    pytest.param(
        "key-twice.yaml",
        ["key-twice.yaml: line 6, column 5: not valid YAML: the key 'client_secret_file' appears twice"],
        id="key-twice",
    ),
]


@pytest.mark.parametrize(("name", "messages"), ERRORS)
def test_a_bad_file_is_refused_naming_the_tenant_and_the_key(name: str, messages: list[str]) -> None:
    found = problems(name)
    for message in messages:
        assert any(message in problem for problem in found), (message, found)
    assert all(problem.startswith(str(CONFIGS / name) + ": ") for problem in found), found


def test_a_secret_pasted_where_a_variable_name_goes_is_not_echoed() -> None:
    found = problems("secret-in-env-key.yaml")
    assert any(
        "tenants[0] 'contoso': client_secret_env: expected the name of an environment variable" in p for p in found
    )
    assert "Xq7~not.a-real_secret9Zr2" not in "\n".join(found)


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    found = problems("many-problems.yaml")
    expected = [
        "graph.global_rate_limit: 'lots' is not a rate like 5/10s",
        "tenants[0] 'contoso': client_id: missing",
        "tenants[1] 'fabrikam': client_secret: secrets are never written in the file",
        "tenants[2] 'contoso': managed_identity: give exactly one credential",
    ]
    for message in expected:
        assert any(message in problem for problem in found), (message, found)
    assert "not-a-real-secret-inline" not in "\n".join(found)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("inline-secret.yaml", "tenants[0] 'contoso': client_secret: secrets are never written in the file"),
        ("two-credentials.yaml", "tenants[0] 'contoso': federated_token_file: give exactly one credential"),
        ("missing-client-id.yaml", "tenants[0] 'contoso': client_id: missing"),
    ],
)
def test_the_exporter_exits_2_on_a_bad_file_before_serving(name: str, message: str) -> None:
    result = run_cli("--config.file", str(CONFIGS / name))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert message in result.stderr
    assert "not-a-real-secret-inline" not in result.stderr


def test_an_unreadable_configuration_file_exits_2(tmp_path: Path) -> None:
    result = run_cli("--config.file", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert f"--config.file: cannot read {tmp_path / 'nope.yaml'}" in result.stderr


def test_without_a_file_the_environment_still_gives_one_tenant() -> None:
    env = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "not-a-real-secret"}
    config = config_of(env=env)
    assert [(t.name, t.tenant_id, t.client_id) for t in config.tenants] == [("t", "t", "c")]
    assert config.config_file is None


def test_a_certificate_password_may_come_from_an_environment_variable(tmp_path: Path) -> None:
    tenant = {
        "name": "northwind",
        "tenant_id": "33333333-3333-3333-3333-333333333333",
        "client_id": "aaaaaaaa-0000-0000-0000-000000000003",
        "certificate_path": str(CONFIGS / "secrets" / "contoso"),
        "certificate_password_env": "NORTHWIND_KEY_PASSWORD",
    }
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump({"tenants": [tenant]}))
    config = config_of("--config.file", str(path), env={"NORTHWIND_KEY_PASSWORD": "not-a-real-key-password"})
    (credential,) = [t.credential for t in config.tenants]
    assert isinstance(credential, Certificate) and credential.password is not None
    assert credential.password.reveal() == "not-a-real-key-password"
