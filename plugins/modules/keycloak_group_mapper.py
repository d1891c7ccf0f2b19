#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_group_mapper
short_description: Put a user's groups into a token claim, on a Keycloak client scope or client
version_added: 0.1.0
description:
  - Ensures a protocol mapper of type C(oidc-group-membership-mapper) on a client scope or on a client, or its absence.
  - Works through Keycloak's protocol-mapper endpoints, because Keycloak ignores mappers sent inside a client or
    client-scope update.
  - Repairs drift of the managed settings (claim name, full path, the tokens the claim goes into); other settings of
    the mapper are left as they are.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.keycloak_mapper
  - mlops.mlflow.attributes
options:
  claim_name:
    description: Name of the claim that carries the groups.
    type: str
    default: groups
  full_path:
    description: Put full group paths (V(/mlflow-users)) instead of plain names (V(mlflow-users)) into the claim.
    type: bool
    default: false
  id_token:
    description: Add the claim to the ID token.
    type: bool
    default: true
  access_token:
    description: Add the claim to the access token.
    type: bool
    default: true
  userinfo:
    description: Add the claim to the userinfo answer.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Put plain group names into the groups claim of the groups client scope
  mlops.mlflow.keycloak_group_mapper:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    client_scope: groups
    name: groups
    claim_name: groups
    full_path: false

- name: Remove a group mapper from a client
  mlops.mlflow.keycloak_group_mapper:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    client_id: mlflow
    name: groups
    state: absent
"""

RETURN = r"""
mapper:
  description: The mapper after the run (what it would be, in check mode); empty when absent.
  returned: always
  type: dict
  sample:
    id: 5c0a6f7e-2f4b-4f8e-9d55-3e4f0f9c1a2b
    name: groups
    protocol: openid-connect
    protocolMapper: oidc-group-membership-mapper
    config:
      claim.name: groups
      full.path: "false"
      id.token.claim: "true"
      access.token.claim: "true"
      userinfo.token.claim: "true"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import group_mapper_representation
from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak_mapper import (
    converge_mapper,
    mapper_argument_spec,
    mapper_module_kwargs,
)


def main():
    module = AnsibleModule(
        argument_spec=mapper_argument_spec(
            claim_name=dict(type="str", default="groups"),
            full_path=dict(type="bool", default=False),
            id_token=dict(type="bool", default=True),
            access_token=dict(type="bool", default=True),
            userinfo=dict(type="bool", default=True),
        ),
        **mapper_module_kwargs(),
    )
    params = module.params
    converge_mapper(
        module,
        group_mapper_representation(
            params["name"],
            params["claim_name"],
            params["full_path"],
            params["id_token"],
            params["access_token"],
            params["userinfo"],
        ),
    )


if __name__ == "__main__":
    main()
