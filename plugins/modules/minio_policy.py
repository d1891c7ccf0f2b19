#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: minio_policy
short_description: Manage a named MinIO policy (canned IAM policy)
version_added: 0.1.0
description:
  - Creates, updates or deletes a named policy on a MinIO server from a policy document.
  - Documents are compared in a normalised form (single values as lists, actions, resources and principals sorted,
    statements sorted, empty Sids dropped), so a document that only differs in order or layout is no change.
  - A policy edited by hand on the server is set back to O(policy).
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.minio
  - mlops.mlflow.attributes
options:
  name:
    description: Name of the policy.
    type: str
    required: true
  policy:
    description:
      - The IAM policy document (C(Version) and C(Statement)), as a dictionary or a JSON string.
      - C(Statement) is one statement or a list of them; each statement is a dictionary. A document of another shape
        is refused before MinIO is contacted.
      - Required with O(state=present).
    type: dict
  state:
    description: Whether the policy should exist.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode and diff mode. The diff shows the normalised documents.
  - MinIO refuses to delete a policy that is still attached to a user or group; detach it first
    (M(mlops.mlflow.minio_user) with O(mlops.mlflow.minio_user#module:policies)).
seealso:
  - module: mlops.mlflow.minio_user
"""

EXAMPLES = r"""
- name: Allow reading and writing the objects of bucket mlflow, nothing else
  mlops.mlflow.minio_policy:
    endpoint: http://127.0.0.1:9000
    access_key: mlops-root
    secret_key: "{{ minio_root_password }}"
    name: mlflow-bucket-rw
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: [s3:ListBucket, s3:GetBucketLocation]
          Resource: [arn:aws:s3:::mlflow]
        - Effect: Allow
          Action: [s3:GetObject, s3:PutObject, s3:DeleteObject]
          Resource: [arn:aws:s3:::mlflow/*]
"""

RETURN = r"""
policy:
  description: The normalised policy document after the run (before it, for O(state=absent)); null when absent.
  returned: always
  type: dict
  sample:
    Version: "2012-10-17"
    Statement:
      - Effect: Allow
        Action: [s3:GetObject]
        Resource: [arn:aws:s3:::mlflow/*]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mlops.mlflow.plugins.module_utils._minio import (
    MinioConnection,
    minio_argument_spec,
    normalize_policy,
    policy_error,
)


def main():
    argument_spec = minio_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        policy=dict(type="dict"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ("policy",))],
        supports_check_mode=True,
    )
    name = module.params["name"]
    wanted = None
    if module.params["state"] == "present":
        error = policy_error(module.params["policy"])
        if error:
            module.fail_json(msg="Invalid policy %s: %s." % (name, error))
        wanted = normalize_policy(module.params["policy"])

    connection = MinioConnection(module)
    admin = connection.admin
    text = connection.call("read policy %s" % name, admin.policy_info, name, absent_codes=("XMinioAdminNoSuchPolicy",))
    current = normalize_policy(text) if text else None

    changed = current != wanted
    if changed and not module.check_mode:
        if wanted is None:
            connection.call("delete policy %s" % name, admin.policy_remove, name)
        else:
            connection.call("write policy %s" % name, admin.policy_add, name, policy=module.params["policy"])

    result = {"changed": changed, "policy": wanted if module.params["state"] == "present" else current}
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": current or {}, "after": wanted or {}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
