# Developer entry points. Everything runs from the project's own virtualenv (.venv), which
# `make install` creates; CI (.ci/run) calls the same targets on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
# Marks a finished `pip install -e .[dev]`; redone when pyproject.toml changes.
INSTALLED := $(VENV)/.installed
PYTEST_ARGS ?=
# NB: the virtualenv's bin first, so tools installed there (kubectl from PyPI) are found.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install prereqs-test prereqs-demo lint fmt typecheck test test-unit test-e2e test-vm bench kubeapi check clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

# System packages the tests or the demo need, installed (as root) only when missing.
prereqs-test: $(INSTALLED)
	sh integration/prereqs.sh $(VENV)/bin test

prereqs-demo: $(INSTALLED)
	sh integration/prereqs.sh $(VENV)/bin demo

lint: $(INSTALLED)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .

fmt: $(INSTALLED)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: $(INSTALLED)
	$(PY) -m mypy

# The whole suite: unit tests, then the end-to-end tier against tests/kubeapi and real binaries.
test: prereqs-test
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(INSTALLED)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-e2e: $(INSTALLED)
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

# The tests that need ipvlan / 802.1q / dummy, inside a throw-away QEMU guest kernel.
test-vm: $(INSTALLED)
	$(PY) -m pytest tests/vm/test_guest_tier.py $(PYTEST_ARGS)

bench: $(INSTALLED)
	$(PY) -m tests.bench

# danm and fakeipam as self-contained executables (zipapps) for /opt/cni/bin, run by the node's
# python3 without site or PYTHON* variables (common/cni/bundle.py). Removed by `make clean`.
CNI_PYTHON ?= /usr/bin/python3 -IS
.PHONY: cni-bundle
cni-bundle: $(INSTALLED)
	$(PY) -m common.cni.bundle --output build/cni --interpreter "$(CNI_PYTHON)"

# The API stand-in on a fixed port, state kept across restarts, for trying things with kubectl.
kubeapi: $(INSTALLED)
	mkdir -p .cache
	$(PY) -m tests.kubeapi --port 6443 --kubeconfig .cache/kubeconfig --persist .cache/kubeapi.json

check: lint typecheck test

# The README's multi-domain Service discovery scenario, for real, on this machine (as root): the
# API stand-in, the webhook, netwatcher, svcwatcher, kubectl, and Pods as network namespaces
# wired by `danm`; traffic checks, then a full teardown. `demo-down` cleans up an interrupted run.
.PHONY: demo demo-down
demo: prereqs-demo
	$(PY) -m integration.demo up

demo-down: $(INSTALLED)
	$(PY) -m integration.demo down

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .cache/vm
