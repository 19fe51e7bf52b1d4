# Everything installs into .venv at the project root; `make run` and `make test` work on a fresh clone.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest tune train evaluate bench mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "civility needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/civility run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n auto --maxprocesses 4 --dist worksteal

tune: $(STAMP)
	$(BIN)/civility tune --data ../shared/datasets --source-weights

train: $(STAMP)
	$(BIN)/civility train --data ../shared/datasets --out models/ --identity-swaps --identity-reweigh

evaluate: $(STAMP)
	$(BIN)/civility evaluate --data ../shared/datasets

bench: $(STAMP)
	$(BIN)/python bench/classifier.py

mutate: $(STAMP)
	$(BIN)/python -m bench.mutation

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis mutants
