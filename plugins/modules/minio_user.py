#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: minio_user
short_description: Manage a MinIO user, its status and the policies attached to it
version_added: 0.1.0
description:
  - Creates, updates or deletes a user of MinIO's built-in identity provider.
  - The admin API cannot read a secret key back, so the module sets the secret key when it creates the user
    and, for an existing user, only with O(update_secret=always). A second run with the same input reports no change.
  - The policies attached to the user are made exactly O(policies).
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.minio
  - mlops.mlflow.attributes
options:
  name:
    description:
      - The user's access key (its user name).
      - Named O(name) because O(access_key) is the key the module logs in with.
    type: str
    required: true
    aliases: [user_access_key]
  user_secret_key:
    description:
      - The user's secret key, 8 to 40 characters. Required to create the user.
    type: str
  update_secret:
    description:
      - V(on_create) sets O(user_secret_key) only when the user is created.
      - V(always) sets it on every run, and then always reports a change (the current one cannot be read).
    type: str
    choices: [on_create, always]
    default: on_create
  policies:
    description:
      - Names of the policies attached to the user, exactly; others are detached. The policies must exist.
      - V([]) detaches all policies; V(null) leaves them as they are.
    type: list
    elements: str
  status:
    description: Whether the user can log in.
    type: str
    choices: [enabled, disabled]
    default: enabled
  state:
    description: Whether the user should exist.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode and diff mode. Neither the diff nor the result ever contains a secret key.
seealso:
  - module: mlops.mlflow.minio_policy
"""

EXAMPLES = r"""
- name: Create the user MLflow logs in with, limited to its own bucket
  mlops.mlflow.minio_user:
    endpoint: http://127.0.0.1:9000
    access_key: mlops-root
    secret_key: "{{ minio_root_password }}"
    name: mlflow
    user_secret_key: "{{ mlflow_s3_secret_key }}"
    policies:
      - mlflow-bucket-rw

- name: Rotate the user's secret key
  mlops.mlflow.minio_user:
    endpoint: http://127.0.0.1:9000
    access_key: mlops-root
    secret_key: "{{ minio_root_password }}"
    name: mlflow
    user_secret_key: "{{ new_secret_key }}"
    update_secret: always
"""

RETURN = r"""
user:
  description: The user after the run (before it, for O(state=absent)); null when absent. Never holds the secret key.
  returned: always
  type: dict
  sample:
    name: mlflow
    status: enabled
    policies: [mlflow-bucket-rw]
secret_updated:
  description: Whether the secret key was set (or would be, in check mode).
  returned: always
  type: bool
  sample: false
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mlops.mlflow.plugins.module_utils._minio import MinioConnection, minio_argument_spec


def parse_user_info(name, text):
    """The user's status and attached policies from the admin API's user-info answer."""
    info = json.loads(text)
    policies = [policy for policy in info.get("policyName", "").split(",") if policy]
    return {"name": name, "status": info.get("status", "enabled"), "policies": sorted(policies)}


class UserManager:
    def __init__(self, module, connection):
        self.module = module
        self.admin = connection.admin
        self.call = connection.call
        self.name = module.params["name"]

    def read(self):
        text = self.call("read user %s" % self.name, self.admin.user_info, self.name,
                         absent_codes=("XMinioAdminNoSuchUser",))
        return parse_user_info(self.name, text) if text else None

    def wanted(self, current):
        params = self.module.params
        policies = params["policies"]
        if policies is None:
            policies = current["policies"] if current else []
        return {"name": self.name, "status": params["status"], "policies": sorted(set(policies))}

    def _do(self, action, function, *args, **kwargs):
        if not self.module.check_mode:
            self.call("%s of user %s" % (action, self.name), function, *args, **kwargs)

    def delete(self):
        self._do("delete", self.admin.user_remove, self.name)

    def converge(self, current, wanted):
        """Return whether the secret key was (or would be) set."""
        params = self.module.params
        set_secret = current is None or params["update_secret"] == "always"
        if set_secret:
            # Adding an existing user sets its secret key (and enables it), keeping its policies.
            self._do("set the secret key", self.admin.user_add, self.name, params["user_secret_key"])
            if current is not None:
                current = dict(current, status="enabled")
        current = current or {"status": "enabled", "policies": []}
        if current["status"] != wanted["status"]:
            enable = wanted["status"] == "enabled"
            self._do("change the status", self.admin.user_enable if enable else self.admin.user_disable, self.name)
        to_attach = sorted(set(wanted["policies"]) - set(current["policies"]))
        to_detach = sorted(set(current["policies"]) - set(wanted["policies"]))
        if to_attach:
            self._do("attach policies %s" % ", ".join(to_attach), self.admin.attach_policy, to_attach, user=self.name)
        if to_detach:
            self._do("detach policies %s" % ", ".join(to_detach), self.admin.detach_policy, to_detach, user=self.name)
        return set_secret


def main():
    argument_spec = minio_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True, aliases=["user_access_key"]),
        user_secret_key=dict(type="str", no_log=True),
        update_secret=dict(type="str", choices=["on_create", "always"], default="on_create", no_log=False),
        policies=dict(type="list", elements="str"),
        status=dict(type="str", choices=["enabled", "disabled"], default="enabled"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("update_secret", "always", ("user_secret_key",))],
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    if name == params["access_key"]:
        module.fail_json(msg="User %s is the one the module logs in with; manage it with another admin user" % name)
    secret = params["user_secret_key"]
    if secret is not None and not 8 <= len(secret) <= 40:
        module.fail_json(msg="user_secret_key must be 8 to 40 characters long (MinIO's limits)")

    manager = UserManager(module, MinioConnection(module))
    current = manager.read()
    result = {"changed": False, "secret_updated": False}
    if params["state"] == "absent":
        wanted = None
        if current is not None:
            manager.delete()
            result["changed"] = True
        result["user"] = current
    else:
        if current is None and secret is None:
            module.fail_json(msg="User %s does not exist: user_secret_key is needed to create it" % name)
        wanted = manager.wanted(current)
        result["secret_updated"] = manager.converge(current, wanted)
        result["changed"] = result["secret_updated"] or current != wanted
        result["user"] = wanted
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": current or {}, "after": wanted or {}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
