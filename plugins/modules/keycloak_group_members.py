#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_group_members
short_description: Add existing Keycloak users to a group, remove them, or make them its only members
version_added: 0.1.0
description:
  - Makes the listed users members of a top-level group (V(present)), not members (V(absent)), or its only members
    (V(exact)).
  - With V(present) and V(absent), members that are not listed are left alone; with V(exact) they are removed, so
    that taking a user off the list takes their membership away.
  - The group must exist, and so must the users to add; the module fails naming any that do not, before changing
    anything. With V(absent), a user who does not exist is not a member, and nothing is done for them.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  group:
    description: Name of the top-level group.
    type: str
    required: true
  members:
    description: User names of the users to add or remove.
    type: list
    elements: str
    required: true
  state:
    description:
      - Whether the users should be members of the group (V(present)), not members (V(absent)), or its only
        members (V(exact)).
      - V(exact) with an empty O(members) removes every member.
    type: str
    choices: [present, absent, exact]
    default: present
"""

EXAMPLES = r"""
- name: Let alice and bob use MLflow
  mlops.mlflow.keycloak_group_members:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    group: mlflow-users
    members: [alice, bob]

- name: Make alice and bob the only administrators (anyone else in the group is removed)
  mlops.mlflow.keycloak_group_members:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    group: mlflow-admins
    members: [alice, bob]
    state: exact
"""

RETURN = r"""
added:
  description: User names added to the group (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [bob]
removed:
  description: User names removed from the group (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    keycloak_argument_spec,
    keycloak_module_kwargs,
)


def find_user_ids(api, usernames, missing_ok=False):
    """User ids by user name; fails naming the users that do not exist, unless `missing_ok`."""
    ids = {}
    for username in usernames:
        users = api.request("GET", api.realm_path("users"), query={"username": username, "exact": "true"}) or []
        # Keycloak stores user names in lower case.
        match = [user for user in users if user.get("username") == username.lower()]
        if match:
            ids[username] = match[0]["id"]
    missing = [username for username in usernames if username not in ids]
    if missing and not missing_ok:
        api.module.fail_json(msg="User(s) %s do not exist in realm '%s'" % (", ".join(missing), api.realm))
    return ids


def current_members(api, group_id):
    """The group's members as {user id: user name}."""
    members = api.request("GET", api.realm_path("groups", group_id, "members"), query={"max": "-1"}) or []
    return {member["id"]: member["username"] for member in members}


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(
            group=dict(type="str", required=True),
            members=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "absent", "exact"], default="present"),
        ),
        **keycloak_module_kwargs(),
    )
    params = module.params
    api = KeycloakApi(module)
    api.require_realm()
    group = api.find_top_level_group(params["group"])
    if group is None:
        module.fail_json(msg="Group '%s' does not exist in realm '%s'" % (params["group"], api.realm))
    user_ids = find_user_ids(api, sorted(set(params["members"])), missing_ok=params["state"] == "absent")
    current = current_members(api, group["id"])

    if params["state"] == "absent":
        to_add = {}
        to_remove = {user_id: name for name, user_id in user_ids.items() if user_id in current}
    else:
        to_add = {user_id: name for name, user_id in user_ids.items() if user_id not in current}
        listed = set(user_ids.values())
        to_remove = {} if params["state"] == "present" else {
            user_id: name for user_id, name in current.items() if user_id not in listed
        }
    if not module.check_mode:
        for user_id in to_add:
            api.request("PUT", api.realm_path("users", user_id, "groups", group["id"]))
        for user_id in to_remove:
            api.request("DELETE", api.realm_path("users", user_id, "groups", group["id"]))

    # The diff shows the members this run is about: all of them with exact, the listed ones otherwise.
    shown = set(current) if params["state"] == "exact" else set(user_ids.values())
    before = sorted(current[user_id] for user_id in shown if user_id in current)
    after = sorted(set(before) - set(to_remove.values()) | set(to_add.values()))
    module.exit_json(
        changed=bool(to_add or to_remove),
        added=sorted(to_add.values()),
        removed=sorted(to_remove.values()),
        diff=dict(before={"members": before}, after={"members": after}),
    )


if __name__ == "__main__":
    main()
