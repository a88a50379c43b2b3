# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Side environment with DuckDB 1.5 only (tests/test_compat_duckdb15.py reads the warehouse with it).
VENV15  := .venv-duckdb15
STAMP15 := $(VENV15)/.installed

.PHONY: run test venv venv-duckdb15 check sample bench clean

venv: $(STAMP)

# .venv is built from the lock file (hashes checked) whenever it is missing or the lock changed.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# .venv-duckdb15 likewise from requirements-duckdb15.lock (duckdb==1.5.x, hashes checked).
venv-duckdb15: $(STAMP15)

$(STAMP15): requirements-duckdb15.lock
	test -x $(VENV15)/bin/python || $(PYTHON) -m venv $(VENV15)
	$(VENV15)/bin/python -m pip install --quiet --quiet --require-hashes --no-deps -r requirements-duckdb15.lock
	touch $(STAMP15)

run: $(STAMP)
	$(BIN)/coop run

# Two pytest-xdist workers (tests/conftest.py groups the tests; docs/performance.md "The test suite").
TEST_WORKERS ?= 2

test: $(STAMP) $(STAMP15) check
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; } || true
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

# Lint and type-check the production code (configuration in pyproject.toml): ruff on coop/, flows/,
# schemas/; mypy strict on coop/ (and what it imports). `make test` runs it first.
check: $(STAMP)
	status=0; $(BIN)/ruff check coop flows schemas || status=1; $(BIN)/mypy || status=1; exit $$status

# Regenerate the shipped sample province (deterministic, seeded).
sample: $(STAMP)
	$(BIN)/python -m sample --out data/raw

# `make bench`: the sample ×16 cases; `make bench NATIONAL=1`: the national scale instead
# (scripts/national_sample.py, COOP_PROVINCE=VN), a fraction with e.g. NATIONAL_ARGS="--national-provinces 12,46".
bench: $(STAMP)
	$(BIN)/python scripts/benchmark.py $(if $(NATIONAL),--national $(NATIONAL_ARGS))

clean:
	rm -rf $(VENV) $(VENV15) .pytest_cache .ruff_cache .mypy_cache
