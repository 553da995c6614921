# Two commands: `make search` and `make test`. Both create .venv and install the pinned
# dependencies first (constraints.txt), so a fresh machine needs nothing but Python 3.10+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# `make test-oldest [ARGS="tests/test_search.py ..."]`: the suite (or the files given) against the
# oldest Optuna that pyproject.toml claims, every other pin as in constraints.txt. pip cannot override
# a constraint from the command line (`-c constraints.txt optuna==4.0.0` is a conflict), so these
# constraints are constraints.txt with its optuna line replaced.
OPTUNA_OLDEST := 4.0.0
VENV_OLDEST := .venv-oldest
STAMP_OLDEST := $(VENV_OLDEST)/.installed-stamp

# The test files that go through Optuna's API (storages, the store's version-dependent reads, pruners,
# samplers, artifacts, resume and durability) and mypy: what can differ on the oldest Optuna. CI runs
# these against it (`make test-oldest-optuna`); `make test-oldest` runs every test file. The PostgreSQL
# tests start a throwaway server of their own (tests/postgres_server.py) and skip where none can run.
OPTUNA_TESTS := tests/test_store.py tests/test_heartbeat.py tests/test_lifecycle.py tests/test_durability.py tests/test_search.py \
	tests/test_schedulers.py tests/test_curves.py tests/test_strategies.py tests/test_bo.py tests/test_inheritance.py \
	tests/test_hydra_state.py tests/test_portability.py tests/test_typing.py

.PHONY: setup search test test-fast test-oldest test-oldest-optuna clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

search: $(STAMP)
	$(VENV)/bin/nas-search $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

$(STAMP_OLDEST): pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV_OLDEST)
	sed 's/^optuna==.*/optuna==$(OPTUNA_OLDEST)/' constraints.txt > $(VENV_OLDEST)/constraints.txt
	grep -qx 'optuna==$(OPTUNA_OLDEST)' $(VENV_OLDEST)/constraints.txt
	$(VENV_OLDEST)/bin/python -m pip install --quiet --disable-pip-version-check -c $(VENV_OLDEST)/constraints.txt -e ".[test]"
	touch $(STAMP_OLDEST)

test-oldest: $(STAMP_OLDEST)
	$(VENV_OLDEST)/bin/python -m pytest -q $(or $(ARGS),tests)

test-oldest-optuna: $(STAMP_OLDEST)
	$(VENV_OLDEST)/bin/python -m pytest -q -m "not slow" $(OPTUNA_TESTS)

clean:
	rm -rf $(VENV) $(VENV_OLDEST) build *.egg-info
