# Two commands for a newcomer: `make up` (gateway + simulated fleet) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up test lint bench

$(BIN)/tokenway: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	bash scripts/restore-otel-protos.sh $(BIN)/python
	touch $@

up: $(BIN)/tokenway
	$(BIN)/tokenway up

test: $(BIN)/tokenway
	bash scripts/system-deps.sh
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: $(BIN)/tokenway
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
