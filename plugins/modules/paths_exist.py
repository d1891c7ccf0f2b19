#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: paths_exist
short_description: Tell which of several paths exist, in one module run
version_added: 0.1.0
description:
  - For each listed path, whether it exists (what C(stat.exists) of M(ansible.builtin.stat) says), in one module
    run for the whole list instead of one per path. Reads only; changes nothing.
  - A symbolic link exists even when its target does not, as with M(ansible.builtin.stat)'s default.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
options:
  paths:
    description: Absolute paths to look for (used as given, without C(~) or variable expansion).
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    description: Reads in check mode too (it changes nothing).
    support: full
  diff_mode:
    description: Nothing to show.
    support: none
"""

EXAMPLES = r"""
- name: Look for the cached downloads
  mlops.mlflow.paths_exist:
    paths:
      - /root/.cache/example/keycloak.zip
      - /root/.cache/example/minio
  register: cached

- name: Download Keycloak unless it is cached
  ansible.builtin.command: /usr/local/bin/download-keycloak
  when: not cached.exists['/root/.cache/example/keycloak.zip']
"""

RETURN = r"""
exists:
  description: Each listed path, as given, and whether it exists.
  returned: always
  type: dict
  sample: {"/root/.cache/example/keycloak.zip": true, "/root/.cache/example/minio": false}
"""

import os

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(paths=dict(type="list", elements="str", required=True)),
        supports_check_mode=True,
    )
    # Keyed by the path as given, so that the task that reads the result finds it under the same string.
    module.exit_json(changed=False, exists={path: os.path.lexists(path) for path in module.params["paths"]})


if __name__ == "__main__":
    main()
