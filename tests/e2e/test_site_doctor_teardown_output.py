"""No secret in the output of site.yml, doctor.yml and teardown.yml, at the highest verbosity (issue #14, item 7).

On the deployed embedded default: the doctor, a teardown that keeps the data (it stops the server, removes the MinIO
user and the Keycloak client), and the site.yml that brings everything back (every task of a no-op run, and a new
client whose secret is new), each at -vvv. The output is searched for every stored secret and for the client secret read back
from Keycloak, before and after.
"""

from __future__ import annotations

import pytest

from tests.ansible_runner import run_playbook
from tests.stack_layout import SECRETS_DIR
from tests.keycloak_api import client_secret

pytestmark = [pytest.mark.e2e, pytest.mark.keycloak]

PLAYBOOKS = ("playbooks/doctor.yml", "playbooks/teardown.yml", "playbooks/site.yml")


def stored_secrets() -> dict[str, str]:
    return {path.name: path.read_text().strip() for path in sorted((SECRETS_DIR).iterdir())}


def test_no_secret_shows_at_vvv(deployed_mlflow, keycloak):
    secrets = stored_secrets()
    secrets["client secret before"] = client_secret(keycloak, "mlflow")
    outputs = {}
    for number, playbook in enumerate(PLAYBOOKS):
        result = run_playbook(playbook, "-vvv", timeout=1200)
        assert result.returncode == 0, f"{playbook}:\n{result.output[-4000:]}"
        outputs[f"{number}: {playbook}"] = result.output
    secrets |= stored_secrets()
    secrets["client secret after"] = client_secret(keycloak, "mlflow")
    assert secrets["client secret after"] != secrets["client secret before"], "the teardown removed the client"
    assert all(len(value) >= 16 for value in secrets.values()), "a secret too short to search for"

    leaks = [f"{name} in {run}" for run, output in outputs.items() for name, value in secrets.items() if value in output]
    assert leaks == []
    assert sum(len(output) for output in outputs.values()) > 100_000, "-vvv output is long; this one is suspiciously short"
