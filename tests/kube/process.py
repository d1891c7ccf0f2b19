"""Long-running test processes (etcd, kube-apiserver, kubelet, containerd, relays ...) started detached with pid files.

Each process runs in its own session, so it outlives the call that started it; its pid file and log live under the
state directory given by its Component.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT = 90
STOP_TIMEOUT = 30
START_MARKER = "==== starting"


class ProcessError(RuntimeError):
    """A process could not be started or stopped."""


@dataclass(frozen=True)
class Component:
    """One long-running process: how to start it, where it keeps its pid and log, and how to tell it is healthy."""

    name: str
    binary: Path
    args: list[str]
    state_dir: Path
    healthy: Callable[[], bool]
    # host:port that must be free before the start (the clearest error when something else holds it).
    address: tuple[str, int] | None = None
    env: dict[str, str] = field(default_factory=dict)
    start_timeout: int = START_TIMEOUT

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"

    def running_pid(self) -> int | None:
        """The pid from the pid file if that process is alive and still runs our binary (pids get reused)."""
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        if not alive(pid) or not cmdline.startswith(os.fsencode(self.binary) + b"\0"):
            return None
        return pid

    def is_up(self) -> bool:
        return self.running_pid() is not None and self.healthy()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the log of the last start."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.rpartition(START_MARKER)[2].splitlines()[-lines:])


def ensure(component: Component) -> None:
    """Start component unless it already runs and is healthy (an unhealthy one is restarted)."""
    if component.is_up():
        return
    stop(component)
    start(component)


def start(component: Component) -> None:
    for directory in ("run", "logs"):
        (component.state_dir / directory).mkdir(parents=True, exist_ok=True)
    if component.address and port_answers(*component.address):
        host, port = component.address
        raise ProcessError(
            f"cannot start {component.name}: {host}:{port} is already in use by another process "
            f"(see `ss -ltnp 'sport = :{port}'`)"
        )
    with component.log_file.open("a") as log:
        log.write(f"\n{START_MARKER} {component.name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    # The shell starts the component in the background and exits at once: the component is adopted by init (no
    # zombie in the caller) and keeps the new session, so it outlives the caller.
    launcher = subprocess.run(
        ["sh", "-c", 'exec "$@" </dev/null >>"$LOG" 2>&1 & echo $!', "sh", str(component.binary), *component.args],
        env=dict(os.environ, **component.env, LOG=str(component.log_file)),
        cwd=component.state_dir,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        start_new_session=True,
    )
    pid = int(launcher.stdout)
    component.pid_file.write_text(str(pid))
    deadline = time.monotonic() + component.start_timeout
    while time.monotonic() < deadline:
        # Not running_pid(): for a moment the process is still the shell that is about to exec the binary.
        if not alive(pid):
            raise ProcessError(f"{component.name} exited during start-up; end of {component.log_file}:\n"
                               + component.log_tail())
        if component.healthy():
            return
        time.sleep(0.5)
    tail = component.log_tail()
    stop(component)
    raise ProcessError(f"{component.name} was not healthy after {component.start_timeout} s (stopped it); "
                       f"end of {component.log_file}:\n{tail}")


def stop(component: Component) -> None:
    pid = component.running_pid()
    for sig, timeout in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 10)):
        if pid is None:
            break
        # Its whole process group (each component's launcher starts a session of its own): a relay's socat forks a
        # child per connection, and a child whose pod vanished without closing its end kept a PostgreSQL session
        # open after the cluster was down (Molecule's teardown then refused to drop the databases in use).
        try:
            os.killpg(os.getpgid(pid), sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while component.running_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        pid = component.running_pid()
    if pid is not None:
        raise ProcessError(f"{component.name} (pid {pid}) is still running after SIGKILL")
    component.pid_file.unlink(missing_ok=True)


def status(components: list[Component]) -> dict[str, str]:
    report = {}
    for component in components:
        pid = component.running_pid()
        if pid is None:
            report[component.name] = "stopped"
        else:
            report[component.name] = f"{'healthy' if component.healthy() else 'unhealthy'} (pid {pid})"
    return report


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def port_answers(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def unix_socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(1)
        return probe.connect_ex(str(path)) == 0


def etcd_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return json.load(response).get("health") == "true"
    except (OSError, ValueError):
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def https_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    """True when url answers 200. Without a context, the certificate is not checked (self-signed health ports)."""
    if context is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False
