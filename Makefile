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
	$(BIN)/mypy --strict regpilot/core regpilot/evaluation config

# The integration tests mostly wait (on MLflow, Redis, Celery, and on purpose: the 60 s visibility
# timeout), so 6 pytest processes, each with its own MLflow server, receiver and worker (see
# tests/conftest.py), keep 2 cores busy. The hand-out order is tests/scheduling.py's, not
# xdist's reordering. TEST_WORKERS=0 runs everything in this one process. Timings: docs/TESTING.md.
TEST_WORKERS ?= 6

test: lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

unit: install
	$(BIN)/pytest -q tests/unit

# Writes docs/BENCHMARKS.md (about 20 minutes; exits 1 when a target is missed). Debian's wrk is
# the load generator: installed here when missing (never in CI, which runs `make test`).
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
bench: install
	@command -v wrk >/dev/null 2>&1 || $(SUDO) apt-get install -y wrk \
		|| { $(SUDO) apt-get update && $(SUDO) apt-get install -y wrk; }
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .regpilot .pytest_cache .mypy_cache .ruff_cache
