# CadreFlow: `make run` (demo service), `make test` (whole suite), `make lint`, `make bench`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup run test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/cadreflow demo
	$(BIN)/cadreflow serve --host $(HOST) --port $(PORT)

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/bench_http.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
