# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every mlops.mlflow.keycloak_* module (plugins/module_utils/_keycloak.py).
    DOCUMENTATION = r"""
options:
  auth_keycloak_url:
    description:
      - Base URL of Keycloak, for example V(https://keycloak.example.com) or V(http://127.0.0.1:8080).
      - The admin REST API is reached below it, at C(/admin/realms/...).
    type: str
    required: true
  auth_realm:
    description: Realm in which the admin logs in.
    type: str
    default: master
  realm:
    description: Realm the module works in.
    type: str
    required: true
  auth_username:
    description:
      - Admin user name (password grant). Requires O(auth_password).
      - Mutually exclusive with O(auth_client_secret).
    type: str
  auth_password:
    description: Password of O(auth_username).
    type: str
  auth_client_id:
    description:
      - Client used to log in. With O(auth_client_secret), a confidential client with a service account
        that holds the realm-management roles (client credentials grant).
    type: str
    default: admin-cli
  auth_client_secret:
    description:
      - Secret of O(auth_client_id) (client credentials grant).
      - Mutually exclusive with O(auth_username).
    type: str
  validate_certs:
    description:
      - Verify Keycloak's TLS certificate, against the certificate authorities that Python's C(ssl) module trusts on
        the host that runs the module (the system's, or those of the E(SSL_CERT_FILE) and E(SSL_CERT_DIR) environment
        variables).
    type: bool
    default: true
  connection_timeout:
    description: Seconds to wait for each answer of Keycloak before failing.
    type: int
    default: 10
notes:
  - Failures are reported in one line that names the cause (credentials refused, server unreachable,
    missing realm) without a traceback.
"""
