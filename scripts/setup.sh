#!/usr/bin/env bash
# Creates .venv (Python >= 3.12) with the pinned requirements and makes the checkout resolvable
# as the collection mlops.mlflow. Re-running it when nothing changed takes seconds.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv"
stamp="${venv}/.requirements.sha256"

# Returns 0 when $1 is a Python interpreter of version 3.12 or newer.
is_python_312_plus() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null
}

find_python() {
  local candidate
  for candidate in "${MLOPS_MLFLOW_PYTHON:-}" python3.13 python3.12 python3; do
    if [[ -n "${candidate}" ]] && command -v "${candidate}" >/dev/null && is_python_312_plus "$(command -v "${candidate}")"; then
      command -v "${candidate}"
      return 0
    fi
  done
  # pyenv keeps interpreters it does not put on PATH.
  local pyenv_root="${PYENV_ROOT:-${HOME}/.pyenv}"
  while read -r candidate; do
    if [[ -x "${candidate}/bin/python" ]] && is_python_312_plus "${candidate}/bin/python"; then
      echo "${candidate}/bin/python"
      return 0
    fi
  done < <(printf '%s\n' "${pyenv_root}"/versions/3.* | sort -V -r)
  return 1
}

if [[ ! -x "${venv}/bin/python" ]] || ! is_python_312_plus "${venv}/bin/python"; then
  if ! python="$(find_python)"; then
    cat >&2 <<'MSG'
setup: no Python 3.12 or newer found (looked at $MLOPS_MLFLOW_PYTHON, python3.13, python3.12,
python3 and pyenv versions). mlflow-oidc-auth 11.x fails to import on Python 3.11.
Install one (e.g. `pyenv install 3.12`) or point MLOPS_MLFLOW_PYTHON at it, then run again.
MSG
    exit 1
  fi
  echo "setup: creating .venv with ${python}"
  rm -rf "${venv}"
  "${python}" -m venv "${venv}"
fi

wanted="$(cat "${repo_root}/requirements.txt" "${repo_root}/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "${stamp}" 2>/dev/null)" != "${wanted}" ]]; then
  echo "setup: installing Python requirements into .venv"
  "${venv}/bin/python" -m pip install --quiet --upgrade pip
  "${venv}/bin/python" -m pip install --quiet -r "${repo_root}/requirements.txt" -c "${repo_root}/constraints.txt"
  echo "${wanted}" >"${stamp}"
fi

# ansible.cfg's collections_path points here, so mlops.mlflow.* resolves to this checkout.
link_dir="${repo_root}/.collections/ansible_collections/mlops"
mkdir -p "${link_dir}"
if [[ "$(readlink "${link_dir}/mlflow" 2>/dev/null)" != "../../.." ]]; then
  ln -sfn ../../.. "${link_dir}/mlflow"
fi
echo "setup: ready ($("${venv}/bin/ansible" --version | sed -n 1p))"
