#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: directories
short_description: Ensure several directories with their owner, group and mode in one module run
version_added: 0.1.0
description:
  - For each listed directory, what M(ansible.builtin.file) does with O(ignore:state=directory), in one module run
    for the whole list instead of one per directory; the directories are handled in the order given.
  - A missing directory is created, with its missing parents; the parents get the default mode and the owner of the
    module's user (list them to set theirs).
  - Fails, before changing anything, when a listed path exists and is not a directory.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
options:
  directories:
    description: The directories.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the directory.
        type: path
        required: true
      owner:
        description: Name of the user that should own the directory; unset leaves it as it is.
        type: str
      group:
        description: Name of the group that should own the directory; unset leaves it as it is.
        type: str
      mode:
        description:
          - Permissions of the directory, as an octal string (V("0700")) or a symbolic mode (V(u=rwx,go=)), as in
            M(ansible.builtin.file); unset leaves them as they are.
        type: raw
attributes:
  check_mode:
    description: Reports the directories it would create or change without touching them.
    support: full
  diff_mode:
    description: Returns, for each directory it changes, its state, owner, group and mode before and after.
    support: full
"""

EXAMPLES = r"""
- name: Create the state directories
  mlops.mlflow.directories:
    directories:
      - {path: /var/lib/example, owner: root, group: root, mode: "0755"}
      - {path: /var/lib/example/minio, owner: minio, group: minio, mode: "0700"}
"""

RETURN = r"""
changed_paths:
  description: The listed directories that were created or changed (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/var/lib/example/minio]
"""

import os

from ansible.module_utils.basic import AnsibleModule


def create(module, path):
    """Create `path` and its missing parents (nothing in check mode); fail in one line when the system refuses."""
    if module.check_mode:
        return
    try:
        os.makedirs(path)
    except OSError as error:
        module.fail_json(msg="Cannot create the directory %s: %s" % (path, error.strerror or error))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    path=dict(type="path", required=True),
                    owner=dict(type="str"),
                    group=dict(type="str"),
                    mode=dict(type="raw"),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    directories = module.params["directories"]
    not_directories = [entry["path"] for entry in directories
                       if os.path.lexists(entry["path"]) and not os.path.isdir(entry["path"])]
    if not_directories:
        module.fail_json(msg="Not a directory, refusing to replace: %s" % ", ".join(not_directories))

    changed_paths, before, after = [], {}, {}
    for entry in directories:
        path = entry["path"]
        diff = {"before": {"path": path}, "after": {"path": path}}
        created = not os.path.exists(path)
        if created:
            diff["before"]["state"], diff["after"]["state"] = "absent", "directory"
            create(module, path)
        # The attribute helpers of AnsibleModule (what ansible.builtin.file uses): they honour check mode and fill
        # the diff; in check mode a directory still to be created counts as changed.
        if module.set_fs_attributes_if_different(module.load_file_common_arguments(entry), created, diff):
            changed_paths.append(path)
            before[path], after[path] = diff["before"], diff["after"]
    module.exit_json(changed=bool(changed_paths), changed_paths=changed_paths, diff=dict(before=before, after=after))


if __name__ == "__main__":
    main()
