#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_client_scope
short_description: Ensure an OpenID Connect client scope in a Keycloak realm
version_added: 0.1.0
description:
  - Creates, updates or deletes a client scope of protocol C(openid-connect), found by name.
  - Does not manage the scope's protocol mappers (Keycloak ignores them in a client-scope update); use
    M(mlops.mlflow.keycloak_group_mapper) for those.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  name:
    description: Name of the client scope; also the scope value clients request.
    type: str
    required: true
  description:
    description: Description of the client scope. Left as it is when omitted.
    type: str
  include_in_token_scope:
    description: List the scope in the C(scope) claim of access tokens.
    type: bool
    default: true
  state:
    description: Whether the client scope should exist.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Ensure the groups client scope
  mlops.mlflow.keycloak_client_scope:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    name: groups
    description: Group membership of the user
"""

RETURN = r"""
client_scope:
  description: The client scope after the run (without its mappers); empty when absent.
  returned: always
  type: dict
  sample:
    id: 0f1c3b9e-7d8a-4a52-9a6b-2f4d6c1e8b70
    name: groups
    protocol: openid-connect
    attributes:
      include.in.token.scope: "true"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    bool_string,
    keycloak_argument_spec,
    keycloak_module_kwargs,
    managed_view,
)


def desired_scope(params):
    desired = {
        "name": params["name"],
        "protocol": "openid-connect",
        "attributes": {"include.in.token.scope": bool_string(params["include_in_token_scope"])},
    }
    if params["description"] is not None:
        desired["description"] = params["description"]
    return desired


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(
            name=dict(type="str", required=True),
            description=dict(type="str"),
            include_in_token_scope=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        **keycloak_module_kwargs(),
    )
    params = module.params
    desired = desired_scope(params)
    api = KeycloakApi(module)
    api.require_realm()
    current = api.find_client_scope(params["name"])
    if current is not None:
        current.pop("protocolMappers", None)

    scopes_path = api.realm_path("client-scopes")

    if params["state"] == "absent":
        changed = api.delete(scopes_path, current)
        module.exit_json(changed=changed, client_scope={}, diff=dict(before=managed_view(current, desired), after={}))

    if current is not None and current.get("protocol") != "openid-connect":
        module.fail_json(msg="Client scope '%s' exists with protocol %s, not openid-connect" % (
            params["name"], current.get("protocol")))

    def reread():
        created = api.find_client_scope(params["name"])
        created.pop("protocolMappers", None)
        return created

    changed, after = api.converge(scopes_path, current, desired, reread)
    module.exit_json(
        changed=changed,
        client_scope=after,
        diff=dict(before=managed_view(current, desired), after=managed_view(after, desired)),
    )


if __name__ == "__main__":
    main()
