#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgresql_dump
short_description: Write a verified pg_dump of one database (custom format)
version_added: 0.1.0
description:
  - Runs C(pg_dump --format=custom) of O(db) into a temporary file beside O(dest), checks it (C(pg_restore --list)
    reads its table of contents, then C(pg_restore) reads every data block back into C(/dev/null)), and only then
    renames it to O(dest). A failed or damaged dump never takes the name of a good one, and the temporary file is
    removed.
  - An O(dest) that exists already is checked the same way and kept (no new dump, no change).
  - Restore the file with M(mlops.mlflow.postgresql_restore) or C(pg_restore).
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.postgresql
options:
  db:
    description: Database to dump.
    type: str
    required: true
  dest:
    description: File to write. Its directory must exist.
    type: path
    required: true
  mode:
    description: Permissions of the dump (it holds all the database's data).
    type: raw
    default: "0600"
attributes:
  check_mode:
    description: Reports whether it would write the dump, without connecting; an existing O(dest) is checked.
    support: full
  diff_mode:
    description: Nothing to show (a binary file).
    support: none
"""

EXAMPLES = r"""
- name: Dump the tracking database
  mlops.mlflow.postgresql_dump:
    login_host: 127.0.0.1
    login_port: 5433
    login_user: postgres
    login_password: "{{ postgres_password }}"
    connect_params:
      connect_timeout: 10
    db: mlflow
    dest: /var/backups/mlflow/20261202T150000Z/mlflow.pgc
  register: dump

- name: Say how large it is
  ansible.builtin.debug:
    msg: "{{ dump.dest }}: {{ dump.size }} bytes, {{ dump.entries }} entries, sha256 {{ dump.sha256 }}"
"""

RETURN = r"""
dest:
  description: The dump's path.
  returned: always
  type: str
  sample: /var/backups/mlflow/20261202T150000Z/mlflow.pgc
size:
  description: Size of the dump in bytes; 0 in check mode when it is still to be written.
  returned: always
  type: int
  sample: 1048576
sha256:
  description: SHA256 of the dump; empty in check mode when it is still to be written.
  returned: always
  type: str
  sample: 5f2b...e3
entries:
  description: Number of entries in the dump's table of contents (tables, their data, indexes ...).
  returned: when the dump exists
  type: int
  sample: 212
server_version:
  description: Version of the PostgreSQL server the dump was taken from, as pg_dump wrote it.
  returned: when the dump exists
  type: str
  sample: 15.18 (Debian 15.18-0+deb12u1)
pg_dump_version:
  description: Version of the pg_dump that wrote it.
  returned: when the dump exists
  type: str
  sample: 15.18 (Debian 15.18-0+deb12u1)
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._postgresql import (
    PostgresqlClient,
    first_error,
    postgresql_argument_spec,
)


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def main():
    module = AnsibleModule(
        argument_spec=postgresql_argument_spec(
            db=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            mode=dict(type="raw", default="0600"),
        ),
        supports_check_mode=True,
    )
    db, dest = module.params["db"], module.params["dest"]
    client = PostgresqlClient(module)

    if os.path.exists(dest):
        module.exit_json(**written(module, dest, client.verify_archive(dest), changed=False))
    # In check mode the directory may be one the run would have created.
    if module.check_mode:
        module.exit_json(changed=True, dest=dest, size=0, sha256="")
    if not os.path.isdir(os.path.dirname(dest) or "."):
        module.fail_json(msg="The directory of %s does not exist: create it first" % dest)

    partial = dest + ".partial"
    remove(partial)
    # The file is created private before pg_dump writes a byte of data into it.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        rc, _out, stderr = client.run([client.program("pg_dump"), "--format=custom", "--file=" + partial,
                                       "--dbname=" + client.conninfo(db)])
        if rc != 0:
            module.fail_json(msg="pg_dump of database %s failed: %s" % (db, first_error(stderr)))
        header = client.verify_archive(partial)
        module.set_mode_if_different(partial, module.params["mode"], False)
        os.rename(partial, dest)
    finally:
        remove(partial)
    module.exit_json(**written(module, dest, header, changed=True))


def written(module, dest, header, changed):
    """The module's result for the dump at `dest`, whose archive header is `header`."""
    result = dict((key, header[key]) for key in ("entries", "server_version", "pg_dump_version"))
    result.update(changed=changed, dest=dest, size=os.path.getsize(dest), sha256=module.sha256(dest))
    return result


if __name__ == "__main__":
    main()
