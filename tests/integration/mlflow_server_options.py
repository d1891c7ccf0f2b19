"""The options `mlflow server` resolves from a command line and an environment, by MLflow's own CLI (click).

Run by the MLflow server's interpreter (its virtualenv has mlflow and the plugin the CLI's --app-name choices come
from). Reads a JSON list of {"args": [...], "environment": {...}} on stdin and prints, as JSON, each option's
environment variable and, per request, the option values click resolves, exactly as at the server's start: a value on
the command line wins over its environment variable. Nothing is started.
"""

import json
import os
import sys

from mlflow.cli import server

requests = json.load(sys.stdin)
resolved = []
for request in requests:
    os.environ.clear()
    os.environ.update(request["environment"])
    resolved.append(server.make_context("server", list(request["args"])).params)
envvars = {param.envvar: param.name for param in server.params if isinstance(getattr(param, "envvar", None), str)}
print(json.dumps({"envvars": envvars, "resolved": resolved}, default=str))
