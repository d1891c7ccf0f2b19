# Entry points. `make deploy` and `make test` are the README's two commands.
SHELL := /bin/bash
# Molecule and the tests call ansible-playbook by name: use the checkout's .venv.
export PATH := $(CURDIR)/.venv/bin:$(PATH)

# teardown drops the databases and converges site.yml again at its end: it stays last.
MOLECULE_SCENARIOS := local_services local kubernetes teardown

.PHONY: setup deploy test lint sanity unit pytest molecule lock bench

setup:
	scripts/setup.sh

deploy: setup
	ansible-playbook playbooks/site.yml

# The test cluster's binaries come from Go sources: about 25 minutes cold on 2 cores, seconds once cached. They build in
# the background at the lowest CPU priority while lint, sanity and the local stack's tests run; the Kubernetes tests
# wait for each build on its file lock and build whatever is still missing themselves (a failure shows there).
KUBE_BUILD_LOG := $(or $(MLOPS_MLFLOW_STATE_DIR),$(HOME)/.local/state/mlops-mlflow)/test-kube/build.log

test: setup
	mkdir -p $(dir $(KUBE_BUILD_LOG))
	nice -n 19 python -m tests.kube.control_plane build > $(KUBE_BUILD_LOG) 2>&1 &
	$(MAKE) lint sanity pytest molecule

# ansible-lint installs a copy of the collection into .ansible/ and would keep using a stale one.
lint: setup
	rm -rf .ansible
	ansible-lint

sanity: setup
	scripts/sanity.sh

# The pure-logic tests alone: no server, about two seconds.
unit: setup
	python -m pytest tests/unit

# The slowest tests are listed at the end: the CI budget is watched by them.
pytest: setup
	python -m pytest --durations=25

molecule: setup
	for scenario in $(MOLECULE_SCENARIOS); do molecule test -s $$scenario || exit 1; done

# Regenerate constraints.txt after changing requirements.txt.
lock: setup
	{ echo '# Full lock of requirements.txt (pip freeze on Python 3.12+); regenerate with `make lock`.'; \
	  python -m pip freeze --exclude-editable; } > constraints.txt

# Benchmarks of the deployed local stack: writes benchmarks/results/<date>.json and .md (about 10 minutes).
bench: setup
	python -m benchmarks.run
