"""The address policy against server-side request forgery (OWASP): resolve a host, refuse internal addresses.

Pure functions: `address_refusal` judges one IP address, `check_addresses` a host's resolved addresses, and
`resolve` (the only one that looks anything up) asks the system resolver. A host is refused when ANY address it
resolves to is loopback, private, link-local, multicast, reserved, unspecified, shared (CGNAT) or otherwise not
global, including IPv4 addresses wrapped in IPv6 (IPv4-mapped, 6to4, Teredo, NAT64). Hosts in the allow-list
(names, addresses or networks; for labs and tests) skip the check. The fetcher connects only to the addresses
that were checked, so a second lookup cannot swap in another one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class PolicyRefusal(Exception):
    """A URL or address refused by the address policy (the check's status becomes `blocked`)."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv6 one (mapped, 6to4, Teredo client, NAT64), else None."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why this address may not be fetched from (e.g. 'private'), or None when it is a public unicast address."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        why = address_refusal(inner)
        return f"{why} (inside {ip.compressed})" if why else None
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
    )
    for name, hit in checks:
        if hit:
            return name
    return None if ip.is_global else "not global"


def parse_ip(text: str) -> IPAddress | None:
    """An IP address from text (brackets and an IPv6 zone dropped), or None for a host name."""
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts may be fetched: public addresses, plus the allow-listed hosts and networks."""

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())

    @classmethod
    def with_allowed(cls, hosts: Iterable[str] = ()) -> AddressPolicy:
        """A policy that lets through these host names, addresses or networks (`10.1.0.0/16`) as well."""
        names, nets = set(), []
        for h in hosts:
            h = h.strip().lower()
            if not h:
                continue
            if "/" in h:
                try:
                    nets.append(ipaddress.ip_network(h, strict=False))
                except ValueError:
                    raise ValueError(f"--allow-host: not a network: {h!r}") from None
            else:
                ip = parse_ip(h)
                names.add(ip.compressed if ip else h.rstrip("."))
        return cls(frozenset(names), tuple(nets))

    def host_allowed(self, host: str) -> bool:
        """Whether the host (name or address) is on the allow-list."""
        ip = parse_ip(host)
        key = ip.compressed if ip else host.lower().rstrip(".")
        if key in self.allow_hosts:
            return True
        return ip is not None and any(ip in net for net in self.allow_networks)

    def check_addresses(self, host: str, addresses: Sequence[str]) -> list[str]:
        """The addresses to connect to for `host`, or PolicyRefusal when any of them is refused (or none)."""
        if not addresses:
            raise PolicyRefusal(f"{host}: no address")
        allowed_host = self.host_allowed(host)
        for text in addresses:
            ip = parse_ip(text)
            if ip is None:
                raise PolicyRefusal(f"{host}: resolver returned a non-address {text!r}")
            if allowed_host or any(ip in net for net in self.allow_networks) or ip.compressed in self.allow_hosts:
                continue
            why = address_refusal(ip)
            if why:
                raise PolicyRefusal(f"{host} -> {ip.compressed}: {why} address refused")
        return list(addresses)

    def addresses_for(self, host: str, port: int, resolver: Resolver | None = None) -> list[str]:
        """Resolve `host` (an address literal is not looked up) and return its checked addresses."""
        ip = parse_ip(host)
        if ip is not None:
            return self.check_addresses(host, [ip.compressed])
        if any(c in host for c in "\x00/\\ ") or not host:
            raise PolicyRefusal(f"bad host name {host!r}")
        return self.check_addresses(host, (resolver or resolve)(host, port))


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (OSError when it has none)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]).split("%", 1)[0], None)
    return list(seen)
