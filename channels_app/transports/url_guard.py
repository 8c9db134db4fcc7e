"""The SSRF guard of the HTTP transport: which URLs and addresses webhooks may reach.

A URL must be ``https`` without credentials, with a port a receiver can listen on, and its
host's every address must be public unicast. An IPv6 address that carries an IPv4 address
is judged by the IPv4 address it reaches:

- IPv4-mapped ``::ffff:a.b.c.d`` and NAT64 ``64:ff9b::a.b.c.d`` (the well-known prefix,
  RFC 6052: a DNS64 resolver on an IPv6-only host hands these out for IPv4-only receivers,
  and the translator connects to ``a.b.c.d``) are unwrapped and the IPv4 address checked;
- 6to4 ``2002:AABB:CCDD::/48`` reaches the IPv4 host ``AA.BB.CC.DD`` through a relay: it is
  allowed only when that IPv4 address is public (whatever Python's own table says of
  ``2002::/16``, which changed between versions);
- Teredo ``2001::/32`` and the local-use NAT64 prefix ``64:ff9b:1::/48`` are refused
  outright: the first hides its client address (XORed) behind a relay chosen by the
  network, the second leads to a translator of the operator's own with no fixed mapping,
  so neither says where the connection ends up.

``channels_app.transports.http`` applies the guard when an endpoint is saved and again
when each connection is made, to the very address it connects to.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

#: Cloud metadata services, refused whatever else the address looks like.
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"),
                                ipaddress.ip_address("fd00:ec2::254")})
LOCAL_NAMES = ("localhost", "localhost.localdomain")
REFUSED_ADDRESS = ("The endpoint's host resolves to a loopback, private, link-local or other "
                   "internal address, which webhooks may not reach.")

NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")
TEREDO = ipaddress.ip_network("2001::/32")


class UrlRefused(ValueError):
    """A webhook URL the guard refuses; the message says why (never a resolved address)."""


def address_allowed(address: str) -> bool:
    """Whether ``address`` (an IP literal) is a public unicast address webhooks may reach.

    An IPv6 address embedding an IPv4 one is judged by the IPv4 address (see the module
    docstring); Teredo and local-use NAT64 addresses are never allowed.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        if ip in TEREDO or ip in NAT64_LOCAL_USE:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    if ip in METADATA_ADDRESSES:
        return False
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
                or ip.is_unspecified or ip.is_reserved or getattr(ip, "is_site_local", False)
                or not ip.is_global)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or well-known NAT64 address leads to."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def url_check(url: str, *, allow_private: bool, resolve: bool = True) -> None:
    """Raise ``UrlRefused`` for a URL webhooks may not be sent to.

    Refused: a scheme other than https (http too with ``allow_private``), credentials in
    the URL, no host, a port outside 1-65535 (port 0 included, whatever ``allow_private``
    says); unless ``allow_private``: a local name, an address literal that is not public,
    or a name whose resolved addresses include one (``resolve=False`` skips resolving; a
    name that does not resolve now is accepted, and checked again at every send).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"Not a valid URL: {exc}.") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise UrlRefused("The URL must start with https://" if not allow_private
                         else "The URL must start with https:// or http://")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("The URL must not contain a user name or password; use the "
                         "endpoint's secret to authenticate requests.")
    host = parts.hostname
    if not host:
        raise UrlRefused("The URL has no host.")
    if port == 0:
        raise UrlRefused("The URL's port 0 is not a port a receiver can listen on; give a "
                         "port from 1 to 65535, or none for 443.")
    if allow_private:
        return
    if host.rstrip(".").lower() in LOCAL_NAMES or host.rstrip(".").lower().endswith(
            ".localhost"):
        raise UrlRefused(REFUSED_ADDRESS)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if not address_allowed(host):
            raise UrlRefused(REFUSED_ADDRESS)
        return
    if resolve:
        try:
            addresses = resolve_host(host, port or 443)
        except OSError:
            return  # not resolvable now: checked again at every send
        if not all(address_allowed(address) for _, address in addresses):
            raise UrlRefused(REFUSED_ADDRESS)


def resolve_host(host: str, port: int) -> list[tuple[int, str]]:
    """Every (family, address) of ``host``; raises OSError (socket.gaierror) if none."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys((family, sockaddr[0]) for family, _, _, _, sockaddr in infos))
