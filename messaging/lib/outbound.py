"""The outbound-request guard: may the server send a request to a URL that a user typed?

Rules:
- A URL's host is read once and, when it is a name, resolved once (``resolve``, over
  ``getaddrinfo``). The request is refused (``AddressNotAllowed``, code
  ``address_not_allowed``) when the host is, or ANY of its addresses is, not a public
  unicast address: loopback, link-local (``169.254.169.254`` included), private, shared
  (``100.64.0.0/10``), multicast, unspecified, reserved or documentation ranges, and the
  IPv6 forms that carry one of those IPv4 addresses (IPv4-mapped ``::ffff:a.b.c.d``,
  NAT64 ``64:ff9b::a.b.c.d``, 6to4 ``2002::/16``, Teredo).
- Hosts are read as browsers and C libraries read them, so that no spelling slips
  through: ``2130706433``, ``0x7f000001``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are
  all 127.0.0.1; ``[::ffff:127.0.0.1]`` is that address too; names are compared in
  lower case without their trailing dot; a zone index (``%eth0``) is ignored.
- An allow list (``OUTBOUND_ALLOW_HOSTS``: host names, addresses or CIDR ranges, IPv4 or
  IPv6) lets an operator permit some, e.g. an OpenFn instance on the same network: an
  allowed name permits whatever it resolves to; otherwise each non-public address must
  be inside an allowed address or range.
- The caller connects to the address that was checked (``Destination.address``, the
  first the resolver gave): no second look-up between the check and the connection, so a
  name cannot answer a public address to the check and a private one to the connection.
- A name that does not resolve raises ``HostNotFound``; a host that is not a valid
  address or name (``999.1.1.1``, a scheme other than http/https) raises ``InvalidHost``.
  Every refusal is an ``OutboundRefused`` (a ``ValueError``) with a ``code``, a sentence
  for a person naming what was refused and the ``field`` the caller gave; domain code
  turns it into its own refusal (``messaging.lib`` does not know ``messaging.errors``).
- Pure: no Flask, no database; the only outside call is the resolver.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlencode, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALLOW_SETTING = "OUTBOUND_ALLOW_HOSTS"
_NUMBER_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


# --- refusals -------------------------------------------------------------------------------------


class OutboundRefused(ValueError):
    """A URL the server will not send to: ``code``, ``message`` (for a person, starting with
    the field's name), ``field`` and the ``reason`` alone (for a log or an attempt)."""

    code = "outbound_refused"

    def __init__(self, reason: str, *, field: str = "url", address: str | None = None):
        self.reason = reason
        self.field = field
        self.address = address
        self.message = f"{field}: {reason}"
        super().__init__(self.message)


class AddressNotAllowed(OutboundRefused):
    """The host is, or resolves to, an address that is not public and not allowed."""

    code = "address_not_allowed"


class HostNotFound(OutboundRefused):
    """The name does not resolve (now): nothing can be checked, nothing can be sent."""

    code = "host_not_found"


class InvalidHost(OutboundRefused):
    """Not an http(s) URL with a valid host."""

    code = "validation_error"


# --- the allow list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowList:
    """Host names and address ranges an operator allows although they are not public."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def allows_name(self, host: str) -> bool:
        return normalize_name(host) in self.names

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address]
        if address.version == 6 and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(candidate in network for candidate in candidates for network in self.networks)


def allow_list(entries: Iterable[str] | str | None) -> AllowList:
    """The allow list from the setting: a list of entries, or one comma-separated string.
    An entry is a CIDR range, an address (any spelling ``literal_address`` reads, with or
    without brackets) or else a host name."""
    if isinstance(entries, str):
        entries = entries.split(",")
    return _parse_allow_list(tuple(entry.strip().lower() for entry in entries or () if entry.strip()))


@functools.lru_cache(maxsize=16)
def _parse_allow_list(entries: tuple[str, ...]) -> AllowList:
    names, networks = set(), []
    for entry in entries:
        bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
        try:
            networks.append(ipaddress.ip_network(bare, strict=False))
            continue
        except ValueError:
            pass
        try:
            address = literal_address(bare)
        except InvalidHost:
            address = None
        if address is not None:
            networks.append(ipaddress.ip_network(address))
        else:
            names.add(normalize_name(entry))
    return AllowList(frozenset(names), tuple(networks))


# --- reading hosts --------------------------------------------------------------------------------


def normalize_name(host: str) -> str:
    """A host name as compared: lower case, without brackets or its trailing dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host[:-1] if host.endswith(".") else host


def literal_address(host: str) -> IPAddress | None:
    """The address a host spells out, or None for a name. IPv6 with or without brackets
    (a zone index is dropped); IPv4 in every form ``inet_aton`` reads: 1 to 4 parts, each
    decimal, octal (leading 0) or hex (0x), the last filling the remaining bytes. A host
    that ends in a number but is not a valid address raises ``InvalidHost`` (as browsers)."""
    host = normalize_name(host)
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise InvalidHost(f"{host} is not a valid IPv6 address.") from None
    parts = host.split(".")
    if not _NUMBER_PART.match(parts[-1]):
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if len(numbers) > 4 or None in numbers:
        raise InvalidHost(f"{host} is not a valid IPv4 address.")
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (4 - len(leading)):
        raise InvalidHost(f"{host} is not a valid IPv4 address.")
    value = last + sum(n << (8 * (3 - i)) for i, n in enumerate(leading))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str) -> int | None:
    try:
        if part.startswith("0x"):
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[str]:
    """The addresses of a host name, in the order the system prefers (``getaddrinfo``).
    Tests replace this function to make a name resolve where they want."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise HostNotFound(f"the host {host} was not found.") from None
    addresses: list[str] = []
    for family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        if family in (socket.AF_INET, socket.AF_INET6) and address not in addresses:
            addresses.append(address)
    return addresses


# --- public or not --------------------------------------------------------------------------------


def why_not_public(address: IPAddress) -> str | None:
    """What kind of non-public address this is ("a loopback address"), or None when it is a
    public unicast address. IPv6 forms that carry an IPv4 address are judged by it too."""
    carried = carried_ipv4(address)
    if carried is not None and (address.ipv4_mapped or address in NAT64):
        return _kind_of(carried)  # only a way to spell the IPv4 address: that decides
    if carried is not None and _kind_of(carried):
        return _kind_of(carried)
    return _kind_of(address)


def carried_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64, 6to4, Teredo client)."""
    if address.version == 4:
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address.teredo[1] if address.teredo else None


def _kind_of(address: IPAddress) -> str | None:
    checks = (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "a non-public address"),
    )
    return next((kind for refused, kind in checks if refused), None)


# --- the check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """Where a checked URL's request goes: connect to ``address``, say ``host_header``."""

    scheme: str
    host: str  # canonical: lower-case ASCII name, or the address's usual spelling
    port: int
    host_header: str
    target: str  # path and query
    address: str  # the checked address the connection is made to
    is_name: bool  # False when the URL spelled out an address

    def with_query(self, params: dict) -> Destination:
        """The same destination with ``params`` added to its query (None: unchanged)."""
        if not params:
            return self
        joiner = "&" if "?" in self.target else "?"
        return replace(self, target=self.target + joiner + urlencode(params))

    @property
    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host."""
        shown = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{shown}:{self.port}{self.target}"

    @property
    def server_name(self) -> str | None:
        """The name TLS sends (SNI) and checks the certificate against, when there is one."""
        return self.host if self.is_name else None


def check_url(url: str, allowed: AllowList, *, field: str = "url") -> Destination:
    """Read, resolve and check a URL; its ``Destination``, or an ``OutboundRefused``."""
    try:
        parts = urlsplit(url)
        explicit_port = parts.port
    except ValueError:
        raise InvalidHost("is not a valid URL.", field=field) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidHost("must start with http:// or https://.", field=field)
    if not parts.hostname:
        raise InvalidHost("must name a host, e.g. https://example.org/inbox.", field=field)
    port = explicit_port or DEFAULT_PORTS[scheme]
    try:
        literal = literal_address(parts.hostname)
        host = str(literal) if literal else _ascii_name(parts.hostname)
    except OutboundRefused as exc:
        raise type(exc)(exc.reason, field=field) from None
    if literal is not None:
        # An IPv4-mapped IPv6 address is that IPv4 address: check it and connect to it.
        addresses = [getattr(literal, "ipv4_mapped", None) or literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a) for a in resolve(host, port)]
        except OutboundRefused as exc:
            raise type(exc)(exc.reason, field=field) from None
        if not addresses:
            raise HostNotFound(f"the host {host} was not found.", field=field)
    if literal is None and allowed.allows_name(host):
        pass  # the operator allowed this name, whatever it resolves to
    else:
        _refuse_non_public(host if literal is None else None, addresses, allowed, field)
    shown_host = f"[{host}]" if ":" in host else host
    return Destination(
        scheme=scheme,
        host=host,
        port=port,
        host_header=shown_host if explicit_port is None else f"{shown_host}:{explicit_port}",
        target=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        address=str(addresses[0]),
        is_name=literal is None,
    )


def _ascii_name(hostname: str) -> str:
    name = normalize_name(hostname)
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidHost(f"{name} is not a valid host name.") from None


def _refuse_non_public(name: str | None, addresses: list[IPAddress], allowed: AllowList, field: str) -> None:
    for address in addresses:
        kind = why_not_public(address)
        if kind is None or allowed.allows_address(address):
            continue
        where = f"{name} resolves to" if name else "points at"
        carried = carried_ipv4(address)
        shown = f"{address}, carrying {carried}" if carried is not None else str(address)
        raise AddressNotAllowed(
            f"{where} {kind} ({shown}); the server does not send to internal addresses "
            f"unless its operator allows them ({ALLOW_SETTING}).",
            field=field,
            address=str(address),
        )
