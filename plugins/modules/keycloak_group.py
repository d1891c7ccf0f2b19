#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_group
short_description: Ensure top-level groups in a Keycloak realm, or their absence
version_added: 0.1.0
description:
  - Creates or deletes the listed top-level groups, each found by its exact name, with one admin login for the
    whole list.
  - Membership is managed by M(mlops.mlflow.keycloak_group_members).
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  names:
    description: Names of the groups (one name is a list of one).
    type: list
    elements: str
    required: true
    aliases: [name]
  state:
    description:
      - Whether the groups should exist.
      - V(absent) deletes them; their members lose the membership, the users remain.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Ensure the groups of MLflow
  mlops.mlflow.keycloak_group:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    names: [mlflow-admins, mlflow-users]

- name: Delete a group
  mlops.mlflow.keycloak_group:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    name: mlflow-guests
    state: absent
"""

RETURN = r"""
groups:
  description:
    - Id, name and path of each group after the run, in the order of O(names) (no id in check mode before
      creation).
    - Empty with O(state=absent).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 8a4f0b6e-1c2d-4e5f-9a7b-3c6d8e0f1a2b
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
            names=dict(type="list", elements="str", required=True, aliases=["name"]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        **keycloak_module_kwargs(),
    )
    # Each name once, in the order given.
    names = list(dict.fromkeys(module.params["names"]))
    nested = [name for name in names if "/" in name]
    if nested:
        module.fail_json(msg="Group name(s) %s contain '/': only top-level groups are supported" % ", ".join(nested))
    api = KeycloakApi(module)
    api.require_realm()
    current = {name: api.find_top_level_group(name) for name in names}
    existing = [name for name in names if current[name]]

    if module.params["state"] == "absent":
        for name in existing:
            api.delete(api.realm_path("groups"), current[name])
        module.exit_json(
            changed=bool(existing), groups=[], diff=dict(before={"groups": existing}, after={"groups": []})
        )

    groups = []
    for name in names:
        group = current[name]
        if group is None:
            group = {"name": name, "path": "/" + name}
            if not module.check_mode:
                api.request("POST", api.realm_path("groups"), {"name": name})
                group = api.find_top_level_group(name)
        groups.append(group)
    module.exit_json(
        changed=len(existing) < len(names), groups=groups, diff=dict(before={"groups": existing}, after={"groups": names})
    )


if __name__ == "__main__":
    main()
