"""Sending to a checked destination: the connection goes to the checked address, the typed
host is what the receiver and TLS see, redirects are not followed."""

import datetime
import ssl

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from messaging.lib import outbound, outbound_http
from messaging.lib.outbound import allow_list, check_url
from tests.fakes.http_receiver import Receiver

LOOPBACK_ALLOWED = allow_list(["127.0.0.1"])


@pytest.fixture
def names(monkeypatch):
    """Every made-up name resolves to 127.0.0.1 through the guard's resolver only: the
    system resolver knows none of them, so a second look-up would fail the request."""
    asked = []

    def fake_resolve(host, port):
        asked.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(outbound, "resolve", fake_resolve)
    return asked


def test_the_post_goes_to_the_checked_address_with_the_typed_host(names):
    with Receiver.start() as rx:
        destination = check_url(f"http://Receiver.Test:{rx.port}/inbox?x=1", LOOPBACK_ALLOWED)
        response = outbound_http.post(destination, b'{"a":1}', {"Content-Type": "application/json"}, 5)
        assert response.status_code == 200 and response.content == b"ok"
        response.close()
    (request,) = rx.requests
    assert request["path"] == "/inbox?x=1" and request["json"] == {"a": 1}
    assert request["headers"]["host"] == f"receiver.test:{rx.port}"
    assert names == ["receiver.test"]


def test_a_host_header_among_the_headers_cannot_replace_the_typed_host(names):
    with Receiver.start() as rx:
        destination = check_url(f"http://receiver.test:{rx.port}/", LOOPBACK_ALLOWED)
        outbound_http.post(destination, b"{}", {"host": "evil.test"}, 5).close()
    assert rx.requests[0]["headers"]["host"] == f"receiver.test:{rx.port}"


def test_a_redirect_is_not_followed(names):
    with Receiver.start() as rx:
        rx.script = [302]
        rx.redirect_to = rx.url + "/elsewhere"
        destination = check_url(f"http://receiver.test:{rx.port}/in", LOOPBACK_ALLOWED)
        response = outbound_http.post(destination, b"{}", {}, 5)
        assert response.status_code == 302 and response.headers["Location"] == rx.url + "/elsewhere"
        response.close()
    assert [r["path"] for r in rx.requests] == ["/in"]


def test_one_session_per_process_made_again_after_a_fork(monkeypatch):
    first, _ = outbound_http.session()
    assert outbound_http.session()[0] is first
    assert first.trust_env is False
    monkeypatch.setattr(outbound_http.os, "getpid", lambda: -1)  # as in a forked child
    assert outbound_http.session()[0] is not first


# --- https: SNI and the certificate are checked against the typed name ----------------------------


def _tls_files(tmp_path, name: str) -> tuple[str, str, str]:
    """A CA, and a certificate for ``name`` signed by it: (ca file, cert file, key file)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return tuple(str(p) for p in paths)


@pytest.fixture
def tls_receiver(tmp_path):
    ca_file, cert_file, key_file = _tls_files(tmp_path, "receiver.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    sni = []
    context.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)
    with Receiver.start(ssl_context=context) as rx:
        rx.sni = sni
        rx.ca_file = ca_file
        yield rx


def test_https_to_the_checked_address_presents_and_checks_the_typed_name(names, tls_receiver):
    rx = tls_receiver
    destination = check_url(f"https://receiver.test:{rx.port}/secure", LOOPBACK_ALLOWED)
    response = outbound_http.post(destination, b"{}", {}, 5, verify=rx.ca_file)
    assert response.status_code == 200
    response.close()
    assert rx.sni == ["receiver.test"]
    assert rx.requests[0]["headers"]["host"] == f"receiver.test:{rx.port}"


def test_https_refuses_a_certificate_for_another_name(names, tls_receiver):
    rx = tls_receiver
    # other.test resolves to the same address, but the certificate there is receiver.test's.
    destination = check_url(f"https://other.test:{rx.port}/secure", LOOPBACK_ALLOWED)
    with pytest.raises(requests.exceptions.SSLError):
        outbound_http.post(destination, b"{}", {}, 5, verify=rx.ca_file)
    # The address itself is not the certificate's name either: the check is really made.
    by_address = check_url(f"https://127.0.0.1:{rx.port}/secure", LOOPBACK_ALLOWED)
    with pytest.raises(requests.exceptions.SSLError):
        outbound_http.post(by_address, b"{}", {}, 5, verify=rx.ca_file)
    assert rx.requests == []
