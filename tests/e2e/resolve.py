"""`--resolve HOST:ADDRESS` for the e2e scripts, like curl's: this process connects to ADDRESS whenever it means HOST.

URLs keep the public host name, so requests and the MLflow client send its Host header (MLflow accepts only its
allowed hosts), and cookies, redirects and the OIDC redirect URI stay those of that name, while the connections go
to an address no resolver knows, e.g. the pod of a test cluster that has no ingress yet.
An HTTP proxy from the environment would still resolve HOST itself, as curl's proxies do.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket


def host_and_address(value: str) -> tuple[str, str]:
    """argparse type of --resolve: HOST:ADDRESS, the address an IP (v6 too: only the first colon splits)."""
    host, _colon, address = value.partition(":")
    try:
        if host:
            return host.lower(), str(ipaddress.ip_address(address))
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected HOST:ADDRESS with an IP address, got {value!r}")


def resolve(host: str, address: str) -> None:
    """From now on getaddrinfo answers ADDRESS for HOST in this process: urllib3 (under requests and the MLflow
    client) looks every connection's host up through it, at call time."""
    original = socket.getaddrinfo

    def getaddrinfo(name, *args, **kwargs):
        if isinstance(name, str) and name.lower() == host:
            name = address
        return original(name, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
