#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_group_members
short_description: Add existing Keycloak users to groups, remove them, or make them the groups' only members
version_added: 0.1.0
description:
  - Makes the listed users members of top-level groups (V(present)), not members (V(absent)), or their only members
    (V(exact)), with one admin login for all the groups.
  - With V(present) and V(absent), members that are not listed are left alone; with V(exact) they are removed, so
    that taking a user off the list takes their membership away.
  - The groups must exist, and so must the users to add; the module fails naming any that do not, before changing
    anything. With V(absent), a user who does not exist is not a member, and nothing is done for them.
  - Users who are already members are recognized in the group's member list, so a run that changes nothing reads
    each group twice whatever the number of members.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  groups:
    description:
      - The groups and their listed users.
      - Mutually exclusive with O(group); one of the two is required.
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the top-level group.
        type: str
        required: true
      members:
        description: User names of the users to add or remove.
        type: list
        elements: str
        required: true
  group:
    description:
      - Name of one top-level group, with O(members); the same as O(groups) with one entry.
    type: str
  members:
    description: User names of the users to add to O(group) or remove from it.
    type: list
    elements: str
  state:
    description:
      - Whether the users should be members of the groups (V(present)), not members (V(absent)), or their only
        members (V(exact)).
      - V(exact) with an empty list of members removes every member.
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

- name: Make the lists the whole membership of both groups (anyone else in them is removed)
  mlops.mlflow.keycloak_group_members:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    groups:
      - name: mlflow-admins
        members: [alice]
      - name: mlflow-users
        members: [bob, carol]
    state: exact
"""

RETURN = r"""
groups:
  description: For each group, in the order given, the user names added and removed (or that would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - name: mlflow-users
      added: [bob]
      removed: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    keycloak_argument_spec,
    keycloak_module_kwargs,
)


class UserIds:
    """User ids by user name, each looked up at most once per run."""

    def __init__(self, api):
        self.api = api
        self.known = {}

    def get(self, username):
        """The id of `username`, or None when no such user exists."""
        # Keycloak stores user names in lower case.
        username = username.lower()
        if username not in self.known:
            users = self.api.request(
                "GET", self.api.realm_path("users"), query={"username": username, "exact": "true"}
            ) or []
            self.known[username] = next((user["id"] for user in users if user.get("username") == username), None)
        return self.known[username]


def current_members(api, group_id):
    """The group's members as {user name: user id}."""
    members = api.request("GET", api.realm_path("groups", group_id, "members"), query={"max": "-1"}) or []
    return {member["username"]: member["id"] for member in members}


def plan(api, user_ids, name, members, state):
    """What one group needs: (group, current members, {name: id} to add, {name: id} to remove, missing names)."""
    group = api.find_top_level_group(name)
    if group is None:
        api.module.fail_json(msg="Group '%s' does not exist in realm '%s'" % (name, api.realm))
    current = current_members(api, group["id"])
    listed = sorted({member.lower() for member in members})
    # Only users that are not members yet need a lookup.
    if state == "absent":
        to_add = {}
        to_remove = {user: current[user] for user in listed if user in current}
        missing = []
    else:
        outside = {user: user_ids.get(user) for user in listed if user not in current}
        missing = [user for user, user_id in outside.items() if user_id is None]
        to_add = {user: user_id for user, user_id in outside.items() if user_id is not None}
        to_remove = {} if state == "present" else {
            user: user_id for user, user_id in current.items() if user not in listed
        }
    return group, current, to_add, to_remove, missing


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(
            groups=dict(
                type="list",
                elements="dict",
                options=dict(
                    name=dict(type="str", required=True),
                    members=dict(type="list", elements="str", required=True),
                ),
            ),
            group=dict(type="str"),
            members=dict(type="list", elements="str"),
            state=dict(type="str", choices=["present", "absent", "exact"], default="present"),
        ),
        **keycloak_module_kwargs(
            required_one_of=[("group", "groups")],
            required_together=[("group", "members")],
            mutually_exclusive=[("group", "groups")],
        ),
    )
    params = module.params
    wanted = params["groups"] if params["groups"] is not None else [{"name": params["group"], "members": params["members"]}]
    names = [entry["name"] for entry in wanted]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        module.fail_json(msg="Group(s) %s are listed more than once in groups" % ", ".join(twice))
    api = KeycloakApi(module)
    api.require_realm()
    user_ids = UserIds(api)

    # Every group is checked before anything changes.
    plans = [plan(api, user_ids, entry["name"], entry["members"], params["state"]) for entry in wanted]
    missing = sorted({user for _group, _current, _add, _remove, users in plans for user in users})
    if missing:
        module.fail_json(msg="User(s) %s do not exist in realm '%s'" % (", ".join(missing), api.realm))

    results, before, after = [], {}, {}
    for entry, (group, current, to_add, to_remove, _missing) in zip(wanted, plans):
        if not module.check_mode:
            for user_id in to_add.values():
                api.request("PUT", api.realm_path("users", user_id, "groups", group["id"]))
            for user_id in to_remove.values():
                api.request("DELETE", api.realm_path("users", user_id, "groups", group["id"]))
        results.append({"name": group["name"], "added": sorted(to_add), "removed": sorted(to_remove)})
        # The diff shows the members this run is about: all of them with exact, the listed ones otherwise.
        shown = set(current) if params["state"] == "exact" else {member.lower() for member in entry["members"]}
        before[group["name"]] = sorted(user for user in shown if user in current)
        after[group["name"]] = sorted(set(before[group["name"]]) - set(to_remove) | set(to_add))
    module.exit_json(
        changed=any(result["added"] or result["removed"] for result in results),
        groups=results,
        diff=dict(before=before, after=after),
    )


if __name__ == "__main__":
    main()
