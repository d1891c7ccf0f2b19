#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_audience_mapper
short_description: Add a client to the audience of tokens, on a Keycloak client scope or client
version_added: 0.1.0
description:
  - Ensures a protocol mapper of type C(oidc-audience-mapper) on a client scope or on a client, or its absence.
  - A relying party that checks the C(aud) claim (mlflow-oidc-auth with C(OIDC_AUDIENCE)) then accepts the tokens
    issued through this client or scope, and refuses tokens that Keycloak issued to any other client of the realm.
  - Works through Keycloak's protocol-mapper endpoints, because Keycloak ignores mappers sent inside a client or
    client-scope update.
  - Repairs drift of the managed settings (audience, the tokens it goes into); other settings of the mapper are left
    as they are.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.keycloak_mapper
  - mlops.mlflow.attributes
options:
  audience:
    description: C(clientId) of the client that the tokens are meant for, put into their C(aud) claim.
    type: str
    required: true
  access_token:
    description: Add the audience to the access token.
    type: bool
    default: true
  id_token:
    description: Add the audience to the ID token (whose C(aud) is already the client it was issued to).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Bind the access tokens of the mlflow client to MLflow
  mlops.mlflow.keycloak_audience_mapper:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    client_id: mlflow
    name: mlflow-audience
    audience: mlflow
"""

RETURN = r"""
mapper:
  description: The mapper after the run (what it would be, in check mode); empty when absent.
  returned: always
  type: dict
  sample:
    id: 0b8e9f7a-6d2c-4a51-8f3e-1c2d3e4f5a6b
    name: mlflow-audience
    protocol: openid-connect
    protocolMapper: oidc-audience-mapper
    config:
      included.client.audience: mlflow
      access.token.claim: "true"
      id.token.claim: "false"
      introspection.token.claim: "true"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak_mapper import (
    audience_mapper_representation,
    converge_mapper,
    mapper_argument_spec,
    mapper_module_kwargs,
)


def main():
    module = AnsibleModule(
        argument_spec=mapper_argument_spec(
            audience=dict(type="str", required=True),
            access_token=dict(type="bool", default=True),
            id_token=dict(type="bool", default=False),
        ),
        **mapper_module_kwargs(),
    )
    params = module.params
    converge_mapper(
        module,
        audience_mapper_representation(params["name"], params["audience"], params["access_token"], params["id_token"]),
    )


if __name__ == "__main__":
    main()
