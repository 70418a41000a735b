"""Every credential kind, through the real MSAL, against the fake identity platform."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.fakegraph import MSI_HEADER, MSI_PATH, FakeGraph, thumbprints
from tests.support import make_exporter, value


def certificate_file(path: Path, password: bytes | None = None) -> x509.Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-credential-exporter")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path.write_bytes(key_pem + cert.public_bytes(serialization.Encoding.PEM))
    return cert


def without_secret(fake: FakeGraph, **extra: str) -> dict[str, str]:
    env = fake.env(**extra)
    del env["AZURE_CLIENT_SECRET"]
    return env


def test_a_certificate_signs_the_assertion_with_its_sha1_thumbprint(fake: FakeGraph, tmp_path: Path) -> None:
    fake.certificate = certificate_file(tmp_path / "app.pem")
    exporter = make_exporter(fake, env=without_secret(fake, AZURE_CLIENT_CERTIFICATE_PATH=str(tmp_path / "app.pem")))
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    (header,) = fake.assertion_headers
    assert header["x5t"].rstrip("=") == thumbprints(fake.certificate)[0]
    assert "x5c" not in header


def test_an_encrypted_key_with_the_chain_sent_uses_subject_name_issuer_auth(fake: FakeGraph, tmp_path: Path) -> None:
    fake.certificate = certificate_file(tmp_path / "app.pem", password=b"pem-pass-phrase")
    env = without_secret(
        fake,
        AZURE_CLIENT_CERTIFICATE_PATH=str(tmp_path / "app.pem"),
        AZURE_CLIENT_CERTIFICATE_PASSWORD="pem-pass-phrase",
        AZURE_CLIENT_SEND_CERTIFICATE_CHAIN="true",
    )
    exporter = make_exporter(fake, env=env)
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    (header,) = fake.assertion_headers
    assert header["x5t#S256"].rstrip("=") == thumbprints(fake.certificate)[1]
    assert header["x5c"]  # the chain travels with the assertion


def test_a_wrong_certificate_password_fails_with_auth_and_says_so(fake: FakeGraph, tmp_path: Path) -> None:
    fake.certificate = certificate_file(tmp_path / "app.pem", password=b"right")
    env = without_secret(
        fake, AZURE_CLIENT_CERTIFICATE_PATH=str(tmp_path / "app.pem"), AZURE_CLIENT_CERTIFICATE_PASSWORD="pw-Zq81!"
    )
    exporter = make_exporter(fake, env=env)
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "auth"
    assert "cannot set up the credential" in (status.last_detail or "")
    assert "pw-Zq81!" not in (status.last_detail or "")


def test_a_certificate_the_platform_does_not_know_is_refused(fake: FakeGraph, tmp_path: Path) -> None:
    fake.certificate = certificate_file(tmp_path / "registered.pem")
    certificate_file(tmp_path / "other.pem")
    exporter = make_exporter(fake, env=without_secret(fake, AZURE_CLIENT_CERTIFICATE_PATH=str(tmp_path / "other.pem")))
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "auth"
    assert "AADSTS700027" in (status.last_detail or "")


def test_the_federated_token_file_is_read_again_at_every_token_request(fake: FakeGraph, tmp_path: Path) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("an-expired-token")
    exporter = make_exporter(fake, env=without_secret(fake, AZURE_FEDERATED_TOKEN_FILE=str(token_file)))
    (status,) = exporter.poller.poll_round()
    assert status.last_reason == "auth"
    token_file.write_text(fake.federated_token + "\n")  # the kubelet rotated it
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail


@pytest.mark.parametrize("client_id", [None, "7d2a8c51-0000-4000-8000-00000000abcd"])
def test_a_managed_identity_gets_a_token_for_the_graph_root(
    fake: FakeGraph, monkeypatch: pytest.MonkeyPatch, client_id: str | None
) -> None:
    # The App Service flavour of managed identity: MSAL finds the endpoint in the environment.
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{fake.url}{MSI_PATH}")
    monkeypatch.setenv("IDENTITY_HEADER", MSI_HEADER)
    env = {"AZURE_TENANT_ID": fake.tenant_id, **({"AZURE_CLIENT_ID": client_id} if client_id else {})}
    exporter = make_exporter(fake, env=env, auth="managed-identity")
    (status,) = exporter.poller.poll_round()
    assert status.up, status.last_detail
    assert value(exporter, "tenant_total_users", tenant=fake.tenant_id) == 23123
    (request,) = fake.requests_to(MSI_PATH)
    assert f"resource={fake.url}".replace(":", "%3A").replace("/", "%2F") in request.path
    assert (f"client_id={client_id}" in request.path) == bool(client_id)
    assert fake.token_requests == 0  # no client credential ever went to the token endpoint
