"""Pure logic of module_utils/_postgresql.py: connection strings, the archive header, pg_* error lines."""

from __future__ import annotations

import pytest

from ansible_collections.mlops.mlflow.plugins.module_utils._postgresql import (
    POSTGRESQL_ARGUMENT_SPEC,
    conninfo,
    first_error,
    parse_archive_header,
)

pytestmark = pytest.mark.unit

LISTING = """;
; Archive created at 2026-12-02 15:09:39 UTC
;     dbname: mlflow
;     TOC Entries: 212
;     Compression: -1
;     Dump Version: 1.14-0
;     Format: CUSTOM
;     Dumped from database version: 15.18 (Debian 15.18-0+deb12u1)
;     Dumped by pg_dump version: 15.18 (Debian 15.18-0+deb12u1)
;
;
; Selected TOC Entries:
;
214; 1259 16385 TABLE public experiments mlflow
"""


def params(**overrides):
    values = {name: spec.get("default") for name, spec in POSTGRESQL_ARGUMENT_SPEC.items()}
    values.update(overrides)
    return values


def test_conninfo_quotes_every_value_and_leaves_the_password_out():
    info = conninfo(params(login_host="127.0.0.1", login_port=5433, login_user="o'brien", login_password="secret",
                           connect_params={"connect_timeout": 10}), "my db")
    assert info == ("dbname='my db' host='127.0.0.1' port='5433' user='o\\'brien' sslmode='prefer' "
                    "connect_timeout='10'")
    assert "secret" not in info


def test_conninfo_prefers_the_unix_socket_and_drops_empty_values():
    info = conninfo(params(login_host="127.0.0.1", login_unix_socket="/run/postgresql"), "mlflow")
    assert "host='/run/postgresql'" in info and "127.0.0.1" not in info
    assert "host=''" not in conninfo(params(), "mlflow")


def test_conninfo_escapes_backslashes():
    assert "user='a\\\\b'" in conninfo(params(login_user="a\\b"), "mlflow")


def test_parse_archive_header():
    assert parse_archive_header(LISTING) == {
        "entries": 212,
        "database": "mlflow",
        "server_version": "15.18 (Debian 15.18-0+deb12u1)",
        "pg_dump_version": "15.18 (Debian 15.18-0+deb12u1)",
    }


def test_parse_archive_header_without_a_table_of_contents():
    assert parse_archive_header("")["entries"] is None


@pytest.mark.parametrize(
    ("stderr", "line"),
    [
        ("pg_restore: error: could not uncompress data: incorrect data check\n",
         "could not uncompress data: incorrect data check"),
        ("pg_dump: error: connection to server failed: FATAL:  database \"x\" does not exist\n",
         "connection to server failed: FATAL:  database \"x\" does not exist"),
        ("pg_restore: warning: something\npg_restore: error: input file is too short\n", "input file is too short"),
        ("psql: something odd\n", "something odd"),
        ("", "no message"),
    ],
)
def test_first_error(stderr, line):
    assert first_error(stderr) == line
