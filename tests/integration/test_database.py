"""The database role and the database part of playbooks/teardown.yml against the local stack's real PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.errors
import pytest
from psycopg2 import sql

from tests.ansible_runner import AnsibleResult, run_playbook

pytestmark = pytest.mark.postgres

FACTS_PLAYBOOK = Path(__file__).parent / "playbooks" / "database_facts.yml"


@dataclass
class Deployment:
    """One deployment of the role under unique names, with its secrets and backups in tmp_path."""

    admin: object
    tmp_path: Path
    tracking: str
    auth: str
    owner: str

    @property
    def secrets_dir(self) -> Path:
        return self.tmp_path / "secrets"

    @property
    def backup_dir(self) -> Path:
        return self.tmp_path / "backups"

    @property
    def password_file(self) -> Path:
        return self.secrets_dir / "database_owner_password"

    def _extra_vars(self, **overrides) -> list[str]:
        extra = {
            "database_tracking_name": self.tracking,
            "database_auth_name": self.auth,
            "database_owner": self.owner,
            "database_secrets_dir": str(self.secrets_dir),
            "database_backup_dir": str(self.backup_dir),
            **overrides,
        }
        return ["-e", json.dumps(extra)]

    def configure(self, *args: str, **overrides) -> AnsibleResult:
        return run_playbook("playbooks/database.yml", *self._extra_vars(**overrides), *args, timeout=300)

    def configure_and_read_facts(self, **overrides) -> dict:
        facts_file = self.tmp_path / "facts.json"
        result = run_playbook(FACTS_PLAYBOOK, *self._extra_vars(facts_file=str(facts_file), **overrides), timeout=300)
        assert result.returncode == 0, result.output[-4000:]
        return json.loads(facts_file.read_text())

    def teardown(self, *args: str) -> AnsibleResult:
        # Only the database part: the other parts would act on the real deployment's MinIO and Keycloak.
        return run_playbook("playbooks/teardown.yml", "--tags", "database", *self._extra_vars(), *args, timeout=300)

    def owner_password(self) -> str:
        return self.password_file.read_text().strip()

    def connect_as_owner(self, database: str):
        return _connect(self.admin, database, user=self.owner, password=self.owner_password())


@contextmanager
def _cursor(connection):
    """An autocommit cursor that closes its connection ("with connection" would open a transaction)."""
    try:
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def _connect(admin, database: str, user: str | None = None, password: str | None = None):
    connection = psycopg2.connect(
        host=admin.host,
        port=admin.port,
        user=user or admin.user,
        password=password if user else admin.password,
        dbname=database,
        connect_timeout=10,
    )
    connection.autocommit = True
    return connection


def _admin_query(admin, query, params=(), database: str = "postgres") -> list[tuple]:
    with _cursor(_connect(admin, database)) as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _database_names(admin, *names: str) -> set[str]:
    rows = _admin_query(admin, "SELECT datname FROM pg_database WHERE datname = ANY(%s)", (list(names),))
    return {row[0] for row in rows}


def _role_exists(admin, role: str) -> bool:
    return bool(_admin_query(admin, "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)))


def _drop_everything(admin, databases: list[str], role: str) -> None:
    """Cleanup that does not rely on the role under test."""
    for database in databases:
        _admin_query(admin, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    if _role_exists(admin, role):
        for (database,) in _admin_query(admin, "SELECT datname FROM pg_database WHERE datallowconn"):
            _admin_query(admin, sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)), database=database)
        _admin_query(admin, sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def scratch_databases(postgresql_admin):
    """Names for extra databases a test creates; dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        _admin_query(postgresql_admin, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def deployment(postgresql_admin, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    deployed = Deployment(
        admin=postgresql_admin,
        tmp_path=tmp_path,
        tracking=f"mlflow_t{suffix}",
        auth=f"mlflow_a{suffix}",
        owner=f"mlflow_o{suffix}",
    )
    yield deployed
    _drop_everything(postgresql_admin, [deployed.tracking, deployed.auth], deployed.owner)


@pytest.fixture
def configured(deployment):
    result = deployment.configure()
    assert result.returncode == 0, result.output[-4000:]
    return deployment


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_creates_everything_from_nothing_and_a_second_run_changes_nothing(deployment):
    admin = deployment.admin
    assert not _database_names(admin, deployment.tracking, deployment.auth)
    assert not _role_exists(admin, deployment.owner)

    first = deployment.configure()
    assert first.returncode == 0, first.output[-4000:]
    assert first.recap()["changed"] > 0

    attributes = _admin_query(
        admin,
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
        (deployment.owner,),
    )
    assert attributes == [(True, False, False, False)]
    owners = _admin_query(
        admin,
        "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname IN (%s, %s) ORDER BY datname",
        (deployment.tracking, deployment.auth),
    )
    assert sorted(owners) == sorted([(deployment.tracking, deployment.owner), (deployment.auth, deployment.owner)])
    assert stat.S_IMODE(deployment.password_file.stat().st_mode) == 0o600
    password_before = deployment.password_file.read_bytes()
    mtime_before = deployment.password_file.stat().st_mtime_ns

    second = deployment.configure()
    assert second.returncode == 0, second.output[-4000:]
    assert second.recap()["changed"] == 0, second.output[-4000:]
    assert deployment.password_file.read_bytes() == password_before
    assert deployment.password_file.stat().st_mtime_ns == mtime_before
    # The password in the file is the one PostgreSQL accepts.
    deployment.connect_as_owner(deployment.tracking).close()


def test_the_owner_creates_tables_in_both_databases_but_no_database_or_role(configured):
    for database in (configured.tracking, configured.auth):
        with _cursor(configured.connect_as_owner(database)) as cursor:
            cursor.execute("CREATE TABLE public.experiments (id int PRIMARY KEY, name text)")
            cursor.execute("INSERT INTO public.experiments VALUES (1, 'first')")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(f"{configured.owner}_x")))
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(f"{configured.owner}_x")))


def test_the_published_uris_connect_as_the_owner(deployment):
    facts = deployment.configure_and_read_facts()
    password = deployment.owner_password()
    assert facts["owner"] == deployment.owner
    assert facts["owner_password"] == password
    assert (facts["server_host"], facts["server_port"]) == ("127.0.0.1", 5433)
    prefix = f"postgresql+psycopg2://{deployment.owner}:{password}@127.0.0.1:5433/"
    assert facts["tracking_uri"] == prefix + deployment.tracking
    assert facts["auth_uri"] == prefix + deployment.auth
    for uri, database in ((facts["tracking_uri"], deployment.tracking), (facts["auth_uri"], deployment.auth)):
        # libpq reads the same URI without SQLAlchemy's driver suffix.
        with _cursor(psycopg2.connect(uri.replace("+psycopg2", ""), connect_timeout=10)) as cursor:
            cursor.execute("SELECT current_user, current_database()")
            assert cursor.fetchone() == (deployment.owner, database)


def test_the_server_address_for_mlflow_can_differ_from_the_admin_address(deployment):
    facts = deployment.configure_and_read_facts(
        database_server_host="pg-rw.databases.svc", database_server_port=5432
    )
    assert (facts["server_host"], facts["server_port"]) == ("pg-rw.databases.svc", 5432)
    assert facts["tracking_uri"].endswith(f"@pg-rw.databases.svc:5432/{deployment.tracking}")


def test_teardown_without_delete_db_keeps_the_data(configured):
    with _cursor(configured.connect_as_owner(configured.tracking)) as cursor:
        cursor.execute("CREATE TABLE runs (id int)")
        cursor.execute("INSERT INTO runs VALUES (42)")

    result = configured.teardown()
    assert result.returncode == 0, result.output[-4000:]
    assert result.recap()["changed"] == 0
    assert f"Keeping databases {configured.tracking} and {configured.auth} and role {configured.owner}" in " ".join(
        result.output.split()
    )
    with _cursor(configured.connect_as_owner(configured.tracking)) as cursor:
        cursor.execute("SELECT id FROM runs")
        assert cursor.fetchall() == [(42,)]
    assert not configured.backup_dir.exists()


def _restore_rows(admin, dump: Path, scratch: str, table: str) -> list[tuple]:
    _admin_query(admin, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    # --no-owner: the dump's owner role is gone by now.
    restore = subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--host={admin.host}", f"--port={admin.port}",
         f"--username={admin.user}", f"--dbname={scratch}", str(dump)],
        env=dict(os.environ, PGPASSWORD=admin.password),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert restore.returncode == 0, restore.stderr
    return _admin_query(admin, sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table)), database=scratch)


def test_teardown_with_delete_db_backs_up_then_drops_everything_and_a_second_run_is_a_no_op(
    configured, scratch_databases
):
    admin = configured.admin
    for database, table in ((configured.tracking, "runs"), (configured.auth, "users")):
        with _cursor(configured.connect_as_owner(database)) as cursor:
            cursor.execute(sql.SQL("CREATE TABLE {} (id int, name text)").format(sql.Identifier(table)))
            cursor.execute(sql.SQL("INSERT INTO {} VALUES (1, 'a'), (2, 'b')").format(sql.Identifier(table)))
    # An open session is ended by the drop; an object the owner has in another database is kept (handed to the admin).
    open_session = configured.connect_as_owner(configured.tracking)
    elsewhere = f"{configured.owner}_elsewhere"
    scratch_databases.append(elsewhere)
    _admin_query(admin, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(elsewhere)))
    _admin_query(admin, sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(configured.owner)),
                 database=elsewhere)
    _admin_query(admin, sql.SQL("CREATE TABLE kept (id int)"), database=elsewhere)
    _admin_query(admin, sql.SQL("ALTER TABLE kept OWNER TO {}").format(sql.Identifier(configured.owner)),
                 database=elsewhere)

    result = configured.teardown("-e", "delete_db=true")
    assert result.returncode == 0, result.output[-4000:]
    with pytest.raises(psycopg2.OperationalError):
        open_session.cursor().execute("SELECT 1")
    open_session.close()

    backups = list(configured.backup_dir.iterdir())
    assert len(backups) == 1, backups
    for database, table in ((configured.tracking, "runs"), (configured.auth, "users")):
        dump = backups[0] / f"{database}.pgc"
        assert dump.is_file()
        scratch = f"{database}_restored"
        scratch_databases.append(scratch)
        assert _restore_rows(admin, dump, scratch, table) == [(1, "a"), (2, "b")]

    assert not _database_names(admin, configured.tracking, configured.auth)
    assert not _role_exists(admin, configured.owner)
    assert _admin_query(admin, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'kept'",
                        database=elsewhere) == [(admin.user,)]

    again = configured.teardown("-e", "delete_db=true")
    assert again.returncode == 0, again.output[-4000:]
    assert again.recap()["changed"] == 0, again.output[-4000:]
    assert again.recap()["failed"] == 0
    assert len(list(configured.backup_dir.iterdir())) == 1


def test_teardown_with_backup_false_says_no_backup_is_taken(configured):
    result = configured.teardown("-e", "delete_db=true", "-e", "backup=false")
    assert result.returncode == 0, result.output[-4000:]
    assert "NO BACKUP is taken" in result.output
    assert not configured.backup_dir.exists()
    assert not _database_names(configured.admin, configured.tracking, configured.auth)
    assert not _role_exists(configured.admin, configured.owner)


def test_a_wrong_admin_password_gives_one_clear_message(deployment):
    result = deployment.configure(database_admin_password="not-the-password")
    assert result.returncode != 0
    assert result.recap()["failed"] == 1
    message = " ".join(result.output.split())
    assert "Cannot connect to PostgreSQL at 127.0.0.1:5433 as postgres (database postgres)" in message
    assert "password authentication failed" in message
    assert "database_admin_password" in message
    assert "Fail when PostgreSQL cannot be reached as the admin login" in message
    assert "Traceback" not in result.output
    assert not deployment.password_file.exists()


def test_a_server_that_is_down_gives_one_clear_message(deployment):
    port = _free_port()
    result = deployment.configure(database_admin_port=port)
    assert result.returncode != 0
    message = " ".join(result.output.split())
    assert f"Cannot connect to PostgreSQL at 127.0.0.1:{port} as postgres" in message
    assert "Check that the server runs and listens there" in message
    teardown = deployment.teardown("-e", "delete_db=true", "-e", f"database_admin_port={port}")
    assert teardown.returncode != 0
    assert f"Cannot connect to PostgreSQL at 127.0.0.1:{port} as postgres" in " ".join(teardown.output.split())


def test_no_password_in_verbose_output(deployment):
    configure = deployment.configure("-vvv")
    assert configure.returncode == 0, configure.output[-4000:]
    teardown = deployment.teardown("-vvv", "-e", "delete_db=true")
    assert teardown.returncode == 0, teardown.output[-4000:]
    for secret in (deployment.owner_password(), deployment.admin.password):
        assert secret not in configure.output
        assert secret not in teardown.output
