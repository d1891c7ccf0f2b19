#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_oidc_client
short_description: Converge a confidential OpenID Connect client in Keycloak and read its secret back
version_added: 0.1.0
description:
  - Ensures a confidential C(openid-connect) client (client secret authentication, implicit flow off), found by its
    C(clientId), with the given redirect URIs, web origins, PKCE method, flows and default client scopes.
  - The client is updated in place, never deleted and recreated, so its secret and the sessions of its users survive.
  - The client secret is read back as it is. It changes only when O(rotate_secret=true).
  - The secret is returned only when O(return_secret=true), in RV(client_secret); set C(no_log) on such a task.
    It never appears in RV(client) or in the diff.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  client_id:
    description: C(clientId) of the client, the value applications send as C(client_id).
    type: str
    required: true
  name:
    description: Display name of the client. Left as it is when omitted.
    type: str
  description:
    description: Description of the client. Left as it is when omitted.
    type: str
  redirect_uris:
    description:
      - Exact redirect URIs the client may use (avoid wildcards). The client gets exactly this list.
      - Left as it is when omitted.
    type: list
    elements: str
  web_origins:
    description:
      - Origins allowed for CORS requests. The client gets exactly this list.
      - Left as it is when omitted.
    type: list
    elements: str
  standard_flow:
    description: Enable the authorization code flow.
    type: bool
    default: true
  direct_access_grants:
    description: Enable the resource owner password grant (direct access grants).
    type: bool
    default: false
  pkce_method:
    description: PKCE code challenge method the client must use; V(none) does not require PKCE.
    type: str
    choices: [S256, plain, none]
    default: S256
  default_client_scopes:
    description:
      - Client scopes that must be default client scopes of the client (moved from the optional scopes if needed).
      - Other default client scopes of the client (Keycloak's realm defaults such as C(profile), C(email),
        C(basic)) are kept.
      - Each scope must exist in the realm.
    type: list
    elements: str
    default: []
  rotate_secret:
    description: Generate a new client secret. Every application that uses the old one stops working.
    type: bool
    default: false
  return_secret:
    description: Return the client secret in RV(client_secret). Use C(no_log) on the task.
    type: bool
    default: false
  state:
    description:
      - Whether the client should exist.
      - V(absent) deletes the client; a later V(present) creates a new one with a new secret.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Converge the MLflow client and read its secret
  mlops.mlflow.keycloak_oidc_client:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    client_id: mlflow
    redirect_uris:
      - https://mlflow.example.com/callback
    web_origins:
      - https://mlflow.example.com
    default_client_scopes: [profile, email, groups]
    return_secret: true
  register: mlflow_client
  no_log: true

- name: Delete the MLflow client
  mlops.mlflow.keycloak_oidc_client:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    client_id: mlflow
    state: absent
"""

RETURN = r"""
client:
  description: The client after the run (what it would be, in check mode), without its secret; empty when absent.
  returned: always
  type: dict
  sample:
    id: 2b7e1c4e-6a0f-4d59-8c3b-0e9a7d5f1c22
    clientId: mlflow
    publicClient: false
    redirectUris: [https://mlflow.example.com/callback]
    attributes:
      pkce.code.challenge.method: S256
default_client_scopes:
  description: Names of the client's default client scopes after the run.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [acr, basic, email, groups, profile, roles, web-origins]
secret_rotated:
  description: Whether a new client secret was generated (or would be, in check mode).
  returned: when O(state=present)
  type: bool
  sample: false
client_secret:
  description:
    - The client secret.
    - Empty in check mode when the client does not exist yet.
  returned: when O(return_secret=true) and O(state=present)
  type: str
  sample: vZ3r0...
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    keycloak_argument_spec,
    keycloak_module_kwargs,
    managed_view,
    without_secrets,
)


def desired_client(params):
    """The managed part of the client representation."""
    desired = {
        "clientId": params["client_id"],
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "bearerOnly": False,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": params["standard_flow"],
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": params["direct_access_grants"],
        "attributes": {"pkce.code.challenge.method": "" if params["pkce_method"] == "none" else params["pkce_method"]},
    }
    for option, key in (
        ("name", "name"),
        ("description", "description"),
        ("redirect_uris", "redirectUris"),
        ("web_origins", "webOrigins"),
    ):
        if params[option] is not None:
            desired[key] = params[option]
    return desired


class ClientConverger:
    def __init__(self, module, api):
        self.module = module
        self.api = api
        self.params = module.params
        self.check_mode = module.check_mode

    def client_path(self, client, *parts):
        return self.api.realm_path("clients", client["id"], *parts)

    def realm_scopes(self):
        """Realm client scopes by name; fails naming any requested scope that does not exist."""
        scopes = {scope["name"]: scope for scope in self.api.request("GET", self.api.realm_path("client-scopes")) or []}
        missing = [name for name in self.params["default_client_scopes"] if name not in scopes]
        if missing:
            self.module.fail_json(
                msg="Client scope(s) %s do not exist in realm '%s'" % (", ".join(missing), self.api.realm)
            )
        return scopes

    def scope_names(self, client, kind):
        if client is None:
            return []
        return sorted(scope["name"] for scope in self.api.request("GET", self.client_path(client, kind)) or [])

    def converge_scopes(self, client, scopes, current_defaults):
        """Make the requested scopes default scopes of the client; return whether anything changed."""
        missing = [name for name in self.params["default_client_scopes"] if name not in current_defaults]
        if not missing or self.check_mode:
            return bool(missing)
        optional = self.scope_names(client, "optional-client-scopes")
        for name in missing:
            scope_id = scopes[name]["id"]
            # A scope cannot be default and optional at once.
            if name in optional:
                self.api.request("DELETE", self.client_path(client, "optional-client-scopes", scope_id))
            self.api.request("PUT", self.client_path(client, "default-client-scopes", scope_id))
        return True

    def read_secret(self, client, rotate):
        if client is None:
            return ""
        if rotate:
            if self.check_mode:
                return self.read_secret(client, False)
            answer = self.api.request("POST", self.client_path(client, "client-secret"))
        else:
            answer = self.api.request("GET", self.client_path(client, "client-secret"))
        return (answer or {}).get("value") or ""

    def present(self, desired):
        scopes = self.realm_scopes()
        current = self.api.find_client(self.params["client_id"])
        current_defaults = self.scope_names(current, "default-client-scopes")

        # Keycloak keeps the secret when an update carries none, and ignores mappers sent with it.
        client_changed, after = self.api.converge(
            self.api.realm_path("clients"),
            current,
            desired,
            lambda: self.api.find_client(self.params["client_id"]),
            keep_out=("secret", "protocolMappers"),
        )
        if current is None and not self.check_mode:
            current_defaults = self.scope_names(after, "default-client-scopes")

        scopes_changed = self.converge_scopes(after if "id" in after else None, scopes, current_defaults)
        defaults_after = sorted(set(current_defaults) | set(self.params["default_client_scopes"]))
        rotate = self.params["rotate_secret"] and current is not None
        secret = self.read_secret(after if "id" in after else None, rotate)

        result = dict(
            changed=client_changed or scopes_changed or rotate,
            client=without_secrets(after),
            default_client_scopes=defaults_after,
            secret_rotated=rotate,
            diff=dict(
                before=dict(managed_view(current, desired), defaultClientScopes=current_defaults if current else []),
                after=dict(managed_view(after, desired), defaultClientScopes=defaults_after),
            ),
        )
        if self.params["return_secret"]:
            result["client_secret"] = secret
        self.module.exit_json(**result)

    def absent(self, desired):
        current = self.api.find_client(self.params["client_id"])
        changed = self.api.delete(self.api.realm_path("clients"), current)
        self.module.exit_json(changed=changed, client={}, diff=dict(before=managed_view(current, desired), after={}))


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(
            client_id=dict(type="str", required=True),
            name=dict(type="str"),
            description=dict(type="str"),
            redirect_uris=dict(type="list", elements="str"),
            web_origins=dict(type="list", elements="str"),
            standard_flow=dict(type="bool", default=True),
            direct_access_grants=dict(type="bool", default=False),
            pkce_method=dict(type="str", choices=["S256", "plain", "none"], default="S256"),
            default_client_scopes=dict(type="list", elements="str", default=[]),
            rotate_secret=dict(type="bool", default=False, no_log=False),
            return_secret=dict(type="bool", default=False, no_log=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        **keycloak_module_kwargs(),
    )
    api = KeycloakApi(module)
    api.require_realm()
    converger = ClientConverger(module, api)
    desired = desired_client(module.params)
    if module.params["state"] == "absent":
        converger.absent(desired)
    converger.present(desired)


if __name__ == "__main__":
    main()
