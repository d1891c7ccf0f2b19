#!/usr/bin/env bash
# Runs `ansible-test sanity` on a copy of the checkout laid out as ansible_collections/mlops/mlflow
# (ansible-test needs that path; the checkout itself may live anywhere).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${repo_root}/.venv/bin/python"
python_version="$("${python}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

if ! command -v shellcheck >/dev/null; then
  echo "sanity: installing shellcheck (Debian package) for the shellcheck test"
  apt-get update -qq && apt-get install -y -qq shellcheck >/dev/null
fi

# ansible-test bootstraps pip in each test's virtualenv with a script from a host these machines
# cannot reach; it documents saving that script in its cache by hand. Ours uses ensurepip instead.
pip_version="$("${python}" - <<'PY'
import inspect, re
from ansible_test._internal import python_requirements
print(re.search(r"pip='([^']+)'", inspect.getsource(python_requirements.get_venv_packages)).group(1))
PY
)"
mkdir -p "${HOME}/.ansible/test/cache"
cp "${repo_root}/scripts/get_pip_offline.py" "${HOME}/.ansible/test/cache/get_pip_${pip_version//./_}.py"

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
collection="${work}/ansible_collections/mlops/mlflow"
mkdir -p "${collection}"
git -C "${repo_root}" ls-files -z --cached --others --exclude-standard \
  | (cd "${repo_root}" && tar --null -T - -cf - --ignore-failed-read 2>/dev/null) \
  | tar -xf - -C "${collection}"
# ansible-test lists the collection's files with git.
git -C "${collection}" init -q
git -C "${collection}" add -A

cd "${collection}"
"${repo_root}/.venv/bin/ansible-test" sanity --python "${python_version}" --color no "$@"
