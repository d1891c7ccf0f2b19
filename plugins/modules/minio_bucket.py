#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: minio_bucket
short_description: Manage a MinIO bucket, its versioning, lifecycle, tags and anonymous access
version_added: 0.1.0
description:
  - Creates or deletes a bucket on a MinIO server and converges the settings given to it.
  - Settings left unset (V(null)) are not managed; drift in the managed ones (for example versioning suspended by
    hand) is repaired.
  - The bucket name is checked against the S3 naming rules before any call to the server.
  - With O(managed_by) it tags the buckets it creates as its caller's and leaves alone (refuses to change or delete)
    an existing bucket without that tag, unless told to O(adopt) it.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.minio
  - mlops.mlflow.attributes
options:
  name:
    description: Name of the bucket.
    type: str
    required: true
  state:
    description: Whether the bucket should exist.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - With O(state=absent), delete every object, object version and delete marker before deleting the bucket.
      - Without it, a bucket that holds anything is left alone and the module fails.
    type: bool
    default: false
  versioning:
    description:
      - V(true) enables object versioning, V(false) suspends it (S3 cannot switch versioning off once it was on).
      - V(null) leaves versioning as it is.
    type: bool
  noncurrent_version_expiration_days:
    description:
      - Keep a lifecycle rule (ID C(mlops-mlflow-noncurrent-expiration), whole bucket) that deletes object versions
        this many days after they stopped being current.
      - V(0) removes that rule. Other lifecycle rules of the bucket are kept.
      - V(null) leaves the lifecycle configuration as it is.
    type: int
  block_anonymous_access:
    description:
      - Remove every statement of the bucket policy that grants access to anonymous users (principal V(*)),
        and the bucket policy itself when nothing else is left in it.
      - V(false) leaves the bucket policy as it is.
    type: bool
    default: true
  tags:
    description:
      - Tags of the bucket, exactly (plus the C(managed-by) tag of O(managed_by)). V({}) removes all tags; V(null)
        leaves them as they are.
    type: dict
  managed_by:
    description:
      - Who manages the bucket, kept in its tag C(managed-by) (added to O(tags), or to the bucket's tags when O(tags)
        is V(null)).
      - An existing bucket whose C(managed-by) tag is not this value was not created by this caller, so the module
        fails without touching it (with O(state=absent) too) unless O(adopt=true).
      - V(null) neither tags nor checks.
    type: str
  adopt:
    description:
      - With O(managed_by), take over an existing bucket without that C(managed-by) tag. With O(state=present) the
        tag is set; with O(state=absent) the bucket is deleted.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode. The diff shows the managed settings before and after.
seealso:
  - module: mlops.mlflow.minio_policy
  - module: mlops.mlflow.minio_user
"""

EXAMPLES = r"""
- name: Create the MLflow artifact bucket with versioning and a 30-day expiry of old versions
  mlops.mlflow.minio_bucket:
    endpoint: http://127.0.0.1:9000
    access_key: mlops-root
    secret_key: "{{ minio_root_password }}"
    name: mlflow
    versioning: true
    noncurrent_version_expiration_days: 30
    tags:
      app: mlflow
    managed_by: mlops.mlflow

- name: Take over a bucket made by hand, tagging it as managed by mlops.mlflow
  mlops.mlflow.minio_bucket:
    endpoint: http://127.0.0.1:9000
    access_key: mlops-root
    secret_key: "{{ minio_root_password }}"
    name: legacy-artifacts
    managed_by: mlops.mlflow
    adopt: true

- name: Delete a bucket and everything in it
  mlops.mlflow.minio_bucket:
    endpoint: http://127.0.0.1:9000
    access_key: mlops-root
    secret_key: "{{ minio_root_password }}"
    name: scratch
    state: absent
    force: true
"""

RETURN = r"""
bucket:
  description: The managed settings of the bucket after the run (before it, for O(state=absent)).
  returned: always
  type: dict
  sample:
    exists: true
    versioning: Enabled
    noncurrent_version_expiration_days: 30
    anonymous_access: false
    tags: {app: mlflow}
actions:
  description: What the module did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["create bucket", "enable versioning"]
adopted:
  description:
    - Whether the bucket existed without the C(managed-by) tag of O(managed_by), so that the module took it over
      (or, in check mode, would take it over) because O(adopt=true).
  returned: when O(managed_by) is set
  type: bool
  sample: false
deleted_objects:
  description: Number of object versions and delete markers deleted with O(force=true).
  returned: when O(state=absent) and the bucket existed
  type: int
  sample: 12
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mlops.mlflow.plugins.module_utils._minio import (
    MinioConnection,
    bucket_name_error,
    grants_anonymous,
    minio_argument_spec,
    without_anonymous_statements,
)

try:
    from minio.commonconfig import ENABLED, Filter, Tags
    from minio.deleteobjects import DeleteObject
    from minio.lifecycleconfig import LifecycleConfig, NoncurrentVersionExpiration, Rule
    from minio.versioningconfig import SUSPENDED, VersioningConfig
except ImportError:
    pass  # MinioConnection reports the missing library.

LIFECYCLE_RULE_ID = "mlops-mlflow-noncurrent-expiration"
MANAGED_BY_TAG = "managed-by"


def wanted_tags(tags, current_tags, managed_by):
    """The tags the bucket should have: `tags` (None: `current_tags`) plus the managed-by tag when `managed_by` is set.

    Return None when neither is managed. Raise ValueError when `tags` sets managed-by to another value.
    """
    if tags is None and managed_by is None:
        return None
    wanted = dict((str(key), str(value)) for key, value in (current_tags if tags is None else tags).items())
    if managed_by is not None:
        if tags is not None and wanted.get(MANAGED_BY_TAG, managed_by) != managed_by:
            raise ValueError("tags sets %s=%s while managed_by is %s: leave that tag to managed_by"
                             % (MANAGED_BY_TAG, wanted[MANAGED_BY_TAG], managed_by))
        wanted[MANAGED_BY_TAG] = managed_by
    return wanted


class BucketManager:
    def __init__(self, module, connection):
        self.module = module
        self.s3 = connection.s3
        self.call = connection.call
        self.errors = connection.errors
        self.name = module.params["name"]
        self.actions = []
        self.created = False

    def read(self):
        """The managed settings as the server has them, or None when the bucket does not exist."""
        name = self.name
        if not self.call("check bucket %s" % name, self.s3.bucket_exists, name):
            return None
        settings = {"exists": True}
        params = self.module.params
        if params["versioning"] is not None:
            settings["versioning"] = self.call("read versioning of %s" % name, self.s3.get_bucket_versioning,
                                               name).status
        if params["noncurrent_version_expiration_days"] is not None:
            settings["noncurrent_version_expiration_days"] = self._expiration_days(self._lifecycle())
        if params["block_anonymous_access"]:
            policy = self._bucket_policy()
            settings["anonymous_access"] = bool(policy) and any(
                grants_anonymous(statement) for statement in policy.get("Statement", []))
        if params["tags"] is not None or params["managed_by"] is not None:
            tags = self.call("read tags of %s" % name, self.s3.get_bucket_tags, name, absent_codes=("NoSuchTagSet",))
            settings["tags"] = dict(tags or {})
        return settings

    def unmarked(self, current):
        """Whether the bucket exists without the managed-by tag of managed_by (someone else's bucket)."""
        managed_by = self.module.params["managed_by"]
        return current is not None and managed_by is not None and current["tags"].get(MANAGED_BY_TAG) != managed_by

    def wanted(self, current):
        params = self.module.params
        settings = {"exists": True}
        if params["versioning"] is not None:
            settings["versioning"] = "Enabled" if params["versioning"] else "Suspended"
            # A bucket that never had versioning is unversioned already; suspending it would change nothing.
            if not params["versioning"] and (current is None or current["versioning"] == "Off"):
                settings["versioning"] = "Off"
        if params["noncurrent_version_expiration_days"] is not None:
            settings["noncurrent_version_expiration_days"] = params["noncurrent_version_expiration_days"] or None
        if params["block_anonymous_access"]:
            settings["anonymous_access"] = False
        tags = wanted_tags(params["tags"], (current or {}).get("tags", {}), params["managed_by"])
        if tags is not None:
            settings["tags"] = tags
        return settings

    def _lifecycle(self):
        return self.call("read lifecycle of %s" % self.name, self.s3.get_bucket_lifecycle, self.name,
                         absent_codes=("NoSuchLifecycleConfiguration",))

    @staticmethod
    def _expiration_days(lifecycle):
        for rule in (lifecycle.rules if lifecycle else []):
            if rule.rule_id == LIFECYCLE_RULE_ID and rule.status == ENABLED and rule.noncurrent_version_expiration:
                return rule.noncurrent_version_expiration.noncurrent_days
        return None

    def _bucket_policy(self):
        text = self.call("read bucket policy of %s" % self.name, self.s3.get_bucket_policy, self.name,
                         absent_codes=("NoSuchBucketPolicy",))
        return json.loads(text) if text else None

    def converge(self, current, wanted):
        """Make the server match `wanted`; in check mode only record what would be done."""
        name = self.name
        self.created = current is None
        if self.created:
            self._do("create bucket", self.s3.make_bucket, name)
            current = {"exists": True, "versioning": "Off", "noncurrent_version_expiration_days": None,
                       "anonymous_access": False, "tags": {}}
        if "versioning" in wanted and current["versioning"] != wanted["versioning"]:
            enable = wanted["versioning"] == "Enabled"
            self._do("enable versioning" if enable else "suspend versioning", self.s3.set_bucket_versioning, name,
                     VersioningConfig(ENABLED if enable else SUSPENDED))
        if "noncurrent_version_expiration_days" in wanted:
            days = wanted["noncurrent_version_expiration_days"]
            if current["noncurrent_version_expiration_days"] != days:
                self._set_expiration(days)
        if wanted.get("anonymous_access") is False and current["anonymous_access"]:
            self._block_anonymous_access()
        if "tags" in wanted and current["tags"] != wanted["tags"]:
            if wanted["tags"]:
                tags = Tags.new_bucket_tags()
                tags.update(wanted["tags"])
                self._do("set tags", self.s3.set_bucket_tags, name, tags)
            else:
                self._do("remove tags", self.s3.delete_bucket_tags, name)

    def _set_expiration(self, days):
        lifecycle = None if self.created else self._lifecycle()
        rules = [rule for rule in (lifecycle.rules if lifecycle else []) if rule.rule_id != LIFECYCLE_RULE_ID]
        if days:
            rules.append(Rule(ENABLED, rule_filter=Filter(prefix=""), rule_id=LIFECYCLE_RULE_ID,
                              noncurrent_version_expiration=NoncurrentVersionExpiration(noncurrent_days=days)))
            action = "expire noncurrent versions after %d days" % days
        else:
            action = "remove the noncurrent version expiration rule"
        if rules:
            self._do(action, self.s3.set_bucket_lifecycle, self.name, LifecycleConfig(rules))
        else:
            self._do(action, self.s3.delete_bucket_lifecycle, self.name)

    def _block_anonymous_access(self):
        remaining = without_anonymous_statements(self._bucket_policy())
        if remaining:
            self._do("remove anonymous access from the bucket policy", self.s3.set_bucket_policy, self.name,
                     json.dumps(remaining))
        else:
            self._do("delete the bucket policy granting anonymous access", self.s3.delete_bucket_policy, self.name)

    def _do(self, action, function, *args):
        self.actions.append(action)
        if not self.module.check_mode:
            self.call("%s on bucket %s" % (action, self.name), function, *args)

    def delete(self):
        """Delete the bucket; with force, everything in it first. Return the number of deleted versions."""
        with self.errors("list the objects of bucket %s" % self.name):
            versions = [
                DeleteObject(item.object_name, item.version_id)
                for item in self.s3.list_objects(self.name, recursive=True, include_version=True)
            ]
        if versions and not self.module.params["force"]:
            self.module.fail_json(
                msg="Bucket %s is not empty (%d object versions or delete markers): not deleted. Set force=true to "
                    "delete it with everything in it." % (self.name, len(versions)),
                actions=[],
            )
        if versions:
            self.actions.append("delete %d object versions" % len(versions))
            if not self.module.check_mode:
                with self.errors("delete the objects of bucket %s" % self.name):
                    # remove_objects is lazy: it deletes while its error iterator is consumed.
                    failures = list(self.s3.remove_objects(self.name, versions))
                if failures:
                    self.module.fail_json(msg="Could not delete %d objects of bucket %s, first: %s"
                                          % (len(failures), self.name, failures[0]))
        self._do("delete bucket", self.s3.remove_bucket, self.name)
        return len(versions)


def main():
    argument_spec = minio_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        force=dict(type="bool", default=False),
        versioning=dict(type="bool"),
        noncurrent_version_expiration_days=dict(type="int"),
        block_anonymous_access=dict(type="bool", default=True),
        tags=dict(type="dict"),
        managed_by=dict(type="str"),
        adopt=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    name = module.params["name"]
    name_error = bucket_name_error(name)
    if name_error:
        module.fail_json(msg="Invalid bucket name %r: it %s." % (name, name_error))
    days = module.params["noncurrent_version_expiration_days"]
    if days is not None and days < 0:
        module.fail_json(msg="noncurrent_version_expiration_days must be 0 (no rule) or a number of days, got %d"
                         % days)
    try:
        wanted_tags(module.params["tags"], {}, module.params["managed_by"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    manager = BucketManager(module, MinioConnection(module))
    current = manager.read()
    result = {"changed": False}
    if module.params["managed_by"] is not None:
        result["adopted"] = manager.unmarked(current)
        if result["adopted"] and not module.params["adopt"]:
            module.fail_json(
                msg="Bucket %s exists without the tag %s=%s, so it was not created by this caller: it is left as it "
                    "is. Set adopt=true to take it over." % (name, MANAGED_BY_TAG, module.params["managed_by"]))
    if module.params["state"] == "absent":
        after = None
        if current is not None:
            result["deleted_objects"] = manager.delete()
        result["bucket"] = current or {"exists": False}
    else:
        after = manager.wanted(current)
        manager.converge(current, after)
        result["bucket"] = after
    result["actions"] = manager.actions
    result["changed"] = bool(manager.actions)
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {"before": current or {"exists": False}, "after": after or {"exists": False}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
