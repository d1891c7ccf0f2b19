#!/usr/bin/python
# Copyright: mlops.mlflow contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: supervisor_program_wait
short_description: Start a supervisord program if asked, then wait until it is up and healthy
version_added: 0.1.0
description:
  - With O(start=true), starts the program when supervisord does not run it (what
    M(community.general.supervisorctl) does with C(state=started)), in the same module run as the wait.
  - Polls a program managed by supervisord until its health check passes.
  - The health check is an HTTP URL answering with an expected status, or a TCP port accepting connections.
  - Fails at once, with the tail of the program's log, when the program leaves the running states
    (it exited, is backing off after a crash, or is fatal) or when supervisord restarted it during the wait
    (its process id changed), instead of waiting for the timeout.
  - On timeout, fails with the tail of the program's log as well.
author:
  - mlops.mlflow maintainers (@mlops-mlflow)
options:
  name:
    description: Name of the supervisord program.
    type: str
    required: true
  supervisorctl_path:
    description: Path to the C(supervisorctl) executable.
    type: path
    required: true
  config:
    description: Path to the supervisord configuration file that C(supervisorctl) should use.
    type: path
    required: true
  url:
    description:
      - HTTP URL that answers with one of O(status_code) once the program is healthy.
      - Mutually exclusive with O(port).
    type: str
  status_code:
    description: HTTP status codes that count as healthy.
    type: list
    elements: int
    default: [200]
  host:
    description: Host for the TCP check with O(port).
    type: str
    default: 127.0.0.1
  port:
    description:
      - TCP port that accepts connections once the program is healthy.
      - Mutually exclusive with O(url).
    type: int
  timeout:
    description: Seconds to wait before giving up.
    type: int
    default: 120
  log_bytes:
    description: How many bytes of the program's log to include in a failure message.
    type: int
    default: 3000
  start:
    description:
      - Start the program first when it is not running or starting (stopped, exited, backing off or fatal), and
        report a change.
      - Without it, a program that is not running fails the wait at once.
    type: bool
    default: false
notes:
  - In check mode the module does not wait; with O(start=true) it reports whether it would start the program.
"""

EXAMPLES = r"""
- name: Start MinIO unless it runs, then wait for it to report live
  mlops.mlflow.supervisor_program_wait:
    name: minio
    supervisorctl_path: /opt/supervisor/bin/supervisorctl
    config: /var/lib/mlops/supervisor/supervisord.conf
    url: http://127.0.0.1:9000/minio/health/live
    timeout: 60
    start: true

- name: Wait for PostgreSQL to accept connections
  mlops.mlflow.supervisor_program_wait:
    name: postgresql
    supervisorctl_path: /opt/supervisor/bin/supervisorctl
    config: /var/lib/mlops/supervisor/supervisord.conf
    port: 5433
"""

RETURN = r"""
elapsed:
  description: Seconds spent waiting.
  returned: always
  type: float
  sample: 12.4
program_state:
  description: The supervisord state of the program when the module finished.
  returned: always
  type: str
  sample: RUNNING
started:
  description: Whether the module started the program (or would have, in check mode).
  returned: always
  type: bool
  sample: false
"""

import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

# States from which a program will not become healthy without intervention.
DEAD_STATES = frozenset(("STOPPED", "EXITED", "FATAL", "BACKOFF", "UNKNOWN"))
# States in which supervisord already runs the program (community.general.supervisorctl starts all others).
RUN_STATES = frozenset(("RUNNING", "STARTING"))


def parse_program_state(status_output):
    """Return (state, pid) from `supervisorctl status NAME` output; ("UNKNOWN", None) if unreadable."""
    fields = status_output.replace(",", " ").split()
    if len(fields) < 2 or not fields[1].isupper():
        return "UNKNOWN", None
    pid = None
    if len(fields) >= 4 and fields[2] == "pid" and fields[3].isdigit():
        pid = int(fields[3])
    return fields[1], pid


def http_healthy(url, status_codes):
    try:
        response = open_url(url, timeout=5, follow_redirects="none")
        return response.getcode() in status_codes
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # HTTPError carries the status of a real answer (e.g. 503 while starting).
        code = getattr(exc, "code", None)
        return code in status_codes


def tcp_healthy(host, port):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


class ProgramWaiter:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.base_command = [self.params["supervisorctl_path"], "-c", self.params["config"]]

    def program_state(self):
        rc, out, err = self.module.run_command(self.base_command + ["status", self.params["name"]])
        if "no such process" in out.lower():
            self.module.fail_json(msg="supervisord has no program named %s" % self.params["name"])
        # supervisorctl exits 4 when it cannot reach supervisord.
        if rc == 4:
            self.module.fail_json(msg="supervisord is not running: %s" % (err or out).strip())
        return parse_program_state(out)

    def log_tail(self):
        rc, out, err = self.module.run_command(
            self.base_command + ["tail", "-%d" % self.params["log_bytes"], self.params["name"]]
        )
        return out if rc == 0 else err

    def healthy(self):
        if self.params["url"]:
            return http_healthy(self.params["url"], self.params["status_code"])
        return tcp_healthy(self.params["host"], self.params["port"])

    def target(self):
        if self.params["url"]:
            return self.params["url"]
        return "%s:%s" % (self.params["host"], self.params["port"])

    def fail_with_log(self, reason, state, started):
        self.module.fail_json(
            msg="%s. Last lines of its log:\n%s" % (reason, self.log_tail()),
            program_state=state,
            elapsed=round(time.monotonic() - started, 1),
        )

    def start(self):
        """Start the program; fail with its log when supervisord cannot."""
        rc, out, err = self.module.run_command(self.base_command + ["start", self.params["name"]])
        if rc != 0:
            self.fail_with_log(
                "supervisorctl could not start %s: %s" % (self.params["name"], (out or err).strip()),
                self.program_state()[0],
                time.monotonic(),
            )

    def wait(self):
        name = self.params["name"]
        started = time.monotonic()
        deadline = started + self.params["timeout"]
        first_pid = None
        while True:
            state, pid = self.program_state()
            if state in DEAD_STATES:
                self.fail_with_log("Program %s is %s: it exited instead of starting" % (name, state), state, started)
            first_pid = first_pid or pid
            if pid and pid != first_pid:
                self.fail_with_log("Program %s restarted while starting: it crashed" % name, state, started)
            if state == "RUNNING" and self.healthy():
                return state, round(time.monotonic() - started, 1)
            if time.monotonic() > deadline:
                self.fail_with_log(
                    "Program %s (%s) did not answer on %s within %d s"
                    % (name, state, self.target(), self.params["timeout"]),
                    state,
                    started,
                )
            time.sleep(1)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            supervisorctl_path=dict(type="path", required=True),
            config=dict(type="path", required=True),
            url=dict(type="str"),
            status_code=dict(type="list", elements="int", default=[200]),
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int"),
            timeout=dict(type="int", default=120),
            log_bytes=dict(type="int", default=3000),
            start=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("url", "port")],
        required_one_of=[("url", "port")],
        supports_check_mode=True,
    )
    waiter = ProgramWaiter(module)
    started = False
    if module.params["start"]:
        state, _pid = waiter.program_state()
        started = state not in RUN_STATES
        if started and not module.check_mode:
            waiter.start()
    if module.check_mode:
        module.exit_json(
            changed=started, started=started, elapsed=0.0, program_state="UNKNOWN", msg="Not waited in check mode"
        )
    state, elapsed = waiter.wait()
    module.exit_json(changed=started, started=started, elapsed=elapsed, program_state=state)


if __name__ == "__main__":
    main()
