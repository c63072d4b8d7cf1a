"""The outbound-request guard: every spelling of an internal address is refused, the allow
list lets an operator permit some, and the checked address is the one to connect to."""

import pytest

from messaging.lib import outbound
from messaging.lib.outbound import (
    AddressNotAllowed,
    HostNotFound,
    InvalidHost,
    allow_list,
    check_url,
    literal_address,
)

NOTHING_ALLOWED = allow_list([])


class FakeDns(dict):
    """Names to addresses (``dns["name"] = ["10.0.0.1"]``); ``asked`` lists the look-ups."""

    def __init__(self):
        super().__init__()
        self.asked: list[str] = []

    def __call__(self, host, port):
        self.asked.append(host)
        if host not in self:
            raise HostNotFound(f"the host {host} was not found.")
        return self[host]


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDns()
    monkeypatch.setattr(outbound, "resolve", fake)
    return fake


@pytest.mark.parametrize(
    ("url", "kind", "address"),
    [
        ("http://127.0.0.1/in", "loopback", "127.0.0.1"),
        ("http://127.0.0.2:8080/in", "loopback", "127.0.0.2"),
        ("http://2130706433/", "loopback", "127.0.0.1"),
        ("http://0x7f000001/", "loopback", "127.0.0.1"),
        ("http://0x7f.1/", "loopback", "127.0.0.1"),
        ("http://0177.0.0.1/", "loopback", "127.0.0.1"),
        ("http://127.1/", "loopback", "127.0.0.1"),
        ("http://127.0.0.1./", "loopback", "127.0.0.1"),
        ("http://[::1]/", "loopback", "::1"),
        ("http://[::ffff:127.0.0.1]/", "loopback", "127.0.0.1"),
        ("http://[2002:7f00:1::]/", "loopback", "2002:7f00:1::, carrying 127.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "link-local", "169.254.169.254"),
        ("http://[fe80::1]/", "link-local", "fe80::1"),
        ("http://[fe80::1%25eth0]/", "link-local", "fe80::1"),
        ("http://10.0.0.5/", "private", "10.0.0.5"),
        ("http://172.16.3.4/", "private", "172.16.3.4"),
        ("http://172.31.255.255/", "private", "172.31.255.255"),
        ("http://192.168.1.10/", "private", "192.168.1.10"),
        ("http://[fc00::1]/", "private", "fc00::1"),
        ("http://[64:ff9b::a00:5]/", "private", "64:ff9b::a00:5, carrying 10.0.0.5"),
        ("http://0.0.0.0/", "unspecified", "0.0.0.0"),
        ("http://0/", "unspecified", "0.0.0.0"),
        ("http://[::]/", "unspecified", "::"),
        ("http://224.0.0.1/", "multicast", "224.0.0.1"),
        ("http://[ff02::1]/", "multicast", "ff02::1"),
        ("http://240.0.0.1/", "reserved", "240.0.0.1"),
        ("http://100.64.0.1/", "non-public", "100.64.0.1"),
    ],
)
def test_internal_addresses_are_refused_in_every_spelling(url, kind, address):
    with pytest.raises(AddressNotAllowed) as refused:
        check_url(url, NOTHING_ALLOWED, field="target")
    error = refused.value
    assert error.code == "address_not_allowed" and error.field == "target"
    assert error.message.startswith("target: points at")
    assert f"{kind} address ({address})" in error.message
    assert "OUTBOUND_ALLOW_HOSTS" in error.message


def test_a_name_resolving_to_loopback_is_refused(dns):
    dns["receiver.test"] = ["127.0.0.1"]
    with pytest.raises(AddressNotAllowed) as refused:
        check_url("https://Receiver.Test./inbox", NOTHING_ALLOWED)
    assert "receiver.test resolves to a loopback address (127.0.0.1)" in refused.value.message
    assert refused.value.address == "127.0.0.1"


def test_localhost_is_refused_by_the_system_resolver():
    with pytest.raises(AddressNotAllowed, match="localhost resolves to a loopback address"):
        check_url("http://localhost:8000/", NOTHING_ALLOWED)


def test_one_internal_address_among_public_ones_is_enough_to_refuse(dns):
    dns["mixed.test"] = ["93.184.216.34", "2606:2800:220:1::1", "10.1.2.3"]
    with pytest.raises(AddressNotAllowed, match=r"private address \(10\.1\.2\.3\)"):
        check_url("http://mixed.test/", NOTHING_ALLOWED)


@pytest.mark.parametrize(
    "url",
    ["http://8.8.8.8/", "https://[2606:4700::1111]:8443/x", "http://[::ffff:8.8.8.8]/", "http://134744072/"],
)
def test_public_addresses_are_allowed(url):
    destination = check_url(url, NOTHING_ALLOWED)
    assert destination.address in ("8.8.8.8", "2606:4700::1111")


def test_a_public_name_gives_its_checked_address_and_how_to_reach_it(dns):
    dns["inbox.test"] = ["93.184.216.34", "2606:2800:220:1::1"]
    destination = check_url("https://Inbox.Test:8443/in/box?x=1#frag", NOTHING_ALLOWED)
    assert destination.address == "93.184.216.34"
    assert destination.pinned_url == "https://93.184.216.34:8443/in/box?x=1"
    assert destination.host_header == "inbox.test:8443"
    assert destination.server_name == "inbox.test"
    assert dns.asked == ["inbox.test"]  # resolved once

    dns["six.test"] = ["2606:2800:220:1::1"]
    six = check_url("http://six.test", NOTHING_ALLOWED)
    assert six.pinned_url == "http://[2606:2800:220:1::1]:80/" and six.host_header == "six.test"


def test_an_address_in_the_url_is_not_resolved_and_has_no_tls_name(dns):
    destination = check_url("https://134744072/x", NOTHING_ALLOWED)
    assert destination.address == "8.8.8.8" and destination.host_header == "8.8.8.8"
    assert destination.server_name is None
    assert dns.asked == []


def test_the_allow_list_permits_one_address(dns):
    allowed = allow_list(["127.0.0.1"])
    assert check_url("http://127.0.0.1:9/in", allowed).address == "127.0.0.1"
    assert check_url("http://2130706433:9/in", allowed).address == "127.0.0.1"
    assert check_url("http://[::ffff:127.0.0.1]:9/in", allowed).address == "127.0.0.1"
    dns["receiver.test"] = ["127.0.0.1"]
    assert check_url("http://receiver.test:9/in", allowed).address == "127.0.0.1"
    for refused in ("http://127.0.0.2/", "http://[::1]/", "http://10.0.0.1/"):
        with pytest.raises(AddressNotAllowed):
            check_url(refused, allowed)


def test_the_allow_list_permits_one_range():
    allowed = allow_list("10.20.0.0/16, fd00::/8")
    assert check_url("http://10.20.3.4/", allowed).address == "10.20.3.4"
    assert check_url("http://[fd12::5]/", allowed).address == "fd12::5"
    for refused in ("http://10.21.0.1/", "http://[fc00::1]/", "http://127.0.0.1/"):
        with pytest.raises(AddressNotAllowed):
            check_url(refused, allowed)


def test_the_allow_list_permits_one_host_name_whatever_it_resolves_to(dns):
    dns["openfn.lan"] = ["10.0.0.5"]
    dns["other.lan"] = ["10.0.0.5"]
    allowed = allow_list(["OpenFn.lan.", "[::1]"])
    assert check_url("http://openfn.lan/inbox", allowed).address == "10.0.0.5"
    assert check_url("http://openfn.lan./inbox", allowed).address == "10.0.0.5"
    assert check_url("http://[::1]/", allowed).address == "::1"
    with pytest.raises(AddressNotAllowed):
        check_url("http://other.lan/", allowed)  # same address, name not allowed


def test_allow_list_entries_are_read_as_ranges_addresses_or_names():
    parsed = allow_list(" 127.0.0.1 , 10.0.0.0/8,, [::1], 2130706434, openfn.lan., 192.168.1.7/24 ")
    assert parsed.names == frozenset({"openfn.lan"})
    assert [str(n) for n in parsed.networks] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
        "127.0.0.2/32",
        "192.168.1.0/24",
    ]
    assert allow_list(None) == allow_list("") == allow_list([]) == NOTHING_ALLOWED


def test_a_name_that_does_not_resolve_is_host_not_found(dns):
    with pytest.raises(HostNotFound) as missing:
        check_url("http://nowhere.test/", NOTHING_ALLOWED, field="url")
    assert missing.value.code == "host_not_found" and missing.value.message.startswith("url: ")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://8.8.8.8/",
        "http:///path",
        "http://999.1.1.1/",
        "http://1.2.3.4.5/",
        "http://1.2.3.256/",
        "http://[::1",
    ],
)
def test_what_is_not_an_http_url_with_a_valid_host_is_invalid(url):
    with pytest.raises(InvalidHost) as refused:
        check_url(url, NOTHING_ALLOWED)
    assert refused.value.code == "validation_error"


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("10.0.0.5.", "10.0.0.5"),
        ("[::1]", "::1"),
        ("example.org", None),
        ("1.example", None),
    ],
)
def test_literal_addresses_are_read_in_every_form_libc_accepts(host, address):
    found = literal_address(host)
    assert (str(found) if found else None) == address
