# Restitution — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
UV := python3 -m uv
PY := $(VENV)/bin/python

.PHONY: run test lint setup clean bench

# Bytecode is compiled once, here: where PYTHONDONTWRITEBYTECODE is set (as on the CI machines)
# every process compiled every module it imported again, ~3 s before any command began.
setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet --compile-bytecode
	@$(PY) -m compileall -q src >/dev/null

HOST ?= 127.0.0.1
PORT ?= 8000

run: setup
	$(VENV)/bin/restitution serve --demo --host $(HOST) --port $(PORT)

test: setup
	@if [ -z "$$RESTITUTION_TEST_POSTGRES_URL" ]; then \
	  echo "NOTE: RESTITUTION_TEST_POSTGRES_URL is not set: the PostgreSQL suite is SKIPPED (SQLite only)."; \
	else \
	  echo "PostgreSQL suite: ON ($$RESTITUTION_TEST_POSTGRES_URL)"; \
	fi
	$(PY) -m pytest

# Benchmarks against this machine's own ceilings (README, Benchmarks); at most 10 minutes.
BENCH_ARGS ?=
bench: setup
	$(PY) -m bench.run $(BENCH_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
