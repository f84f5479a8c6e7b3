"""Refusing metrics addresses that point at a node's or cloud's metadata service.

Owns the rule, applied to ``spec.analysis.prometheus.address`` as written (the CRD carries the same
rule in CEL, see ``rollout.kube.crd``): no user:password part; no well-known metadata host
(``metadata.google.internal``, ``100.100.100.200``, ``fd00:ec2::254``...); no link-local
(169.254.0.0/16, fe80::/10) or unspecified address; and numeric hosts only in canonical form (four
decimal numbers, or a bracketed IPv6 address that is not IPv4-mapped), because a resolver also reads
``2852039166`` or ``0xa9.0xfe.0xa9.0xfe`` as 169.254.169.254. Pure: it never resolves names (a DNS
name that resolves to such an address is the daemon's to refuse when it connects), so it is a first
line of defence, not the only one.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

METADATA_HOSTS = (
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
)
METADATA_ADDRESSES = ("100.100.100.200", "fd00:ec2::254")
LINK_LOCAL = ("169.254.0.0/16", "fe80::/10")
# What inet_aton would read as an IPv4 address: 1-4 dot-separated decimal, octal or hex numbers.
NUMERIC_HOST = r"^(0[xX][0-9a-fA-F]*|[0-9]+)(\.(0[xX][0-9a-fA-F]*|[0-9]+)){0,3}\.?$"
_NUMERIC = re.compile(NUMERIC_HOST)
_CANONICAL_V4 = re.compile(
    r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}"
)


def forbidden_address(url: str) -> str | None:
    """Why ``url`` must not be a metrics address, or None when it may be."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError as e:
        return f"not a valid URL: {e}"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user or password (credentials belong in the daemon's settings)"
    if not host:
        return "names no host"
    name = host.rstrip(".").lower()
    if name in METADATA_HOSTS:
        return f"{name} is a cloud metadata service, never a metrics endpoint"
    if ":" in name:  # a bracketed IPv6 literal
        try:
            v6 = ipaddress.IPv6Address(name)
        except ValueError:
            return f"{host} is not a valid IPv6 address"
        if v6.ipv4_mapped is not None:
            return f"{host} is an IPv4-mapped IPv6 address; write the IPv4 address itself"
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = v6
    elif _NUMERIC.fullmatch(host):
        if not _CANONICAL_V4.fullmatch(host):
            return f"{host} is a numeric host in a non-canonical form; write an IPv4 address as four decimal numbers"
        address = ipaddress.IPv4Address(host)
    else:
        return None
    if str(address) in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata service, never a metrics endpoint"
    if any(address in ipaddress.ip_network(net) for net in LINK_LOCAL):
        return f"{address} is link-local ({', '.join(LINK_LOCAL)}: node and cloud metadata services)"
    if address.is_unspecified:
        return f"{address} is the unspecified address"
    return None
