# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by the PostgreSQL modules (defined in module_utils/_postgresql.py)."""

    DOCUMENTATION = r"""
options:
  login_host:
    description: Host name or address of the PostgreSQL server. Empty with O(login_unix_socket) or for libpq's default.
    type: str
    default: ""
  login_port:
    description: Port of the PostgreSQL server.
    type: int
    default: 5432
  login_user:
    description: Login to connect as.
    type: str
    default: postgres
  login_password:
    description: Password of O(login_user), given to the client programs as C(PGPASSWORD) (never on a command line).
    type: str
    default: ""
  login_unix_socket:
    description: Directory of the server's Unix socket; when set it is used instead of O(login_host).
    type: str
    default: ""
  ssl_mode:
    description: libpq C(sslmode) of the connection.
    type: str
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
    default: prefer
  connect_params:
    description:
      - More libpq connection parameters, for example C(connect_timeout=10) as a dictionary, so that an
        unreachable server fails in seconds.
    type: dict
    default: {}
  bin_dir:
    description:
      - Directory of C(pg_dump), C(pg_restore) and C(psql), searched before E(PATH), for example
        V(/usr/lib/postgresql/15/bin). They must be at least as new as the server.
    type: path
requirements:
  - PostgreSQL's client programs (C(pg_dump), C(pg_restore), C(psql); Debian's C(postgresql-client)) on the host that
    runs the module
notes:
  - The option names are community.postgresql's, so one C(module_defaults) dictionary serves both collections'
    modules.
"""
