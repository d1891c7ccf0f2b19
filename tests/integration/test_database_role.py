"""The database role and the database part of playbooks/teardown.yml against the local stack's real PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
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
BACKUP_RESTORE_PLAYBOOK = Path(__file__).parent / "playbooks" / "database_backup_restore.yml"


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

    def configure(self, *args: str, timeout: int = 300, **overrides) -> AnsibleResult:
        return run_playbook("playbooks/database.yml", *self._extra_vars(**overrides), *args, timeout=timeout)

    def configure_and_read_facts(self, **overrides) -> dict:
        facts_file = self.tmp_path / "facts.json"
        result = run_playbook(FACTS_PLAYBOOK, *self._extra_vars(facts_file=str(facts_file), **overrides), timeout=300)
        assert result.returncode == 0, result.output[-4000:]
        return json.loads(facts_file.read_text())

    def teardown(self, *args: str, timeout: int = 300) -> AnsibleResult:
        # Only the database part: the other parts would act on the real deployment's MinIO and Keycloak.
        return run_playbook("playbooks/teardown.yml", "--tags", "database", *self._extra_vars(), *args,
                            timeout=timeout)

    def entry(self, entry: str, **extra) -> AnsibleResult:
        """One of the entry points backup, restore_check and restore."""
        return run_playbook(BACKUP_RESTORE_PLAYBOOK, *self._extra_vars(entry=entry, **extra), timeout=300)

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


MARKER = "managed-by: mlops.mlflow"


def _comments(admin, tracking: str, auth: str, owner: str) -> dict[str, str | None]:
    """The comments (the collection's marker) of the owner role and both databases, by name."""
    rows = _admin_query(
        admin,
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname IN (%s, %s) "
        "UNION ALL SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
        (tracking, auth, owner),
    )
    return dict(rows)


def _is_superuser(admin, role: str) -> bool:
    return _admin_query(admin, "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (role,)) == [(True,)]


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
def scratch_roles(postgresql_admin):
    """Names for roles a test creates by hand; dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        _admin_query(postgresql_admin, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


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
    # What the role creates carries its marker, so a later run or a teardown knows it may manage it.
    assert _comments(admin, deployment.tracking, deployment.auth, deployment.owner) == {
        deployment.tracking: MARKER, deployment.auth: MARKER, deployment.owner: MARKER}
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
    # An object the owner has in another database is kept (handed to the admin).
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


def test_teardown_refuses_databases_in_use_unless_told_to_end_the_sessions(configured):
    # A session as the owner stands for MLflow still running (teardown.yml --tags database skips the server play).
    open_session = configured.connect_as_owner(configured.tracking)

    refused = configured.teardown("-e", "delete_db=true")
    assert refused.returncode != 0
    message = " ".join(refused.output.split())
    assert f"1 session(s) of {configured.owner} connected to {configured.tracking}" in message
    assert "set database_end_sessions=true" in message
    assert _database_names(configured.admin, configured.tracking, configured.auth) == {
        configured.tracking, configured.auth}
    assert not configured.backup_dir.exists(), "the refusal comes before the backup"
    with _cursor(open_session) as cursor:
        cursor.execute("SELECT 1")

        ended = configured.teardown("-e", "delete_db=true", "-e", "database_end_sessions=true")
        assert ended.returncode == 0, ended.output[-4000:]
        with pytest.raises(psycopg2.OperationalError):
            cursor.execute("SELECT 1")
    assert not _database_names(configured.admin, configured.tracking, configured.auth)
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


def test_check_mode_writes_no_password_file(deployment):
    # The doctor runs the role in check mode: a password file written then would be a new password, set by the
    # next site.yml run, and the running MLflow would lose its database.
    result = deployment.configure("--check")
    assert result.returncode == 0, result.output[-4000:]
    assert not deployment.secrets_dir.exists()
    assert not _database_names(deployment.admin, deployment.tracking, deployment.auth)
    assert not _role_exists(deployment.admin, deployment.owner)


@contextmanager
def _silent_server():
    """A loopback port that accepts connections and never answers, like a server hung or behind a black hole."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_server_that_never_answers_fails_within_the_connect_timeout(deployment):
    with _silent_server() as port:
        # Without a connect timeout libpq waits for the answer for ever: the timeouts here end such a run.
        for run in (lambda: deployment.configure("-e", f"database_admin_port={port}", timeout=90),
                    lambda: deployment.teardown("-e", "delete_db=true", "-e", f"database_admin_port={port}",
                                                timeout=90)):
            started = time.monotonic()
            result = run()
            elapsed = time.monotonic() - started
            assert result.returncode != 0
            message = " ".join(result.output.split())
            assert f"Cannot connect to PostgreSQL at 127.0.0.1:{port} as postgres" in message
            assert "timeout expired" in message
            # database_connect_timeout is 10 s; the rest is ansible-playbook starting up.
            assert elapsed < 60, elapsed


def _refusal(result: AnsibleResult) -> str:
    assert result.returncode != 0, result.output[-4000:]
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize(("variable", "prefix"), [("database_tracking_name", "template_"), ("database_owner", "pg_")])
def test_postgresql_own_names_are_refused(deployment, scratch_databases, variable, prefix):
    # Names that PostgreSQL's own would share a rule with, unique so that a failing guard harms nothing shared.
    value = prefix + deployment.tracking
    scratch_databases.append(value)
    message = _refusal(deployment.configure(**{variable: value}))
    assert f"{variable} is {value}, a name PostgreSQL keeps for itself" in message
    assert f"Choose another {variable}." in message
    assert not deployment.secrets_dir.exists()
    assert not _database_names(deployment.admin, deployment.tracking, deployment.auth, value)


def test_the_admin_database_is_refused_as_a_database_of_mlflow(deployment, scratch_databases):
    # scratch_databases after deployment: its database goes first, before the cleanup drops the owner role.
    admin_db = f"{deployment.tracking}_admin"
    scratch_databases.append(admin_db)
    _admin_query(deployment.admin, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(admin_db)))

    message = _refusal(deployment.configure(database_admin_db=admin_db, database_auth_name=admin_db))
    assert f"database_auth_name is {admin_db}, the database the admin login works in (database_admin_db)" in message
    assert "Choose another database_auth_name." in message
    assert _admin_query(deployment.admin, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                        (admin_db,)) == [(deployment.admin.user,)]


def test_the_admin_login_is_refused_as_the_owner(scratch_roles, deployment):
    # A superuser login of its own: the local stack's postgres would be refused for its name already.
    login, password = f"{deployment.owner}_admin", uuid.uuid4().hex
    scratch_roles.append(login)
    _admin_query(deployment.admin, sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
        sql.Identifier(login), sql.Literal(password)))
    as_that_login = {"database_admin_user": login, "database_admin_password": password, "database_owner": login}

    for result in (deployment.configure(**as_that_login),
                   deployment.teardown("-e", "delete_db=true", "-e", json.dumps(as_that_login))):
        message = _refusal(result)
        assert f"database_owner is {login}, the login this role connects as (database_admin_user)" in message
        assert "Set database_owner to a role of its own." in message
    assert _is_superuser(deployment.admin, login)
    assert not _database_names(deployment.admin, deployment.tracking, deployment.auth)


def test_a_superuser_is_refused_as_the_owner(scratch_roles, configured):
    superuser = f"{configured.owner}_su"
    scratch_roles.append(superuser)
    _admin_query(configured.admin, sql.SQL("CREATE ROLE {} SUPERUSER").format(sql.Identifier(superuser)))

    for result in (configured.configure(database_owner=superuser),
                   configured.teardown("-e", "delete_db=true", "-e", f"database_owner={superuser}")):
        message = _refusal(result)
        assert f"database_owner {superuser} is a superuser" in message
        assert "Set database_owner to a role of its own." in message
    assert _is_superuser(configured.admin, superuser)
    assert _database_names(configured.admin, configured.tracking, configured.auth) == {
        configured.tracking, configured.auth}


@pytest.mark.parametrize("made_by_hand", ["database", "role"])
def test_a_database_or_role_the_collection_did_not_create_is_adopted_only_on_request(deployment, made_by_hand):
    admin = deployment.admin
    if made_by_hand == "database":
        name, kind = deployment.tracking, "Database"
        _admin_query(admin, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    else:
        name, kind = deployment.owner, "Role"
        _admin_query(admin, sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))

    message = _refusal(deployment.configure())
    assert f"{kind} {name} exists without the comment '{MARKER}'" in message
    assert "Set database_adopt_existing=true to take it over" in message
    assert _comments(admin, deployment.tracking, deployment.auth, deployment.owner) == {name: None}
    assert not deployment.secrets_dir.exists()

    adopted = deployment.configure(database_adopt_existing=True)
    assert adopted.returncode == 0, adopted.output[-4000:]
    assert _comments(admin, deployment.tracking, deployment.auth, deployment.owner) == {
        deployment.tracking: MARKER, deployment.auth: MARKER, deployment.owner: MARKER}
    again = deployment.configure()
    assert again.returncode == 0, again.output[-4000:]
    assert again.recap()["changed"] == 0, again.output[-4000:]


def test_teardown_refuses_databases_the_collection_did_not_create(deployment):
    admin = deployment.admin
    for database in (deployment.tracking, deployment.auth):
        _admin_query(admin, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))

    message = _refusal(deployment.teardown("-e", "delete_db=true"))
    assert f"Database {deployment.auth} exists without the comment '{MARKER}'" in message
    assert "Set database_adopt_existing=true" in message
    assert _database_names(admin, deployment.tracking, deployment.auth) == {deployment.tracking, deployment.auth}
    assert not deployment.backup_dir.exists()


def _fill(deployment: Deployment) -> None:
    """A table of two rows in each database, made by the owner as MLflow makes its tables."""
    for database, table in ((deployment.tracking, "runs"), (deployment.auth, "users")):
        with _cursor(deployment.connect_as_owner(database)) as cursor:
            cursor.execute(sql.SQL("CREATE TABLE {} (id int, name text)").format(sql.Identifier(table)))
            cursor.execute(sql.SQL("INSERT INTO {} VALUES (1, 'a'), (2, 'b')").format(sql.Identifier(table)))


def _rows_and_owner(deployment: Deployment, database: str, table: str) -> tuple[list, str]:
    with _cursor(deployment.connect_as_owner(database)) as cursor:
        cursor.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table)))
        rows = cursor.fetchall()
        cursor.execute("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = %s", (table,))
        return rows, cursor.fetchone()[0]


def _backup(deployment: Deployment) -> dict:
    facts_file = deployment.tmp_path / "backup.json"
    result = deployment.entry("backup", facts_file=str(facts_file))
    assert result.returncode == 0, result.output[-4000:]
    return json.loads(facts_file.read_text())


def test_backup_then_restore_as_the_owner_and_a_second_restore_changes_nothing(configured):
    _fill(configured)
    info = _backup(configured)
    backup = Path(info["path"])
    assert backup.parent == configured.backup_dir and backup.stat().st_mode & 0o777 == 0o700
    assert {path.name for path in backup.iterdir()} == {f"{configured.tracking}.pgc", f"{configured.auth}.pgc"}
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in backup.iterdir())
    assert info["tracking"]["name"] == configured.tracking and info["tracking"]["entries"] > 0
    assert info["tracking"]["schema_revision"] == "", "no alembic_version table in these databases"
    assert info["server_version"].startswith("15.")

    # Recorded after the backup: the restore takes it away again.
    with _cursor(configured.connect_as_owner(configured.tracking)) as cursor:
        cursor.execute("INSERT INTO runs VALUES (3, 'c')")
    restore = {"database_restore_tracking_file": str(backup / f"{configured.tracking}.pgc"),
               "database_restore_auth_file": str(backup / f"{configured.auth}.pgc"),
               "database_restore_id": "backup-1"}
    restored = configured.entry("restore", **restore)
    assert restored.returncode == 0, restored.output[-4000:]
    for database, table in ((configured.tracking, "runs"), (configured.auth, "users")):
        assert _rows_and_owner(configured, database, table) == ([(1, "a"), (2, "b")], configured.owner)
    assert _comments(configured.admin, configured.tracking, configured.auth, configured.owner) == {
        configured.tracking: MARKER, configured.auth: MARKER, configured.owner: MARKER}

    again = configured.entry("restore", **restore)
    assert again.returncode == 0, again.output[-4000:]
    assert again.recap()["changed"] == 0, again.output[-4000:]
    checked = configured.entry("restore_check", **restore)
    assert checked.returncode == 0 and checked.recap()["changed"] == 0, checked.output[-4000:]


def test_a_damaged_dump_is_refused_before_anything_is_dropped(configured):
    _fill(configured)
    backup = Path(_backup(configured)["path"])
    damaged = configured.tmp_path / "damaged.pgc"
    # The last bytes cut off: table data (the archive ends with it), which pg_restore --list never reads.
    damaged.write_bytes((backup / f"{configured.tracking}.pgc").read_bytes()[:-16])
    restore = {"database_restore_tracking_file": str(damaged),
               "database_restore_auth_file": str(backup / f"{configured.auth}.pgc"),
               "database_restore_id": "backup-1"}
    for entry in ("restore_check", "restore"):
        refused = configured.entry(entry, **restore)
        assert refused.returncode != 0
        assert f"Dump {damaged} is damaged: pg_restore cannot read its data back" in " ".join(refused.output.split())
        assert _rows_and_owner(configured, configured.tracking, "runs") == ([(1, "a"), (2, "b")], configured.owner)
