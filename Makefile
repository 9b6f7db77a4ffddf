# Muster: two commands on a fresh machine.
#   make run    set up .venv, initialise the embedded SQLite database and keys, serve on 127.0.0.1:8000
#   make test   set up .venv with dev dependencies and run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# make test runs the suite on three pytest-xdist workers (one PostgreSQL database each, see
# tests/conftest.py): three beat two on 2 cores, as many tests wait on servers, subprocesses
# and fsync. PYTEST_XDIST= runs it in one process; PYTEST_ARGS adds options to either.
PYTEST_XDIST ?= -n 3 --dist loadgroup

.PHONY: run test lint typecheck bench soak clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/muster-server serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check server sync tests bench
	$(BIN)/ruff format --check server sync tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python -m bench

soak: $(VENV)/.installed
	MUSTER_SOAK=1 $(BIN)/python -m pytest -m soak $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
