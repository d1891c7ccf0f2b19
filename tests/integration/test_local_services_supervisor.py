"""supervisord retries a local service whose start fails for a moment instead of giving up on it."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.minio

# Longer than one failed start and its first backoffs, well within the retries the program file allows.
PORT_HELD_SECONDS = 8
READY_TIMEOUT = 90


def supervisorctl(local_stack, *args):
    supervisor = local_stack["supervisor"]
    return subprocess.run(
        [supervisor["supervisorctl"], "-c", supervisor["config"], *args],
        capture_output=True, text=True, timeout=120, check=False,
    ).stdout


def minio_ready(url) -> bool:
    try:
        return requests.get(f"{url}/minio/health/ready", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def test_minio_started_while_its_port_is_still_held_comes_up_once_the_port_is_free(local_stack):
    url = local_stack["minio"]["url"]
    address = (urlsplit(url).hostname, urlsplit(url).port)
    log = Path(local_stack["supervisor"]["logs_dir"]) / "supervisord.log"
    supervisorctl(local_stack, "stop", "minio")
    offset = log.stat().st_size
    try:
        # A process that still holds the port (e.g. one shutting down) makes MinIO exit at once.
        with socket.socket() as holder:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            holder.bind(address)
            holder.listen()
            starting = subprocess.Popen(
                [local_stack["supervisor"]["supervisorctl"], "-c", local_stack["supervisor"]["config"], "start", "minio"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            time.sleep(PORT_HELD_SECONDS)
        starting.wait(timeout=60)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            status = supervisorctl(local_stack, "status", "minio")
            if "RUNNING" in status and minio_ready(url):
                break
            time.sleep(1)
        spawns = re.findall(r"spawned: 'minio'", log.read_bytes()[offset:].decode())
        assert "RUNNING" in status and minio_ready(url), status
        assert len(spawns) >= 2, "MinIO should have failed at least once while its port was held"
    finally:
        # Leave the stack as found even when supervisord gave up on MinIO.
        if "RUNNING" not in supervisorctl(local_stack, "status", "minio"):
            supervisorctl(local_stack, "start", "minio")
