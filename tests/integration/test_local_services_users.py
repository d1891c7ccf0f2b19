"""No local service runs as root: each runs as a system user that owns its state directory and nothing else."""

from __future__ import annotations

import io
import pwd
import shutil
import stat
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from minio import Minio

from tests.ansible_runner import run_playbook
from tests.stack_layout import SECRETS_DIR, STATE_DIR
from tests.keycloak_api import realm_admin

pytestmark = pytest.mark.harness

SERVICES = ("keycloak", "minio")


def supervisorctl(local_stack, *args) -> str:
    supervisor = local_stack["supervisor"]
    return subprocess.run(
        [supervisor["supervisorctl"], "-c", supervisor["config"], *args],
        capture_output=True, text=True, timeout=120, check=False,
    ).stdout


def program_users(local_stack, program) -> set[str]:
    """Real, effective, saved and file-system users of every process of a supervised program (its process group)."""
    status = supervisorctl(local_stack, "status", program)
    assert "RUNNING" in status, status
    group = int(status.split("pid ")[1].split(",")[0])
    users = set()
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if int((process / "stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            uids = next(line for line in (process / "status").read_text().splitlines() if line.startswith("Uid:"))
        except (FileNotFoundError, ProcessLookupError):
            continue
        users |= {pwd.getpwuid(int(uid)).pw_name for uid in uids.split()[1:]}
    return users


def as_user(user, *command) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user, "--", *command], capture_output=True, text=True, timeout=30,
                          check=False, cwd="/")


def owner(path) -> str:
    return pwd.getpwuid(Path(path).stat().st_uid).pw_name


def mode(path) -> int:
    return stat.S_IMODE(Path(path).stat().st_mode)


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_runs_as_a_system_user_of_its_own(local_stack, service):
    user = local_stack[service]["user"]
    account = pwd.getpwnam(user)
    assert user != "root" and account.pw_uid < 1000, "a system user"
    assert account.pw_shell == "/usr/sbin/nologin"
    assert program_users(local_stack, service) == {user}


def test_postgresql_runs_as_postgres(local_stack):
    assert program_users(local_stack, "postgresql") == {"postgres"}


@pytest.mark.parametrize("service", SERVICES)
def test_the_state_directory_is_private_to_its_service(local_stack, service):
    user, state_dir = local_stack[service]["user"], Path(local_stack[service]["state_dir"])
    assert (owner(state_dir), mode(state_dir)) == (user, 0o700)
    assert (owner(state_dir.parent), mode(state_dir.parent)) == ("root", 0o755)
    assert {owner(path) for path in state_dir.rglob("*")} == {user}


def test_the_services_read_neither_the_secrets_nor_each_others_state(local_stack):
    secrets = SECRETS_DIR
    assert (owner(secrets), mode(secrets)) == ("root", 0o700)
    keycloak, minio = local_stack["keycloak"], local_stack["minio"]
    for user in (keycloak["user"], minio["user"]):
        assert as_user(user, "cat", str(secrets / "minio_root_password")).returncode != 0
        assert as_user(user, "ls", str(STATE_DIR)).returncode != 0
    assert as_user(keycloak["user"], "ls", minio["state_dir"]).returncode != 0
    assert as_user(minio["user"], "ls", keycloak["state_dir"]).returncode != 0


def test_minio_can_run_its_program_but_not_change_it(local_stack):
    program = Path(f"/proc/{supervisorctl(local_stack, 'pid', 'minio').strip()}/exe").resolve()
    assert (owner(program), mode(program)) == ("root", 0o755)
    assert as_user(local_stack["minio"]["user"], "test", "-w", str(program)).returncode != 0


def keycloak_admin_id(keycloak_admin) -> str:
    """The id of Keycloak's admin user, through a fresh login."""
    user_id = realm_admin(keycloak_admin, keycloak_admin.realm).get_user_id(keycloak_admin.user)
    assert user_id, f"no user {keycloak_admin.user} in realm {keycloak_admin.realm}"
    return user_id


def test_a_deployment_made_as_root_is_moved_to_the_services_users_with_its_data(local_stack, keycloak_admin):
    """The layout of the role before the services had users of their own, then a re-run: nothing is lost."""
    minio_login = local_stack["minio"]
    client = Minio(urlsplit(minio_login["url"]).netloc, access_key=minio_login["root_user"],
                   secret_key=Path(minio_login["root_password_file"]).read_text().strip(), secure=False)
    bucket, content = f"migration-{uuid.uuid4().hex[:12]}", uuid.uuid4().bytes
    client.make_bucket(bucket)
    client.put_object(bucket, "kept", io.BytesIO(content), length=len(content))
    admin_id = keycloak_admin_id(keycloak_admin)
    keycloak_home = next(Path(local_stack["keycloak"]["state_dir"]).glob("keycloak-*"))
    moves = {  # where the data is now -> where the role kept it before
        keycloak_home: STATE_DIR / "keycloak" / keycloak_home.name,
        Path(minio_login["state_dir"]) / "data": STATE_DIR / "minio" / "data",
    }
    supervisorctl(local_stack, "stop", "keycloak", "minio")
    for new, old in moves.items():
        old.parent.mkdir(mode=0o700)
        shutil.move(new, old)
        subprocess.run(["chown", "--recursive", "root:root", old], check=True)

    result = run_playbook("playbooks/local_services.yml")
    assert result.returncode == 0, result.output[-3000:]
    for (new, old), service in zip(moves.items(), ("keycloak", "minio")):
        assert not old.parent.exists(), f"{old.parent} should be gone"
        assert {owner(path) for path in [new, *new.rglob("*")]} == {local_stack[service]["user"]}
    assert keycloak_admin_id(keycloak_admin) == admin_id, "Keycloak's database was lost"
    assert client.get_object(bucket, "kept").read() == content
    client.remove_object(bucket, "kept")
    client.remove_bucket(bucket)
    assert run_playbook("playbooks/local_services.yml").recap()["changed"] == 0


def test_data_in_the_old_place_and_in_the_new_one_is_refused_naming_both(local_stack):
    old = STATE_DIR / "minio" / "data"
    new = Path(local_stack["minio"]["state_dir"]) / "data"
    old.mkdir(parents=True)
    try:
        result = run_playbook("playbooks/local_services.yml")
    finally:
        shutil.rmtree(old.parent)
    assert result.returncode != 0
    assert f"minio has data in two places: {old}, where versions of this role before minio ran" in result.output
    assert f"and {new}. Keep the one with the current data, remove the other, and run again." in result.output
    assert "RUNNING" in supervisorctl(local_stack, "status", "minio"), "nothing was stopped"
