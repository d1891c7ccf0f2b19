#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_group
short_description: Ensure a top-level group in a Keycloak realm, or its absence
version_added: 0.1.0
description:
  - Creates or deletes a top-level group, found by its exact name.
  - Membership is managed by M(mlops.mlflow.keycloak_group_members).
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  name:
    description: Name of the group.
    type: str
    required: true
  state:
    description:
      - Whether the group should exist.
      - V(absent) deletes the group; its members lose the membership, the users remain.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Ensure the group of MLflow users
  mlops.mlflow.keycloak_group:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    name: mlflow-users
"""

RETURN = r"""
group:
  description: Id, name and path of the group after the run (no id in check mode before creation); empty when absent.
  returned: always
  type: dict
  sample:
    id: 8a4f0b6e-1c2d-4e5f-9a7b-3c6d8e0f1a2b
    name: mlflow-users
    path: /mlflow-users
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    keycloak_argument_spec,
    keycloak_module_kwargs,
)


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        **keycloak_module_kwargs(),
    )
    name = module.params["name"]
    if "/" in name:
        module.fail_json(msg="Group name '%s' contains '/': only top-level groups are supported" % name)
    api = KeycloakApi(module)
    api.require_realm()
    current = api.find_top_level_group(name)
    before = {"name": current["name"], "path": current["path"]} if current else {}

    if module.params["state"] == "absent":
        changed = api.delete(api.realm_path("groups"), current)
        module.exit_json(changed=changed, group={}, diff=dict(before=before, after={}))

    after = current
    if current is None:
        after = {"name": name, "path": "/" + name}
        if not module.check_mode:
            api.request("POST", api.realm_path("groups"), {"name": name})
            after = api.find_top_level_group(name)
    module.exit_json(
        changed=current is None,
        group=after,
        diff=dict(before=before, after={"name": after["name"], "path": after["path"]}),
    )


if __name__ == "__main__":
    main()
