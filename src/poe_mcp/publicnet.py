"""Whether a host is on the public internet, for every fetch whose URL comes from outside (a URL attachment,
an OAuth client's metadata document): such a URL must not make this server reach into the network it runs
in (SSRF), so a host that is, or resolves to, a loopback, private, link-local or other non-public address
is refused. Every address the name resolves to is checked, the IPv4 inside an IPv6 form too."""

from __future__ import annotations

import asyncio
import ipaddress
import socket


class HostRefused(ValueError):
    """The host may not be fetched from; the message says why."""


class HostUnresolvable(HostRefused):
    pass


class HostNotPublic(HostRefused):
    pass


# IPv6 ranges that carry an IPv4 address in their last 32 bits. Python's own tables disagree across
# versions on whether they are global, so they are unwrapped here and the IPv4 inside decides.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: DNS64 networks reach IPv4 hosts so
# Refused whatever they embed: local-use NAT64 (RFC 8215) translates to the operator's own network,
# IPv4-compatible `::a.b.c.d` (deprecated by RFC 4291, never in a real DNS answer; some stacks tunnel
# it to the IPv4 inside) and site-local `fec0::/10` (deprecated by RFC 3879, still routed inside sites).
_NEVER_PUBLIC_V6 = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
    ipaddress.IPv6Network("fec0::/10"),
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped (`::ffff:a.b.c.d`), 6to4 (`2002::/16`) or NAT64 address reaches."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _NEVER_PUBLIC_V6):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return is_public(str(embedded))
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int = 443) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order; HostUnresolvable when there are none."""
    try:
        if not host:
            raise OSError("no host")
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # UnicodeError: a label IDNA cannot encode
        raise HostUnresolvable(f"Cannot resolve the host {host!r}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise HostUnresolvable(f"Cannot resolve the host {host!r}")
    return addresses


async def public_addresses(host: str, port: int = 443) -> list[str]:
    """The addresses of `host`, every one of them public; else HostRefused saying which are not.

    A caller that connects should connect to one of these, not resolve the name again: a second answer
    could differ (DNS rebinding)."""
    addresses = await resolve(host, port)
    private = sorted(a for a in addresses if not is_public(a))
    if private:
        raise HostNotPublic(f"{host} resolves to a non-public address ({', '.join(private)})")
    return addresses
