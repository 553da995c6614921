# Two commands: `make search` and `make test`. Both create .venv and install the pinned
# dependencies first (constraints.txt), so a fresh machine needs nothing but Python 3.10+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# `make test-oldest [ARGS="tests/test_search.py ..."]`: the suite (or the files given) against the
# oldest Optuna that pyproject.toml claims, every other package as in .venv: Optuna 4.0.0 alone in a
# folder put first on PYTHONPATH (it is pure Python, and its dependencies are .venv's), so CI does not
# install a second environment.
OPTUNA_OLDEST := 4.0.0
OLDEST := .optuna-oldest
STAMP_OLDEST := $(OLDEST)/.installed-stamp
WITH_OLDEST := PYTHONPATH=$(CURDIR)/$(OLDEST)

# The test files that go through Optuna's API (storages, the store's version-dependent reads, pruners,
# samplers, artifacts, resume and durability) and mypy: what can differ on the oldest Optuna. CI runs
# these against it (`make test-oldest-optuna`); `make test-oldest` runs every test file. The PostgreSQL and MySQL
# tests start throwaway servers of their own (tests/postgres_server.py, tests/mysql_server.py) and skip where none can run.
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

# The whole suite: first what may share the two cores (two pytest processes), then, alone and one at a time, the
# tests that start worker processes or servers or time them (the `serial` marker, tests/conftest.py).
test: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not serial" tests
	$(PY) -m pytest -q -m serial tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

$(STAMP_OLDEST): $(STAMP) Makefile
	rm -rf $(OLDEST)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target $(OLDEST) optuna==$(OPTUNA_OLDEST)
	$(WITH_OLDEST) $(PY) -c "import optuna, sys; sys.exit(0 if optuna.__version__ == '$(OPTUNA_OLDEST)' else 'not Optuna $(OPTUNA_OLDEST): ' + optuna.__file__)"
	touch $(STAMP_OLDEST)

test-oldest: $(STAMP_OLDEST)
	$(WITH_OLDEST) $(PY) -m pytest -q $(or $(ARGS),tests)

test-oldest-optuna: $(STAMP_OLDEST)
	$(WITH_OLDEST) $(PY) -m pytest -q -n 2 -m "not slow and not serial" $(OPTUNA_TESTS)
	$(WITH_OLDEST) $(PY) -m pytest -q -m "not slow and serial" $(OPTUNA_TESTS)

clean:
	rm -rf $(VENV) $(OLDEST) .venv-oldest build *.egg-info
