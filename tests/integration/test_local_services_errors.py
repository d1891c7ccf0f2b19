"""Bad input to the local stack gives one clear error that names the cause, quickly."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.ansible_runner import run_module, run_playbook

pytestmark = pytest.mark.harness

PREFLIGHT = Path(__file__).parent / "playbooks" / "preflight.yml"


def _preflight(tmp_path, *extra_vars):
    # A fresh state and cache directory: no supervisord runs there, nothing is cached.
    return run_playbook(
        PREFLIGHT,
        "-e", f"local_services_state_dir={tmp_path}/state",
        "-e", f"local_services_cache_dir={tmp_path}/cache",
        *extra_vars,
        timeout=120,
    )


def test_a_taken_port_is_named_with_the_variable_to_change(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = _preflight(tmp_path, "-e", f"local_services_minio_console_port={port}")
    assert result.returncode != 0
    assert f"Port {port} on 127.0.0.1, needed by minio, is already used by another program" in result.output
    assert "local_services_minio_*port" in result.output


def test_a_missing_jdk_is_named(tmp_path):
    result = _preflight(tmp_path, "-e", f"local_services_keycloak_java_home={tmp_path}/no-jdk")
    assert result.returncode != 0
    assert f"{tmp_path}/no-jdk/bin/java does not exist" in result.output


def test_a_missing_go_is_named_when_minio_is_not_built(tmp_path):
    result = _preflight(tmp_path, "-e", "local_services_go_command=/nonexistent/go")
    assert result.returncode != 0
    assert "is not built yet and `/nonexistent/go version` failed" in result.output
    assert "Install Go" in result.output


@pytest.mark.parametrize("address", ["0.0.0.0", "10.0.0.5", "::", "my-host.example.com"])
def test_a_bind_address_other_than_loopback_is_refused(tmp_path, address):
    result = _preflight(tmp_path, "-e", f"local_services_bind_address={address}")
    assert result.returncode != 0
    assert (
        f"local_services_bind_address is {address}, not a loopback address (127.0.0.0/8, ::1, localhost): PostgreSQL, "
        "Keycloak (in dev mode) and MinIO would be reachable from the network, without TLS. Bind them to 127.0.0.1, "
        "or set local_services_allow_network_exposure: true if that is what you want."
    ) in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("address", "opt_in"),
    [("127.0.0.1", "false"), ("127.0.0.2", "false"), ("::1", "false"), ("localhost", "false"), ("0.0.0.0", "true")],
)
def test_loopback_or_an_asked_for_exposure_passes_the_check(tmp_path, address, opt_in):
    result = _preflight(
        tmp_path, "-e", f"local_services_bind_address={address}", "-e", f"local_services_allow_network_exposure={opt_in}"
    )
    # The check passed: the preflight went on to the next ones (the ports of the running stack may fail it later).
    assert "local_services_bind_address is" not in result.output, result.output[-3000:]
    assert "TASK [mlops.mlflow.local_services : Choose the JDK for Keycloak]" in result.output


@pytest.fixture
def supervisord(tmp_path):
    """A real supervisord of its own in tmp_path, with one healthy and one crashing program."""
    http_port = _free_port()
    config = tmp_path / "supervisord.conf"
    config.write_text(
        textwrap.dedent(
            f"""
            [unix_http_server]
            file={tmp_path}/supervisor.sock
            [supervisord]
            logfile={tmp_path}/supervisord.log
            pidfile={tmp_path}/supervisord.pid
            childlogdir={tmp_path}
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            [supervisorctl]
            serverurl=unix://{tmp_path}/supervisor.sock
            [program:web]
            command={sys.executable} -m http.server {http_port} --bind 127.0.0.1
            directory={tmp_path}
            startsecs=1
            redirect_stderr=true
            [program:crasher]
            command=/bin/sh -c "echo 'fatal: the database file is locked'; sleep 2; exit 3"
            startsecs=1
            startretries=0
            redirect_stderr=true
            """
        )
    )
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "supervisord", "-c", config], check=True)
    yield {"config": config, "supervisorctl": bin_dir / "supervisorctl", "http_port": http_port}
    subprocess.run([bin_dir / "supervisorctl", "-c", config, "shutdown"], check=False, capture_output=True)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(supervisord, name, check):
    return run_module(
        "mlops.mlflow.supervisor_program_wait",
        f"name={name} config={supervisord['config']} supervisorctl_path={supervisord['supervisorctl']} "
        f"{check} timeout=60",
    )


def test_wait_returns_once_the_program_answers(supervisord):
    result = _wait(supervisord, "web", f"url=http://127.0.0.1:{supervisord['http_port']}/")
    assert result.returncode == 0, result.output
    assert result.module_result["program_state"] == "RUNNING"


def test_wait_fails_fast_with_the_log_of_a_program_that_exits(supervisord):
    started = time.monotonic()
    result = _wait(supervisord, "crasher", f"port={_free_port()}")
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    message = result.module_result["msg"]
    assert message.startswith("Program crasher ")
    assert "it exited instead of starting" in message or "restarted while starting: it crashed" in message
    assert "fatal: the database file is locked" in message
    assert elapsed < 30, "the wait should stop when the program dies, not at its timeout"


def test_start_starts_a_stopped_program_once_and_check_mode_only_says_so(supervisord):
    ctl = [str(supervisord["supervisorctl"]), "-c", str(supervisord["config"])]
    subprocess.run([*ctl, "stop", "web"], check=True, capture_output=True)
    url = f"url=http://127.0.0.1:{supervisord['http_port']}/ start=true"
    checked = run_module(
        "mlops.mlflow.supervisor_program_wait",
        f"name=web config={supervisord['config']} supervisorctl_path={supervisord['supervisorctl']} {url}",
        "--check",
    )
    assert checked.returncode == 0, checked.output
    assert checked.module_result["changed"] is True and checked.module_result["started"] is True
    assert "STOPPED" in subprocess.run([*ctl, "status", "web"], capture_output=True, text=True, check=False).stdout
    started = _wait(supervisord, "web", url)
    assert started.returncode == 0, started.output
    assert started.module_result["changed"] is True and started.module_result["program_state"] == "RUNNING"
    again = _wait(supervisord, "web", url)
    assert again.returncode == 0, again.output
    assert again.module_result["changed"] is False and again.module_result["started"] is False


def test_wait_names_an_unknown_program(supervisord):
    result = _wait(supervisord, "nosuchprogram", "port=1")
    assert result.returncode != 0
    assert result.module_result["msg"] == "supervisord has no program named nosuchprogram"


def test_wait_names_a_supervisord_that_does_not_run(tmp_path):
    config = tmp_path / "supervisord.conf"
    config.write_text(f"[supervisorctl]\nserverurl=unix://{tmp_path}/missing.sock\n")
    result = _wait({"config": config, "supervisorctl": Path(sys.executable).parent / "supervisorctl"}, "web", "port=1")
    assert result.returncode != 0
    assert result.module_result["msg"].startswith("supervisord is not running: ")
