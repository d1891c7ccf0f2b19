# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: loopback
short_description: Whether a host, or the host of a URL, is a loopback address
version_added: 0.1.0
description:
  - True for C(localhost), an IPv4 address in 127.0.0.0/8 and C(::1) (also written C([::1])).
  - A value with C(://) is read as a URL and its host is tested; its port is not looked at.
  - Any other name is not loopback, even one that resolves to a loopback address, since what a name resolves to
    can change.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
options:
  _input:
    description: A host name or address, or a URL.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse to listen on the network by accident
  ansible.builtin.assert:
    that: bind_address is mlops.mlflow.loopback or allow_network_exposure

- name: Plain HTTP only to this machine
  ansible.builtin.assert:
    that: public_url is match('https://') or public_url is mlops.mlflow.loopback
"""

RETURN = r"""
_value:
  description: Whether the host is a loopback address.
  type: bool
"""

import ipaddress
from urllib.parse import urlsplit


def loopback(value):
    """True when `value` (a host, or a URL) names this machine's loopback interface."""
    text = str(value)
    if "://" in text:
        # hostname is lower case and without brackets; it never raises, unlike .port.
        host = urlsplit(text).hostname or ""
    else:
        host = text.lower()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TestModule:
    def tests(self):
        return {"loopback": loopback}
