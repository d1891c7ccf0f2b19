# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Connection options and archive checks shared by the postgresql_dump and postgresql_restore modules.

Both run PostgreSQL's client programs (pg_dump, pg_restore, psql): the password goes through PGPASSWORD, never on a
command line; everything else is one libpq connection string.
"""

from __future__ import annotations

import os
import re

# Same names as community.postgresql's, so that one module_defaults dictionary serves both collections' modules.
POSTGRESQL_ARGUMENT_SPEC = dict(
    login_host=dict(type="str", default=""),
    login_port=dict(type="int", default=5432),
    login_user=dict(type="str", default="postgres"),
    login_password=dict(type="str", default="", no_log=True),
    login_unix_socket=dict(type="str", default=""),
    ssl_mode=dict(type="str", default="prefer",
                  choices=["allow", "disable", "prefer", "require", "verify-ca", "verify-full"]),
    connect_params=dict(type="dict", default={}),
    bin_dir=dict(type="path"),
)

_HEADER = re.compile(r"^;\s+(TOC Entries|Dumped from database version|Dumped by pg_dump version|dbname):\s*(.*)$")


def postgresql_argument_spec(**module_options):
    spec = dict(POSTGRESQL_ARGUMENT_SPEC)
    spec.update(module_options)
    return spec


def _quote(value):
    """A libpq connection string value: single-quoted, with backslashes and quotes escaped."""
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "\\'")


def conninfo(params, database):
    """The libpq connection string for `database` (without the password). A Unix socket wins over the host, as in
    community.postgresql."""
    parts = {
        "dbname": database,
        "host": params["login_unix_socket"] or params["login_host"],
        "port": params["login_port"],
        "user": params["login_user"],
        "sslmode": params["ssl_mode"],
    }
    parts.update(params["connect_params"] or {})
    return " ".join("%s=%s" % (key, _quote(value)) for key, value in parts.items() if value not in (None, ""))


def parse_archive_header(listing):
    """The header of `pg_restore --list`: {entries, database, server_version, pg_dump_version} (None when absent)."""
    found = {}
    for line in listing.splitlines():
        match = _HEADER.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip()
        elif found and not line.startswith(";"):
            break
    entries = found.get("TOC Entries", "")
    return {
        "entries": int(entries) if entries.isdigit() else None,
        "database": found.get("dbname"),
        "server_version": found.get("Dumped from database version"),
        "pg_dump_version": found.get("Dumped by pg_dump version"),
    }


_PROGRAM_PREFIX = re.compile(r"^(pg_dump|pg_restore|psql): (error: )?")


def first_error(stderr):
    """The first line pg_dump / pg_restore / psql marked as an error (else the first line), without the program's
    name, for a one-line message."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    chosen = next((line for line in lines if "error:" in line or "FATAL:" in line), lines[0] if lines else "")
    return _PROGRAM_PREFIX.sub("", chosen) or "no message"


class PostgresqlClient:
    """PostgreSQL's client programs for one login, with one-line failures."""

    def __init__(self, module):
        self.module = module
        bin_dir = module.params["bin_dir"]
        self.opt_dirs = [bin_dir] if bin_dir else []
        self.environ = {"PGPASSWORD": module.params["login_password"]} if module.params["login_password"] else {}

    def program(self, name):
        return self.module.get_bin_path(name, required=True, opt_dirs=self.opt_dirs)

    def run(self, argv):
        return self.module.run_command(argv, environ_update=self.environ)

    def conninfo(self, database):
        return conninfo(self.module.params, database)

    def verify_archive(self, path):
        """Check a custom-format archive: its table of contents (pg_restore --list), then every data block
        (pg_restore reads and decompresses the whole archive into /dev/null). Return the header's facts; end the
        module with one line when the archive is not readable."""
        if not os.path.isfile(path):
            self.module.fail_json(msg="Dump %s does not exist" % path)
        pg_restore = self.program("pg_restore")
        rc, listing, stderr = self.run([pg_restore, "--list", path])
        if rc != 0:
            self.module.fail_json(msg="Dump %s is not a readable pg_dump archive: pg_restore --list says %s"
                                  % (path, first_error(stderr)))
        header = parse_archive_header(listing)
        if header["entries"] is None:
            self.module.fail_json(msg="Dump %s has no table of contents that pg_restore --list can read" % path)
        # --list reads only the table of contents: damaged table data shows when it is decompressed.
        rc, _out, stderr = self.run([pg_restore, "--file=" + os.devnull, path])
        if rc != 0:
            self.module.fail_json(msg="Dump %s is damaged: pg_restore cannot read its data back (%s)"
                                  % (path, first_error(stderr)))
        return header
