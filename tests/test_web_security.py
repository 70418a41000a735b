"""TLS, basic auth and headers from the web config file, on every endpoint; reloading it; the HTTP limits."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import trustme
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.web.routes import Endpoints, serve
from exporter.web.server import Limits
from tests.support import accepts_connections, exporter_process, write_config

PATHS = ("/metrics", "/healthz", "/readyz", "/")


def hashed(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()  # cost 4: fast tests, same code path


@dataclass
class Pki:
    """A server certificate, a CA for clients and one client certificate from it, and one from a stranger."""

    directory: Path
    ca: trustme.CA
    client_ca: trustme.CA
    ca_file: Path
    client_cert: tuple[str, str]
    stranger_cert: tuple[str, str]

    def issue_server(self, ca: trustme.CA, name: str = "server") -> None:
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.cert_chain_pems[0].write_to_path(str(self.directory / f"{name}.crt"))
        cert.private_key_pem.write_to_path(str(self.directory / f"{name}.key"))


def _client_files(directory: Path, ca: trustme.CA, name: str, san: str = "scraper@example.com") -> tuple[str, str]:
    cert = ca.issue_cert(san)
    cert.cert_chain_pems[0].write_to_path(str(directory / f"{name}.crt"))
    cert.private_key_pem.write_to_path(str(directory / f"{name}.key"))
    return str(directory / f"{name}.crt"), str(directory / f"{name}.key")


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca, client_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    pki = Pki(
        tmp_path,
        ca,
        client_ca,
        tmp_path / "ca.pem",
        _client_files(tmp_path, client_ca, "client"),
        _client_files(tmp_path, trustme.CA(), "stranger"),
    )
    pki.issue_server(ca)
    return pki


TLS = {"cert_file": "server.crt", "key_file": "server.key"}


def https(port: int, path: str = "/metrics") -> str:
    return f"https://127.0.0.1:{port}{path}"


# --- TLS ----------------------------------------------------------------------------------------------


def test_without_a_web_config_every_endpoint_is_open_plain_http(start: Any) -> None:
    port, _ = start()
    for path in PATHS:
        assert requests.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code == 200


def test_with_tls_every_endpoint_answers_over_https(start: Any, pki: Pki) -> None:
    port, _ = start(write_config(pki.directory / "web.yml", {"tls_server_config": TLS}))
    for path in PATHS:
        assert requests.get(https(port, path), verify=pki.ca_file, timeout=5).status_code == 200
    assert "tenant_total_users" in requests.get(https(port), verify=pki.ca_file, timeout=5).text


def test_with_tls_plain_http_gets_no_metrics(start: Any, pki: Pki) -> None:
    port, _ = start(write_config(pki.directory / "web.yml", {"tls_server_config": TLS}))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.0 400 ")
    assert b"HTTPS" in answer and b"tenant_total_users" not in answer


def test_min_version_tls13_refuses_a_tls12_client(start: Any, pki: Pki) -> None:
    port, _ = start(write_config(pki.directory / "web.yml", {"tls_server_config": {**TLS, "min_version": "TLS13"}}))
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        context.wrap_socket(sock, server_hostname="127.0.0.1")
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.3"


# --- basic auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_basic_auth_guards_every_endpoint(start: Any, pki: Pki, path: str) -> None:
    config = {"tls_server_config": TLS, "basic_auth_users": {"prometheus": hashed("right")}}
    port, _ = start(write_config(pki.directory / "web.yml", config))
    url = https(port, path)
    assert requests.get(url, auth=("prometheus", "right"), verify=pki.ca_file, timeout=5).status_code == 200
    for auth in (("prometheus", "wrong"), ("nobody", "right"), None):
        answer = requests.get(url, auth=auth, verify=pki.ca_file, timeout=5)
        assert answer.status_code == 401, auth
        assert answer.headers["WWW-Authenticate"].startswith("Basic ")
        assert "tenant_total_users" not in answer.text and "<table>" not in answer.text


@pytest.mark.parametrize(
    "header",
    ["Bearer abc", "Basic", "Basic !!!notbase64", "Basic bm9jb2xvbg==", "basic " + "A" * 5000],
)
def test_malformed_authorization_headers_are_refused(start: Any, tmp_path: Path, header: str) -> None:
    port, _ = start(write_config(tmp_path / "web.yml", {"basic_auth_users": {"u": hashed("p")}}))
    answer = requests.get(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": header}, timeout=5)
    assert answer.status_code == 401


def test_basic_auth_works_without_tls_too(start: Any, tmp_path: Path) -> None:
    port, _ = start(write_config(tmp_path / "web.yml", {"basic_auth_users": {"u": hashed("p")}}))
    url = f"http://127.0.0.1:{port}/metrics"
    assert requests.get(url, auth=("u", "p"), timeout=5).status_code == 200
    assert requests.get(url, timeout=5).status_code == 401


def test_a_successful_check_is_cached_and_a_failed_one_is_not(start: Any, tmp_path: Path) -> None:
    port, guard = start(write_config(tmp_path / "web.yml", {"basic_auth_users": {"u": hashed("p")}}))
    url = f"http://127.0.0.1:{port}/metrics"
    for _ in range(5):
        assert requests.get(url, auth=("u", "p"), timeout=5).status_code == 200
    assert guard.auth.bcrypt_checks == 1
    for _ in range(3):
        assert requests.get(url, auth=("u", "nope"), timeout=5).status_code == 401
    assert guard.auth.bcrypt_checks == 4
    # An unknown user is checked against a dummy hash: the same work, so timing does not reveal who exists.
    assert requests.get(url, auth=("nobody", "p"), timeout=5).status_code == 401
    assert guard.auth.bcrypt_checks == 5


def test_the_rate_limit_answers_429_beyond_its_burst(start: Any, tmp_path: Path) -> None:
    config = {
        "rate_limit": {"interval": "1h", "burst": 2},
        "http_server_config": {"headers": {"X-Frame-Options": "deny"}},
    }
    port, _ = start(write_config(tmp_path / "web.yml", config))
    answers = [requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["X-Frame-Options"] == "deny" and "tenant_total_users" not in answers[2].text


# --- client certificates ------------------------------------------------------------------------------


def test_a_required_client_certificate_must_come_from_the_client_ca(start: Any, pki: Pki) -> None:
    tls = {**TLS, "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "client-ca.pem"}
    port, _ = start(write_config(pki.directory / "web.yml", {"tls_server_config": tls}))
    good = requests.get(https(port), cert=pki.client_cert, verify=pki.ca_file, timeout=5)
    assert good.status_code == 200 and "tenant_total_users" in good.text
    for cert in (None, pki.stranger_cert):
        with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is one; TLS 1.3 may also reset
            requests.get(https(port), cert=cert, verify=pki.ca_file, timeout=5)


def test_allowed_sans_narrow_down_which_verified_client_certificates_get_in(start: Any, pki: Pki) -> None:
    tls = {
        **TLS,
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca_file": "client-ca.pem",
        "client_allowed_sans": ["scraper@example.com"],
    }
    port, _ = start(write_config(pki.directory / "web.yml", {"tls_server_config": tls}))
    assert requests.get(https(port), cert=pki.client_cert, verify=pki.ca_file, timeout=5).status_code == 200
    other = _client_files(pki.directory, pki.client_ca, "other", "other.example")  # the right CA, the wrong name
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(https(port), cert=other, verify=pki.ca_file, timeout=5)


def test_verify_client_cert_if_given_lets_clients_without_one_in(start: Any, pki: Pki) -> None:
    tls = {**TLS, "client_auth_type": "VerifyClientCertIfGiven", "client_ca_file": "client-ca.pem"}
    port, _ = start(write_config(pki.directory / "web.yml", {"tls_server_config": tls}))
    assert requests.get(https(port), verify=pki.ca_file, timeout=5).status_code == 200
    assert requests.get(https(port), cert=pki.client_cert, verify=pki.ca_file, timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(https(port), cert=pki.stranger_cert, verify=pki.ca_file, timeout=5)


# --- headers ------------------------------------------------------------------------------------------


def test_configured_headers_are_on_every_answer_even_refusals(start: Any, tmp_path: Path) -> None:
    headers = {"X-Frame-Options": "deny", "Content-Security-Policy": "default-src 'none'"}
    config = {"http_server_config": {"headers": headers}, "basic_auth_users": {"u": hashed("p")}}
    port, _ = start(write_config(tmp_path / "web.yml", config))
    base = f"http://127.0.0.1:{port}"
    for answer in (
        requests.get(base + "/metrics", auth=("u", "p"), timeout=5),
        requests.get(base + "/metrics", timeout=5),
        requests.get(base + "/nope", auth=("u", "p"), timeout=5),
        requests.post(base + "/metrics", timeout=5),
    ):
        assert answer.headers["X-Frame-Options"] == "deny", answer.status_code
        assert answer.headers["Content-Security-Policy"] == "default-src 'none'"


# --- reloading ----------------------------------------------------------------------------------------


def _served_issuer(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock, context.wrap_socket(sock) as tls:
        der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).issuer.rfc4514_string()


def test_a_rotated_certificate_is_served_to_the_next_connection_without_restart(start: Any, pki: Pki) -> None:
    port, _ = start(write_config(pki.directory / "web.yml", {"tls_server_config": TLS}))
    assert requests.get(https(port), verify=pki.ca_file, timeout=5).status_code == 200
    first_issuer = _served_issuer(port)
    new_ca = trustme.CA()
    new_ca_file = pki.directory / "new-ca.pem"
    new_ca.cert_pem.write_to_path(str(new_ca_file))
    pki.issue_server(new_ca)  # same file names, new contents: what a certificate manager does
    assert _served_issuer(port) != first_issuer
    assert requests.get(https(port), verify=new_ca_file, timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https(port), verify=pki.ca_file, timeout=5)


def test_changed_users_apply_to_the_next_request(start: Any, tmp_path: Path) -> None:
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {"u": hashed("old")}})
    port, _ = start(path)
    url = f"http://127.0.0.1:{port}/metrics"
    assert requests.get(url, auth=("u", "old"), timeout=5).status_code == 200
    write_config(path, {"basic_auth_users": {"u": hashed("new")}})
    assert requests.get(url, auth=("u", "new"), timeout=5).status_code == 200
    assert requests.get(url, auth=("u", "old"), timeout=5).status_code == 401  # cached success does not outlive it
    write_config(path, {})
    assert requests.get(url, timeout=5).status_code == 200


def test_a_broken_file_on_reload_is_ignored_with_one_log_line(
    start: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(tmp_path / "web.yml", {"basic_auth_users": {"u": hashed("p")}})
    port, _ = start(path)
    url = f"http://127.0.0.1:{port}/metrics"
    caplog.set_level(logging.INFO, logger="exporter")
    path.write_text("basic_auth_users: [this is: not valid\n")
    for _ in range(3):
        assert requests.get(url, auth=("u", "p"), timeout=5).status_code == 200  # the old config still guards
        assert requests.get(url, timeout=5).status_code == 401
    ignored = [r for r in caplog.records if "web config change ignored" in r.getMessage()]
    assert len(ignored) == 1
    assert "not valid YAML" in ignored[0].kv["problems"]  # type: ignore[attr-defined]
    write_config(path, {"basic_auth_users": {"v": hashed("q")}})
    assert requests.get(url, auth=("v", "q"), timeout=5).status_code == 200
    assert any("web config reloaded" in r.getMessage() for r in caplog.records)


def test_a_reload_cannot_switch_tls_off(start: Any, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config(pki.directory / "web.yml", {"tls_server_config": TLS})
    port, _ = start(path)
    write_config(path, {})
    assert requests.get(https(port), verify=pki.ca_file, timeout=5).status_code == 200
    assert any("TLS cannot be switched" in str(getattr(r, "kv", "")) for r in caplog.records)


def test_a_key_that_does_not_match_on_reload_keeps_the_old_certificate(start: Any, pki: Pki) -> None:
    path = write_config(pki.directory / "web.yml", {"tls_server_config": TLS})
    port, _ = start(path)
    new_ca = trustme.CA()
    new_cert = new_ca.issue_cert("127.0.0.1")
    new_cert.private_key_pem.write_to_path(str(pki.directory / "server.key"))  # half a rotation
    assert requests.get(https(port), verify=pki.ca_file, timeout=5).status_code == 200
    new_cert.cert_chain_pems[0].write_to_path(str(pki.directory / "server.crt"))  # and the other half
    new_ca_file = pki.directory / "new-ca.pem"
    new_ca.cert_pem.write_to_path(str(new_ca_file))
    assert requests.get(https(port), verify=new_ca_file, timeout=5).status_code == 200


# --- the HTTP surface ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"])
def test_only_get_and_head_are_allowed(start: Any, method: str) -> None:
    port, _ = start()
    answer = requests.request(method, f"http://127.0.0.1:{port}/metrics", data=b"x" * 10, timeout=5)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "GET, HEAD"
    assert "tenant_total_users" not in answer.text


def test_head_answers_without_a_body(start: Any) -> None:
    port, _ = start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = _read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: " in head and body == b""


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before it has read everything
            sock.sendall(data)
        return _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def test_an_overlong_request_line_gets_414(start: Any) -> None:
    port, _ = start()
    answer = _raw(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414 ")


def test_too_many_headers_get_431(start: Any) -> None:
    port, _ = start()
    headers = b"".join(b"X-%d: y\r\n" % i for i in range(101))
    assert _raw(port, b"GET /metrics HTTP/1.1\r\n" + headers + b"\r\n").startswith(b"HTTP/1.1 431 ")


def test_a_header_block_over_64_kib_gets_431(start: Any) -> None:
    port, _ = start()
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"y" * 1000) for i in range(70))
    assert _raw(port, b"GET /metrics HTTP/1.1\r\n" + headers + b"\r\n").startswith(b"HTTP/1.1 431 ")


def test_headers_just_within_the_limits_are_served(start: Any) -> None:
    port, _ = start()
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"y" * 500) for i in range(90))
    answer = _raw(port, b"GET /metrics HTTP/1.1\r\nConnection: close\r\n" + headers + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_pipelined_requests_on_one_connection_are_all_answered_in_order(start: Any) -> None:
    port, _ = start()
    requests_ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _raw(port, requests_ + b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 ") == 2 and answer.count(b"HTTP/1.1 404 ") == 1
    assert answer.index(b"ok\n") < answer.index(b"ready\n") < answer.index(b"not found\n")


def test_a_request_that_arrives_a_byte_at_a_time_is_answered(start: Any) -> None:
    port, _ = start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
            sock.send(bytes([byte]))  # the blank line that ends the head straddles several reads
            time.sleep(0.002)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"ok\n")


def test_a_request_with_a_body_is_not_read_as_the_next_request(start: Any) -> None:
    port, _ = start()
    smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
    answer = _raw(port, request + smuggled)
    assert answer.count(b"HTTP/1.1 ") == 1 and b"tenant_total_users" not in answer


def still_connected(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True  # nothing to read, and no end of file: the server still holds the connection
    finally:
        sock.setblocking(True)


def test_a_slow_client_neither_delays_a_concurrent_scrape_nor_stays_connected(start: Any) -> None:
    port, _ = start(limits=Limits(head_timeout=3.0))
    with socket.create_connection(("127.0.0.1", port), timeout=15) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # half a request, then nothing
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=15)
        assert answer.status_code == 200 and "tenant_total_users" in answer.text
        assert still_connected(slow)  # the scrape was answered while the slow client was still being waited for
        assert slow.recv(1) == b""  # and then it was disconnected, without an answer


def test_a_trickling_client_is_cut_at_the_deadline_even_while_it_sends(start: Any) -> None:
    port, _ = start(limits=Limits(head_timeout=1.0))
    with socket.create_connection(("127.0.0.1", port), timeout=15) as slow:
        for _ in range(100):  # 10 s at most; the server's deadline is 1 s
            try:
                slow.sendall(b"X")  # a byte every 0.1 s: each read is quick, the head never completes
            except OSError:
                break
            time.sleep(0.1)
            if not still_connected(slow):
                break
        else:
            pytest.fail("the trickling client was never disconnected")


def test_a_client_that_never_starts_tls_does_not_block_others(start: Any, pki: Pki) -> None:
    port, _ = start(write_config(pki.directory / "web.yml", {"tls_server_config": TLS}), Limits(head_timeout=3.0))
    with socket.create_connection(("127.0.0.1", port), timeout=15) as idle:
        assert requests.get(https(port), verify=pki.ca_file, timeout=15).status_code == 200
        assert still_connected(idle)
        assert idle.recv(1) == b""


# --- the real command line ------------------------------------------------------------------------------


def test_the_exporter_binary_serves_only_https_with_basic_auth_from_its_web_config(pki: Pki, tmp_path: Path) -> None:
    config = write_config(
        pki.directory / "web.yml", {"tls_server_config": TLS, "basic_auth_users": {"prometheus": hashed("right")}}
    )
    (pki.directory / "server.key").chmod(0o604)
    args = ["--demo", "--web.config.file", str(config)]
    with exporter_process(*args, log=tmp_path / "err", ready=accepts_connections) as (url, proc):
        port = int(url.rpartition(":")[2])
        for path in PATHS:
            assert requests.get(https(port, path), verify=pki.ca_file, timeout=5).status_code == 401
            answer = requests.get(https(port, path), auth=("prometheus", "right"), verify=pki.ca_file, timeout=5)
            assert answer.status_code == 200
        assert b"tenant_total_users" not in _raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    log = (tmp_path / "err").read_text()
    assert "tls=True" in log and "basic_auth=True" in log
    assert "server.key (-rw----r--)" in log and "readable by other users" in log


def test_basic_auth_without_tls_is_served_with_a_warning(tmp_path: Path) -> None:
    config = write_config(tmp_path / "web.yml", {"basic_auth_users": {"u": hashed("p")}})
    args = ["--demo", "--web.config.file", str(config)]
    with exporter_process(*args, log=tmp_path / "err", ready=accepts_connections) as (url, _proc):
        assert requests.get(f"{url}/metrics", auth=("u", "p"), timeout=5).status_code == 200
    warnings = [line for line in (tmp_path / "err").read_text().splitlines() if "without TLS" in line]
    assert len(warnings) == 1 and "level=warn" in warnings[0]


# --- hostile requests ---------------------------------------------------------------------------------------


def test_any_request_head_gets_an_http_answer_or_a_closed_connection_never_a_crash(
    app: Endpoints, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(app, "127.0.0.1", 0, None, Limits(head_timeout=2.0))
    port = int(server.server_address[1])
    caplog.set_level(logging.ERROR, logger="exporter")
    verbs = st.sampled_from([b"GET", b"HEAD", b"POST", b"G\x00T", b""])
    line = st.tuples(verbs, st.binary(max_size=40)).map(b"".join)
    heads = st.lists(line | st.binary(max_size=80), min_size=1, max_size=8).map(b"\r\n".join)

    @settings(max_examples=100, deadline=None)
    @given(heads)
    def check(head: bytes) -> None:
        answer = _raw(port, head + b"\r\n\r\n")
        assert answer == b"" or answer.startswith(b"HTTP/1."), answer[:80]
        assert b"tenant_total_users" not in answer or answer.startswith(b"HTTP/1.1 200 ")

    try:
        check()
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200  # still serving
    finally:
        server.shutdown()
        server.server_close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_answers_are_not_held_back_by_nagles_algorithm(app: Endpoints) -> None:
    """Headers and body leave in two writes: with Nagle on, every kept-alive scrape would wait ~40 ms for the
    client's delayed ACK (docs/benchmarks.md). Checked on the socket itself, not by timing."""
    server = serve(app, "127.0.0.1", 0, None, Limits(head_timeout=5.0))
    try:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.create_connection(listener.getsockname(), timeout=5)
            accepted, address = listener.accept()
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # the kernel's default
            worker = threading.Thread(target=server.finish_request, args=(accepted, address))
            worker.start()
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert client.recv(1024).startswith(b"HTTP/1.1 200 ")
            worker.join(timeout=5)  # finish_request leaves closing the socket to its caller
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            client.close()
            accepted.close()
    finally:
        server.shutdown()
        server.server_close()
