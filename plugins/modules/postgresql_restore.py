#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postgresql_restore
short_description: Restore a pg_dump archive (custom format) into an empty database
version_added: 0.1.0
description:
  - Checks the archive O(src) first, the way M(mlops.mlflow.postgresql_dump) checks what it writes (C(pg_restore
    --list), then every data block read back), and fails with one line when it is not readable, before connecting.
  - Refuses a database that holds any table, view, sequence or other relation outside the system schemas.
  - Restores with C(pg_restore --no-owner --single-transaction --exit-on-error) as O(login_user), so everything restored
    belongs to that login (connect as the database's owner), and a failure leaves the database as empty as it was.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
extends_documentation_fragment:
  - mlops.mlflow.postgresql
options:
  db:
    description: Database to restore into; it must exist and be empty.
    type: str
    required: true
  src:
    description: The archive, written by C(pg_dump --format=custom).
    type: path
    required: true
attributes:
  check_mode:
    description: Checks the archive and reports the restore it would make, without connecting to the database.
    support: full
  diff_mode:
    description: Nothing to show.
    support: none
notes:
  - Not idempotent by itself; a second run finds the database no longer empty and fails. The database role's restore
    (C(tasks_from=restore)) marks the databases it restored and skips them on the next run.
"""

EXAMPLES = r"""
- name: Check both dumps before anything is dropped
  mlops.mlflow.postgresql_restore:
    db: "{{ item }}"
    src: /var/backups/mlflow/20261202T150000Z/{{ item }}.pgc
  check_mode: true
  loop: [mlflow, mlflow_auth]

- name: Restore the tracking database as its owner
  mlops.mlflow.postgresql_restore:
    login_host: 127.0.0.1
    login_port: 5433
    login_user: mlflow
    login_password: "{{ owner_password }}"
    db: mlflow
    src: /var/backups/mlflow/20261202T150000Z/mlflow.pgc
"""

RETURN = r"""
entries:
  description: Number of entries in the archive's table of contents.
  returned: always
  type: int
  sample: 212
server_version:
  description: Version of the PostgreSQL server the archive was dumped from.
  returned: always
  type: str
  sample: 15.18 (Debian 15.18-0+deb12u1)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mlops.mlflow.plugins.module_utils._postgresql import (
    PostgresqlClient,
    first_error,
    postgresql_argument_spec,
)

# Relations (tables, views, sequences, indexes ...) outside the system schemas.
_RELATIONS = (
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"
)


def main():
    module = AnsibleModule(
        argument_spec=postgresql_argument_spec(
            db=dict(type="str", required=True),
            src=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    db, src = module.params["db"], module.params["src"]
    client = PostgresqlClient(module)
    header = client.verify_archive(src)
    result = dict(changed=True, entries=header["entries"], server_version=header["server_version"])
    if module.check_mode:
        module.exit_json(**result)

    rc, out, stderr = client.run([client.program("psql"), "--no-psqlrc", "--tuples-only", "--no-align",
                                  "--dbname=" + client.conninfo(db), "--command=" + _RELATIONS])
    if rc != 0:
        module.fail_json(msg="Cannot connect to database %s as %s: %s"
                         % (db, module.params["login_user"], first_error(stderr)))
    relations = int(out.strip() or 0)
    if relations:
        module.fail_json(msg="Database %s is not empty (%d relations): pg_restore restores into an empty database "
                             "only; nothing was restored" % (db, relations))
    rc, _out, stderr = client.run([client.program("pg_restore"), "--no-owner", "--single-transaction",
                                   "--exit-on-error", "--dbname=" + client.conninfo(db), src])
    if rc != 0:
        module.fail_json(msg="pg_restore of %s into database %s failed, nothing was restored: %s"
                         % (src, db, first_error(stderr)))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
