# regpilot: `make demo` runs the whole flow on embedded defaults; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: install demo up test lint unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/regpilot demo

up: install
	$(BIN)/regpilot up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict core config

test: lint
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q tests/unit

bench: install
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .regpilot .pytest_cache .mypy_cache .ruff_cache
