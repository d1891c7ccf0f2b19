#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keycloak_user
short_description: Ensure a user in a Keycloak realm, or its absence
version_added: 0.1.0
description:
  - Creates, updates in place or deletes a user, found by its exact user name.
  - The password is set when the user is created, or on every run with O(update_password=always); Keycloak never
    returns passwords, so a password alone cannot be compared.
  - Group membership is managed by M(mlops.mlflow.keycloak_group_members).
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.keycloak
  - mlops.mlflow.attributes
options:
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
      - V(on_create) sets O(password) only when the user is created.
      - V(always) sets it on every run and then always reports a change.
    type: str
    choices: [on_create, always]
    default: on_create
  state:
    description: Whether the user should exist. V(absent) deletes the user.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Ensure a user who can log in to MLflow
  mlops.mlflow.keycloak_user:
    auth_keycloak_url: http://127.0.0.1:8080
    auth_username: admin
    auth_password: "{{ keycloak_admin_password }}"
    realm: mlflow
    username: alice
    email: alice@example.com
    first_name: Alice
    last_name: Example
    password: "{{ alice_password }}"
"""

RETURN = r"""
user:
  description: Id and profile of the user after the run (no id in check mode before creation); empty when absent.
  returned: always
  type: dict
  sample:
    id: 2f1c6d0e-5a7b-4c3d-8e9f-0a1b2c3d4e5f
    username: alice
    email: alice@example.com
    firstName: Alice
    lastName: Example
    enabled: true
    emailVerified: true
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


def find_user(api, username):
    """The user called `username` (exact match), or None."""
    users = api.request("GET", api.realm_path("users"), query={"username": username, "exact": "true"}) or []
    return next((user for user in users if user.get("username") == username), None)


def desired_profile(params):
    """The user representation the options ask for (without the password)."""
    desired = {"username": params["username"].lower()}
    for option, key in PROFILE_OPTIONS:
        if params[option] is not None:
            desired[key] = params[option]
    return desired


def set_password(api, user_id, password):
    api.request(
        "PUT",
        api.realm_path("users", user_id, "reset-password"),
        {"type": "password", "value": password, "temporary": False},
    )


def main():
    module = AnsibleModule(
        argument_spec=keycloak_argument_spec(
            username=dict(type="str", required=True),
            email=dict(type="str"),
            first_name=dict(type="str"),
            last_name=dict(type="str"),
            email_verified=dict(type="bool", default=True),
            enabled=dict(type="bool", default=True),
            password=dict(type="str", no_log=True),
            update_password=dict(type="str", choices=["on_create", "always"], default="on_create", no_log=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        **keycloak_module_kwargs(),
    )
    params = module.params
    if params["update_password"] == "always" and not params["password"]:
        module.fail_json(msg="update_password=always needs a password")
    desired = desired_profile(params)
    api = KeycloakApi(module)
    api.require_realm()
    current = find_user(api, desired["username"])
    before = managed_view(current, desired)

    if params["state"] == "absent":
        changed = api.delete(api.realm_path("users"), current)
        module.exit_json(changed=changed, user={}, diff=dict(before=before, after={}))

    if current is None and params["password"]:
        desired["credentials"] = [{"type": "password", "value": params["password"], "temporary": False}]
    changed, after = api.converge(
        api.realm_path("users"), current, desired, lambda: find_user(api, desired["username"]), keep_out=("credentials",)
    )
    desired.pop("credentials", None)
    if current is not None and params["update_password"] == "always":
        changed = True
        if not module.check_mode:
            set_password(api, current["id"], params["password"])
    user = {key: after.get(key) for key in ["id", "username"] + [key for _option, key in PROFILE_OPTIONS] if key in after}
    module.exit_json(changed=changed, user=user, diff=dict(before=before, after=managed_view(after, desired)))


if __name__ == "__main__":
    main()
