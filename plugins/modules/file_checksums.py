#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_checksums
short_description: SHA256 and size of every file below a directory, in one module run
version_added: 0.1.0
description:
  - Walks O(path) and returns, for every regular file below it, its SHA256 and size, keyed by its path relative to
    O(path) (with C(/) as separator). What C(checksum) of M(ansible.builtin.stat) says for one file, for a whole
    tree in one run. Reads only; changes nothing.
  - Symbolic links are neither followed nor listed.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
options:
  path:
    description: Directory to walk.
    type: path
    required: true
  exclude:
    description: Paths relative to O(path) to leave out (for example the manifest that lists the others).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    description: Reads in check mode too (it changes nothing).
    support: full
  diff_mode:
    description: Nothing to show.
    support: none
"""

EXAMPLES = r"""
- name: Checksum every file of a backup but its manifest
  mlops.mlflow.file_checksums:
    path: /var/backups/mlflow/20261202T150000Z
    exclude: [manifest.json]
  register: sums
"""

RETURN = r"""
files:
  description: Each file's path relative to O(path), with its C(sha256) and C(size) in bytes.
  returned: always
  type: dict
  sample: {"mlflow.pgc": {"sha256": "5f2b...e3", "size": 1048576}}
size:
  description: Total size of the files in bytes.
  returned: always
  type: int
  sample: 1048576
"""

import os

from ansible.module_utils.basic import AnsibleModule


def walk(root, exclude):
    """Relative path (with /) -> absolute path of every regular file below `root`, sorted."""
    found = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            absolute = os.path.join(directory, name)
            relative = os.path.relpath(absolute, root).replace(os.sep, "/")
            if relative not in exclude and os.path.isfile(absolute) and not os.path.islink(absolute):
                found[relative] = absolute
    return dict(sorted(found.items()))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            exclude=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    root = module.params["path"]
    if not os.path.isdir(root):
        module.fail_json(msg="%s is not a directory" % root)
    files = dict(
        (relative, {"sha256": module.sha256(absolute), "size": os.path.getsize(absolute)})
        for relative, absolute in walk(root, set(module.params["exclude"])).items()
    )
    module.exit_json(changed=False, files=files, size=sum(item["size"] for item in files.values()))


if __name__ == "__main__":
    main()
