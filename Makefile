# careweave: `make run` starts the server with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
DATA   ?= ./data

.PHONY: run test lint fix typecheck arch bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/careweave serve --host $(HOST) --port $(PORT) --data $(DATA) --demo

test: $(VENV)/.installed-dev
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check careweave tests bench
	$(BIN)/ruff format --check careweave
	$(BIN)/mypy
	$(BIN)/lint-imports

fix: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix careweave tests bench
	$(BIN)/ruff format careweave

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

arch: $(VENV)/.installed-dev
	$(BIN)/lint-imports

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
