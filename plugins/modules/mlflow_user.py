#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mlflow_user
short_description: Deactivate or reactivate a user of MLflow behind mlflow-oidc-auth
version_added: 0.1.0
description:
  - Sets the active flag of an MLflow user through the admin API of mlflow-oidc-auth
    (C(PATCH /api/2.0/mlflow/users/<username>/active)).
  - Deactivating revokes every session and deletes every access key of the user at once; their grants are kept, so
    that a reactivated user finds their permissions again. This is the offboarding step that removing a user from
    the Keycloak groups cannot do alone, since access keys are checked by MLflow, not Keycloak.
  - A user who never logged in nor sent a token to MLflow has no MLflow account; O(state=inactive) then changes
    nothing.
  - Logs in with HTTP Basic as an MLflow administrator and one of their access keys.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
attributes:
  check_mode:
    description: Reports what would change without changing it.
    support: full
  diff_mode:
    description: Shows the user's active flag before and after.
    support: full
options:
  mlflow_url:
    description: Base URL of MLflow, for example V(https://mlflow.example.com).
    type: str
    required: true
  auth_username:
    description: User name of an MLflow administrator.
    type: str
    required: true
  auth_password:
    description: An access key of O(auth_username).
    type: str
    required: true
  username:
    description: The MLflow user (their Keycloak user name).
    type: str
    required: true
  state:
    description:
      - V(inactive) deactivates the user and revokes their sessions and access keys; V(active) reactivates them.
    type: str
    choices: [active, inactive]
    default: inactive
  ca_path:
    description: PEM file of the CA certificates to trust for https. Default is the system's trusted CAs.
    type: path
  validate_certs:
    description: Verify MLflow's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Offboard alice from MLflow (sessions and access keys revoked, grants kept)
  mlops.mlflow.mlflow_user:
    mlflow_url: https://mlflow.example.com
    auth_username: demo-admin
    auth_password: "{{ mlflow_admin_access_key }}"
    username: alice
    state: inactive
"""

RETURN = r"""
user:
  description: The user's account after the run (what it would be, in check mode); empty when there is none.
  returned: always
  type: dict
  sample:
    username: alice
    active: false
    is_admin: false
"""

import json
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import Request
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

USERS_PATH = "/api/2.0/mlflow/users"
SHOWN_FIELDS = ("username", "active", "is_admin", "is_service_account")


class MlflowAdminApi:
    def __init__(self, module):
        self.module = module
        params = module.params
        self.url = params["mlflow_url"].rstrip("/")
        self.request = Request(
            url_username=params["auth_username"],
            url_password=params["auth_password"],
            force_basic_auth=True,
            validate_certs=params["validate_certs"],
            ca_path=params["ca_path"],
            timeout=params["timeout"],
            follow_redirects="none",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    def call(self, method, path, payload=None):
        url = self.url + path
        try:
            answer = self.request.open(method, url, data=json.dumps(payload) if payload is not None else None)
            return json.loads(answer.read() or b"null")
        except HTTPError as error:
            if error.code in (401, 403):
                self.module.fail_json(
                    msg="MLflow at %s refused %s %s (HTTP %s): auth_username must be an MLflow administrator and "
                    "auth_password one of their valid access keys" % (self.url, method, path, error.code)
                )
            self.module.fail_json(msg="MLflow at %s answered HTTP %s to %s %s" % (self.url, error.code, method, path))
        except (URLError, OSError, ValueError) as error:
            self.module.fail_json(msg="Cannot reach MLflow at %s: %s" % (self.url, getattr(error, "reason", error)))

    def find_user(self, username):
        for user in self.call("GET", USERS_PATH + "/details") or []:
            if user.get("username") == username:
                return user
        return None


def view(user):
    return {key: user.get(key) for key in SHOWN_FIELDS} if user else {}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mlflow_url=dict(type="str", required=True),
            auth_username=dict(type="str", required=True),
            auth_password=dict(type="str", required=True, no_log=True),
            username=dict(type="str", required=True),
            state=dict(type="str", choices=["active", "inactive"], default="inactive"),
            ca_path=dict(type="path"),
            validate_certs=dict(type="bool", default=True),
            timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params["mlflow_url"].startswith(("http://", "https://")):
        module.fail_json(msg="mlflow_url must be an http:// or https:// URL, not %r" % params["mlflow_url"])
    api = MlflowAdminApi(module)
    active = params["state"] == "active"
    current = api.find_user(params["username"])
    if current is None:
        if active:
            module.fail_json(msg="MLflow has no user %s (a user's account is made at their first login)" % params["username"])
        module.exit_json(changed=False, user={}, diff=dict(before={}, after={}))

    changed = bool(current.get("active")) != active
    after = dict(current, active=active)
    if changed and not module.check_mode:
        path = "%s/%s/active" % (USERS_PATH, quote(params["username"], safe=""))
        after = api.call("PATCH", path, {"active": active})
    module.exit_json(changed=changed, user=view(after), diff=dict(before=view(current), after=view(after)))


if __name__ == "__main__":
    main()
