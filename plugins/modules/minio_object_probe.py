#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: minio_object_probe
short_description: Check that a MinIO login can write, read back and delete an object in a bucket
version_added: 0.1.0
description:
  - Writes a small object with a unique key under O(prefix), reads it back and compares the bytes, then deletes it.
    This is what MLflow's proxied artifact store needs from its S3 login.
  - Never reports a change (the probe object is gone at the end). In check mode only the bucket is listed.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.minio
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: partial
    details: In check mode the module only lists the bucket (read access), nothing is written.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in diff_mode).
    support: none
options:
  bucket:
    description: Bucket to probe.
    type: str
    required: true
  prefix:
    description: Key prefix of the probe object.
    type: str
    default: mlops-mlflow-probe/
"""

EXAMPLES = r"""
- name: Check that MLflow's MinIO user can use its bucket
  mlops.mlflow.minio_object_probe:
    endpoint: http://127.0.0.1:9000
    access_key: mlflow
    secret_key: "{{ mlflow_s3_secret_key }}"
    bucket: mlflow
"""

RETURN = r"""
key:
  description: Key of the probe object (deleted at the end); empty in check mode.
  returned: always
  type: str
  sample: mlops-mlflow-probe/6f1c2d3e4a5b.txt
steps:
  description: The steps done, in order.
  returned: always
  type: list
  elements: str
  sample: [list, write, read, delete]
"""

import io
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._minio import (
    MinioConnection,
    bucket_name_error,
    minio_argument_spec,
)


def main():
    argument_spec = minio_argument_spec()
    argument_spec.update(
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default="mlops-mlflow-probe/"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    bucket = module.params["bucket"]
    name_error = bucket_name_error(bucket)
    if name_error:
        module.fail_json(msg="Invalid bucket name %r: it %s." % (bucket, name_error))
    connection = MinioConnection(module)
    steps = []

    connection.call("list bucket %s" % bucket, lambda: next(iter(connection.s3.list_objects(bucket)), None))
    steps.append("list")
    if module.check_mode:
        module.exit_json(changed=False, key="", steps=steps)

    key = "%s%s.txt" % (module.params["prefix"], uuid.uuid4().hex)
    payload = ("mlops.mlflow probe %s\n" % key).encode()
    connection.call("write %s/%s" % (bucket, key), connection.s3.put_object, bucket, key, io.BytesIO(payload),
                    len(payload))
    steps.append("write")
    response = connection.call("read %s/%s" % (bucket, key), connection.s3.get_object, bucket, key)
    try:
        read_back = response.read()
    finally:
        response.close()
        response.release_conn()
    steps.append("read")
    connection.call("delete %s/%s" % (bucket, key), connection.s3.remove_object, bucket, key)
    steps.append("delete")
    if read_back != payload:
        module.fail_json(msg="The object read back from %s/%s differs from the one written" % (bucket, key),
                         key=key, steps=steps)
    module.exit_json(changed=False, key=key, steps=steps)


if __name__ == "__main__":
    main()
