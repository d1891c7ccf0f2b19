#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: minio_mirror
short_description: Copy a bucket's objects into a directory, or a directory's files into a bucket
version_added: 0.1.0
description:
  - With O(direction=download), writes every object of O(bucket) (its current version) to O(path)/<key>, creating
    the directories (mode 0700) and files (mode 0600) it needs.
  - With O(direction=upload), puts every regular file below O(path) into O(bucket) under its path relative to
    O(path).
  - A file or object that is there already with the same size and MD5 (the object's ETag) is not copied again, so a
    second run copies nothing. An object uploaded in several parts has an ETag that is no MD5; for it the size alone is
    compared.
  - What it does not copy, either way, is left as it is (nothing is deleted); noncurrent versions, delete markers,
    tags and user metadata of objects are not copied.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.minio
options:
  bucket:
    description: The bucket.
    type: str
    required: true
  path:
    description: The local directory. With O(direction=download) it is created (mode 0700) when missing.
    type: path
    required: true
  direction:
    description: V(download) copies the bucket's objects into O(path), V(upload) copies O(path)'s files into the bucket.
    type: str
    choices: [download, upload]
    required: true
attributes:
  check_mode:
    description: Lists both sides and reports what it would copy, without copying.
    support: full
  diff_mode:
    description: Nothing to show; RV(copied) lists the keys.
    support: none
"""

EXAMPLES = r"""
- name: Copy MLflow's artifacts into a backup
  mlops.mlflow.minio_mirror:
    endpoint: http://127.0.0.1:9000
    access_key: mlops-root
    secret_key: "{{ minio_root_password }}"
    bucket: mlflow
    path: /var/backups/mlflow/20261202T150000Z/objects
    direction: download

- name: Put them back into the bucket
  mlops.mlflow.minio_mirror:
    endpoint: http://127.0.0.1:9000
    access_key: mlops-root
    secret_key: "{{ minio_root_password }}"
    bucket: mlflow
    path: /var/backups/mlflow/20261202T150000Z/objects
    direction: upload
"""

RETURN = r"""
objects:
  description: Number of objects (download) or files (upload) on the source side.
  returned: always
  type: int
  sample: 42
copied:
  description: Keys copied (or, in check mode, to be copied), at most the first 100.
  returned: always
  type: list
  elements: str
  sample: [artifacts/1/0f3c/artifacts/note.txt]
copied_count:
  description: Number of objects or files copied (or to be copied).
  returned: always
  type: int
  sample: 42
copied_bytes:
  description: Bytes copied (or to be copied).
  returned: always
  type: int
  sample: 1048576
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._minio import (
    MinioConnection,
    bucket_name_error,
    minio_argument_spec,
)

LISTED_KEYS = 100


def key_error(key):
    """Why an object key cannot be a file below the directory, or None."""
    segments = key.split("/")
    if key.startswith("/") or key.endswith("/") or "" in segments:
        return "it has an empty path segment (a leading, trailing or doubled /)"
    if "." in segments or ".." in segments:
        return "it has a . or .. path segment"
    return None


def same_content(local, remote):
    """Whether a local file {size, md5} and an object {size, etag} hold the same bytes, as far as the ETag says.

    A multipart upload's ETag is the MD5 of its parts' MD5s followed by -<parts>: only the size can be compared.
    """
    if local is None or remote is None or local["size"] != remote["size"]:
        return False
    etag = remote["etag"].strip('"')
    return "-" in etag or etag == local["md5"]


def file_md5(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_files(root):
    """Key -> absolute path of every regular file below `root` (symbolic links are skipped)."""
    found = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            absolute = os.path.join(directory, name)
            if os.path.isfile(absolute) and not os.path.islink(absolute):
                found[os.path.relpath(absolute, root).replace(os.sep, "/")] = absolute
    return found


def make_private_dirs(root, relative_dir):
    """Create `root` and the directories of `relative_dir` below it that are missing, each with mode 0700."""
    current = root
    for segment in [""] + [part for part in relative_dir.split("/") if part]:
        current = os.path.join(current, segment) if segment else current
        if not os.path.isdir(current):
            os.mkdir(current, 0o700)


def local_state(path):
    if not os.path.isfile(path):
        return None
    return {"size": os.path.getsize(path), "md5": file_md5(path)}


class Mirror:
    def __init__(self, module, connection):
        self.module = module
        self.connection = connection
        self.bucket = module.params["bucket"]
        self.root = module.params["path"]
        self.copied = []
        self.copied_bytes = 0

    def remote_objects(self):
        with self.connection.errors("list the objects of bucket %s" % self.bucket):
            return dict(
                (item.object_name, {"size": item.size, "etag": item.etag or ""})
                for item in self.connection.s3.list_objects(self.bucket, recursive=True)
            )

    def copy(self, key, size, action, function, *args):
        self.copied.append(key)
        self.copied_bytes += size
        if not self.module.check_mode:
            self.connection.call("%s %s/%s" % (action, self.bucket, key), function, *args)

    def download(self):
        remote = self.remote_objects()
        bad = [key for key in remote if key_error(key)]
        if bad:
            self.module.fail_json(msg="Object %r of bucket %s cannot be a file: %s; nothing was copied"
                                  % (bad[0], self.bucket, key_error(bad[0])))
        if not self.module.check_mode:
            if not os.path.isdir(os.path.dirname(self.root.rstrip(os.sep)) or "."):
                self.module.fail_json(msg="The directory above %s does not exist: create it first" % self.root)
            make_private_dirs(self.root, "")
        for key, item in sorted(remote.items()):
            target = os.path.join(self.root, *key.split("/"))
            if same_content(local_state(target), item):
                continue
            if not self.module.check_mode:
                make_private_dirs(self.root, key.rpartition("/")[0])
            self.copy(key, item["size"], "download", self._download, key, target)
        return len(remote)

    def _download(self, key, target):
        self.connection.s3.fget_object(self.bucket, key, target)
        os.chmod(target, 0o600)

    def upload(self):
        if not os.path.isdir(self.root):
            self.module.fail_json(msg="%s is not a directory: nothing to upload" % self.root)
        files = local_files(self.root)
        remote = self.remote_objects()
        for key, absolute in sorted(files.items()):
            local = local_state(absolute)
            if same_content(local, remote.get(key)):
                continue
            self.copy(key, local["size"], "upload", self.connection.s3.fput_object, self.bucket, key, absolute)
        return len(files)


def main():
    argument_spec = minio_argument_spec()
    argument_spec.update(
        bucket=dict(type="str", required=True),
        path=dict(type="path", required=True),
        direction=dict(type="str", choices=["download", "upload"], required=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    bucket = module.params["bucket"]
    name_error = bucket_name_error(bucket)
    if name_error:
        module.fail_json(msg="Invalid bucket name %r: it %s." % (bucket, name_error))
    mirror = Mirror(module, MinioConnection(module))
    objects = mirror.download() if module.params["direction"] == "download" else mirror.upload()
    module.exit_json(changed=bool(mirror.copied), objects=objects, copied=mirror.copied[:LISTED_KEYS],
                     copied_count=len(mirror.copied), copied_bytes=mirror.copied_bytes)


if __name__ == "__main__":
    main()
