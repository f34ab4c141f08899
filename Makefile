# Developer entry points. Everything runs from the project's own virtualenv (.venv), which
# `make install` creates; CI (.ci/run) calls the same targets on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install lint fmt typecheck test test-unit test-e2e test-vm bench kubeapi check clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'

lint: $(PY)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

fmt: $(PY)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: $(PY)
	$(PY) -m mypy

# The whole suite: unit tests, then the end-to-end tier against tests/kubeapi and real binaries.
test: $(PY)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(PY)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-e2e: $(PY)
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

# The tests that need ipvlan / 802.1q / dummy, inside a throw-away QEMU guest kernel.
test-vm: $(PY)
	$(PY) -m pytest tests/vm/test_guest_tier.py $(PYTEST_ARGS)

bench: $(PY)
	$(PY) -m tests.bench

# danm and fakeipam as self-contained executables (zipapps) for /opt/cni/bin, run by the node's
# python3 without site or PYTHON* variables (common/cni/bundle.py). Removed by `make clean`.
CNI_PYTHON ?= /usr/bin/python3 -IS
.PHONY: cni-bundle
cni-bundle: $(PY)
	$(PY) -m common.cni.bundle --output build/cni --interpreter "$(CNI_PYTHON)"

# The API stand-in on a fixed port, state kept across restarts, for trying things with kubectl.
kubeapi: $(PY)
	mkdir -p .cache
	$(PY) -m tests.kubeapi --port 6443 --kubeconfig .cache/kubeconfig --persist .cache/kubeapi.json

check: lint typecheck test

# The README's multi-domain Service discovery scenario, for real, on this machine (as root): the
# API stand-in, the webhook, netwatcher, svcwatcher, kubectl, and Pods as network namespaces
# wired by `danm`; traffic checks, then a full teardown. `demo-down` cleans up an interrupted run.
.PHONY: demo demo-down
demo: install
	sh integration/demo/prereqs.sh $(VENV)/bin
	$(PY) -m integration.demo up

demo-down: $(PY)
	$(PY) -m integration.demo down

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .cache/vm
