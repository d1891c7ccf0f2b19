"""Where the embedded default keeps its files: the layout of inventories/local/group_vars/all/main.yml, for the tests
and benchmarks that read the deployed stack's files."""

from __future__ import annotations

import os
from pathlib import Path

# Root-only: secrets, backups, supervisord, logs, endpoints.json (MLOPS_MLFLOW_STATE_DIR moves it, as in the inventory).
STATE_DIR = Path(os.environ.get("MLOPS_MLFLOW_STATE_DIR", Path.home() / ".local" / "state" / "mlops-mlflow"))
SECRETS_DIR = STATE_DIR / "secrets"
# Each service's data, owned by its system user.
DATA_DIR = Path("/var/lib/mlops-mlflow")
SERVER_STATE_DIR = DATA_DIR / "mlflow"
# Binaries and virtualenvs, root-owned; the server role points `current` at the virtualenv the server runs from.
INSTALL_DIR = Path("/opt/mlops-mlflow")
SERVER_VENV = INSTALL_DIR / "mlflow-server" / "current"
