"""Parsing of `supervisorctl status NAME` output (pure logic)."""

from __future__ import annotations

import pytest

from ansible_collections.mlops.mlflow.plugins.modules.supervisor_program_wait import (
    DEAD_STATES,
    parse_program_state,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("minio                            RUNNING   pid 4242, uptime 0:01:02\n", ("RUNNING", 4242)),
        ("keycloak                         STARTING  \n", ("STARTING", None)),
        ("crasher    FATAL     Exited too quickly (process log may have details)\n", ("FATAL", None)),
        ("crasher    BACKOFF   Exited too quickly (process log may have details)\n", ("BACKOFF", None)),
        ("web                              EXITED    Nov 28 05:37 PM\n", ("EXITED", None)),
        ("", ("UNKNOWN", None)),
        ("unix:///tmp/supervisor.sock no such file\n", ("UNKNOWN", None)),
    ],
)
def test_parse_program_state(output, expected):
    assert parse_program_state(output) == expected


def test_dead_states_never_include_the_live_ones():
    assert not DEAD_STATES & {"RUNNING", "STARTING", "STOPPING"}
