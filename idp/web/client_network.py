"""Which network a request comes from: the key of every per-IP limit.

The client address is ``request.remote_addr``, which ``idp serve --proxy-hops N``
takes from the trusted part of ``X-Forwarded-For``. An IPv6 subscriber usually holds a
whole /64 and can pick any address in it, so per-IP limits count the /64; an IPv4
address (an IPv4-mapped IPv6 one included) counts as itself. One function, so that no
limit can be dodged by rotating addresses that another limit treats as one.
"""

from __future__ import annotations

import ipaddress

from flask import request


def network_of(ip: str) -> str:
    """The network ``ip`` stands for in per-IP limits (the raw text if it is no
    address, ``-`` if empty)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip or "-"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{addr}/64", strict=False))
    return str(addr)


def current() -> str:
    """The network of the current request's client."""
    return network_of(request.remote_addr or "")
