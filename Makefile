# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test venv sample bench clean

venv: $(STAMP)

# .venv is built from the lock file (hashes checked) whenever it is missing or the lock changed.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/coop run

test: $(STAMP)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; } || true
	$(BIN)/python -m pytest -q

# Regenerate the shipped sample province (deterministic, seeded).
sample: $(STAMP)
	$(BIN)/python -m coop.sample --out data/raw

bench: $(STAMP)
	$(BIN)/python scripts/benchmark.py

clean:
	rm -rf $(VENV) .pytest_cache
