#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_user
short_description: Ensure users in a Keycloak realm, or their absence
version_added: 0.1.0
description:
  - Creates, updates in place or deletes the listed users, each found by its exact user name, with one admin login
    for the whole list.
  - The password is set when the user is created, or on every run with O(update_password=always); Keycloak never
    returns passwords, so a password alone cannot be compared.
  - Every entry is checked before anything is changed.
  - Group membership is managed by M(mlops.mlflow.keycloak_group_members).
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
  users:
    description:
      - The users. With O(state=absent) only their user names count.
      - An empty list does nothing.
    type: list
    elements: dict
    required: true
    suboptions:
      username:
        description: User name (Keycloak stores it in lower case).
        type: str
        required: true
      email:
        description: E-mail address. MLflow uses it as the user's name by default.
        type: str
      first_name:
        description: First name. Keycloak's default user profile requires it before a user can log in.
        type: str
      last_name:
        description: Last name. Keycloak's default user profile requires it before a user can log in.
        type: str
      email_verified:
        description: Mark the e-mail address as verified, so no verification is asked at login.
        type: bool
        default: true
      enabled:
        description: Whether the user can log in.
        type: bool
        default: true
      password:
        description: Password of the user (not temporary). Required to create a user that logs in with a password.
        type: str
  update_password:
    description:
      - V(on_create) sets each user's password only when the user is created.
      - V(always) sets it on every run and then always reports a change; every user needs a password then.
    type: str
    choices: [on_create, always]
    default: on_create
  state:
    description: Whether the users should exist. V(absent) deletes them.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Ensure the users who log in to MLflow
  mlops.mlflow.keycloak_user:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    users:
      - username: alice
        email: alice@example.com
        first_name: Alice
        last_name: Example
        password: "{{ alice_password }}"
      - username: bob
        email: bob@example.com
        first_name: Bob
        last_name: Example
        password: "{{ bob_password }}"

- name: Delete a user
  mlops.mlflow.keycloak_user:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    users:
      - username: carol
    state: absent
"""

RETURN = r"""
users:
  description:
    - Id and profile of each listed user after the run, in the order of O(users) (no id in check mode before
      creation).
    - Empty with O(state=absent).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 2f1c6d0e-5a7b-4c3d-8e9f-0a1b2c3d4e5f
      username: alice
      email: alice@example.com
      firstName: Alice
      lastName: Example
      enabled: true
      emailVerified: true
changed_users:
  description: User names created, updated, given a password or deleted (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [alice]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._keycloak import (
    KeycloakApi,
    keycloak_argument_spec,
    keycloak_module_kwargs,
    managed_view,
)

PROFILE_OPTIONS = (
    ("email", "email"),
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("email_verified", "emailVerified"),
    ("enabled", "enabled"),
)
RETURNED_KEYS = ["id", "username"] + [key for _option, key in PROFILE_OPTIONS]


def find_user(api, username):
    """The user called `username` (exact match), or None."""
    users = api.request("GET", api.realm_path("users"), query={"username": username, "exact": "true"}) or []
    return next((user for user in users if user.get("username") == username), None)


def desired_profile(user):
    """The user representation an entry of `users` asks for (without the password)."""
    desired = {"username": user["username"].lower()}
    for option, key in PROFILE_OPTIONS:
        if user[option] is not None:
            desired[key] = user[option]
    return desired


def set_password(api, user_id, password):
    api.request(
        "PUT",
        api.realm_path("users", user_id, "reset-password"),
        {"type": "password", "value": password, "temporary": False},
    )


def check_entries(module):
    """Fail, before anything changes, on a user listed twice or a password that update_password=always lacks."""
    users = module.params["users"]
    names = [user["username"].lower() for user in users]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        module.fail_json(msg="User(s) %s are listed more than once in users" % ", ".join(twice))
    if module.params["update_password"] == "always":
        without = [user["username"] for user in users if not user["password"]]
        if without:
            module.fail_json(msg="update_password=always needs a password for every user; missing for %s"
                             % ", ".join(without))


def converge_user(api, user, update_password):
    """Converge one user; return (changed, after, before view, after view)."""
    desired = desired_profile(user)
    current = find_user(api, desired["username"])
    if current is None and user["password"]:
        desired["credentials"] = [{"type": "password", "value": user["password"], "temporary": False}]
    changed, after = api.converge(
        api.realm_path("users"), current, desired, lambda: find_user(api, desired["username"]), keep_out=("credentials",)
    )
    desired.pop("credentials", None)
    if current is not None and update_password == "always":
        changed = True
        if not api.module.check_mode:
            set_password(api, current["id"], user["password"])
    return changed, after, managed_view(current, desired), managed_view(after, desired)


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(
            users=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    username=dict(type="str", required=True),
                    email=dict(type="str"),
                    first_name=dict(type="str"),
                    last_name=dict(type="str"),
                    email_verified=dict(type="bool", default=True),
                    enabled=dict(type="bool", default=True),
                    password=dict(type="str", no_log=True),
                ),
            ),
            update_password=dict(type="str", choices=["on_create", "always"], default="on_create", no_log=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        **keycloak_module_kwargs(),
    )
    params = module.params
    check_entries(module)
    api = KeycloakApi(module)
    api.require_realm()
    changed_users, returned = [], []
    # The diff shows the users this run changes, keyed by user name: a no-op over many users shows nothing.
    before, after = {}, {}

    if params["state"] == "absent":
        for user in params["users"]:
            username = user["username"].lower()
            current = find_user(api, username)
            if api.delete(api.realm_path("users"), current):
                changed_users.append(username)
                before[username] = managed_view(current, {"username": username})
        module.exit_json(changed=bool(changed_users), users=[], changed_users=changed_users,
                         diff=dict(before=before, after=after))

    for user in params["users"]:
        changed, result, view_before, view_after = converge_user(api, user, params["update_password"])
        username = user["username"].lower()
        if changed:
            changed_users.append(username)
            if view_before:
                before[username] = view_before
            after[username] = view_after
        returned.append({key: result.get(key) for key in RETURNED_KEYS if key in result})
    module.exit_json(changed=bool(changed_users), users=returned, changed_users=changed_users,
                     diff=dict(before=before, after=after))


if __name__ == "__main__":
    main()
