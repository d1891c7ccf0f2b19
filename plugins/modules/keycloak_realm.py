#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_realm
short_description: Ensure a Keycloak realm exists and is enabled, or is absent
version_added: 0.1.0
description:
  - Creates the realm named by O(realm) when it is missing, enables it when it is disabled, or deletes it.
  - Other realm settings are left as they are.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  state:
    description:
      - Whether the realm should exist.
      - V(absent) deletes the realm with all its clients, groups and users.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Create the mlflow realm
  mlops.mlflow.keycloak_realm:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
"""

RETURN = r"""
realm:
  description: Name and enabled state of the realm after the run; empty when absent.
  returned: always
  type: dict
  sample:
    realm: mlflow
    enabled: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    keycloak_argument_spec,
    keycloak_module_kwargs,
)


def realm_view(representation):
    if representation is None:
        return {}
    return {"realm": representation["realm"], "enabled": representation.get("enabled", False)}


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        **keycloak_module_kwargs(),
    )
    api = KeycloakApi(module)
    current = api.request("GET", api.realm_path(), missing_ok=True)
    before = realm_view(current)

    if module.params["state"] == "absent":
        changed = current is not None
        if changed and not module.check_mode:
            api.request("DELETE", api.realm_path())
        module.exit_json(changed=changed, realm={}, diff=dict(before=before, after={}))

    after = {"realm": api.realm, "enabled": True}
    changed = before != after
    if changed and not module.check_mode:
        if current is None:
            api.request("POST", "admin/realms", after)
        else:
            api.request("PUT", api.realm_path(), {"enabled": True})
    module.exit_json(changed=changed, realm=after, diff=dict(before=before, after=after))


if __name__ == "__main__":
    main()
