#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: http_probe
short_description: Send one HTTP(S) request to a URL, optionally through a given address, and describe the answer
version_added: 0.1.0
description:
  - Sends one GET request to O(url) and returns its status, headers and, over https, the TLS version and the
    server certificate's names and expiry. Redirects are not followed, so a redirect itself can be checked.
  - With O(address), the connection goes to that address instead of the URL's host, while the Host header, the TLS
    server name (SNI) and the certificate check stay those of the URL's host. This checks an ingress controller
    before DNS points at it, or one of several behind a load balancer, as C(curl --resolve) does.
  - Fails only when no answer came (connection refused, timeout, TLS handshake or certificate check failed); any
    HTTP status is a result.
  - Never changes anything; runs the same in check mode.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
attributes:
  check_mode:
    description: Only reads; runs the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is nothing to show.
    support: none
options:
  url:
    description: C(http://) or C(https://) URL to GET.
    type: str
    required: true
  address:
    description: IP address or host name to connect to instead of the URL's host.
    type: str
  ca_path:
    description: PEM file of the CA certificates to trust for https. Default is the system's trusted CAs.
    type: path
  validate_certs:
    description: Verify the server's certificate and that it names the URL's host.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the connection and the answer.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Ask the ingress controller for MLflow's health page before DNS points at it
  mlops.mlflow.http_probe:
    url: https://mlflow.example.com/health
    address: 192.0.2.10
    ca_path: /etc/ssl/internal-ca.pem
  register: probe

- name: Check that plain http is redirected to https
  mlops.mlflow.http_probe:
    url: http://mlflow.example.com/
  register: redirect
  failed_when: redirect.status not in [301, 308] or not redirect.location.startswith('https://')
"""

RETURN = r"""
status:
  description: HTTP status code of the answer.
  returned: success
  type: int
  sample: 200
headers:
  description: Response headers, names in lower case.
  returned: success
  type: dict
  sample: {"strict-transport-security": "max-age=31536000", "content-type": "text/plain"}
location:
  description: The C(Location) header (empty when there is none).
  returned: success
  type: str
  sample: https://mlflow.example.com/
tls:
  description: The TLS session over https; empty over http.
  returned: success
  type: dict
  contains:
    version:
      description: Negotiated TLS version.
      type: str
      sample: TLSv1.3
    subject_alt_names:
      description: DNS names of the server certificate (only when the certificate was verified).
      type: list
      elements: str
      sample: [mlflow.example.com]
    not_after:
      description: Expiry of the server certificate, ISO 8601 UTC (only when the certificate was verified).
      type: str
      sample: "2027-12-01T00:00:00+00:00"
    days_left:
      description: Whole days until the certificate expires (only when the certificate was verified).
      type: int
      sample: 364
"""

import http.client
import socket
import ssl
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule


def _connection(parts, port, address, context, timeout):
    """An HTTP(S) connection to address (else the URL's host) that speaks to the URL's host: Host header, SNI and
    certificate name check stay the URL's."""
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    if address:
        connection._create_connection = lambda _target, *args, **kwargs: socket.create_connection(
            (address, port), *args, **kwargs)
    return connection


def _tls(connection):
    if not isinstance(connection, http.client.HTTPSConnection) or connection.sock is None:
        return {}
    found = {"version": connection.sock.version()}
    certificate = connection.sock.getpeercert()
    if certificate:
        not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(certificate["notAfter"]), timezone.utc)
        found.update(
            subject_alt_names=[value for kind, value in certificate.get("subjectAltName", ()) if kind == "DNS"],
            not_after=not_after.isoformat(),
            days_left=(not_after - datetime.now(timezone.utc)).days,
        )
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            address=dict(type="str"),
            ca_path=dict(type="path"),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    url = module.params["url"]
    try:
        parts = urlsplit(url)
        port = (443 if parts.scheme == "https" else 80) if parts.port is None else parts.port
    except ValueError as error:  # an unclosed IPv6 bracket, a port that is no number from 0 to 65535
        module.fail_json(msg=f"url {url!r} cannot be parsed: {error}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        module.fail_json(msg=f"url must be an http:// or https:// URL with a host, got {url!r}")

    context = ssl.create_default_context(cafile=module.params["ca_path"])
    if not module.params["validate_certs"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    connection = _connection(parts, port, module.params["address"], context, module.params["timeout"])
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    via = f" through {module.params['address']}" if module.params["address"] else ""
    try:
        connection.request("GET", path, headers={"User-Agent": "mlops.mlflow http_probe"})
        tls = _tls(connection)
        answer = connection.getresponse()
        answer.read()
    except ssl.SSLError as error:
        reason = getattr(error, "verify_message", None) or error.reason or error
        module.fail_json(msg=f"TLS with {parts.hostname}{via} failed: {reason}")
    except (OSError, http.client.HTTPException) as error:
        module.fail_json(msg=f"No answer from {url}{via}: {error}")
    finally:
        connection.close()
    headers = {name.lower(): value for name, value in answer.getheaders()}
    module.exit_json(changed=False, status=answer.status, headers=headers, location=headers.get("location", ""),
                     tls=tls)


if __name__ == "__main__":
    main()
