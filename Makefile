# The two commands the README promises: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
# The workplace's shared assets (envtest): beside the checkout, or at /work/shared for a clone elsewhere.
SHARED ?= $(firstword $(wildcard ../shared /work/shared) ../shared)

.PHONY: setup demo test lint unit bench lock
setup:
	@VENV=$(VENV) ./scripts/bootstrap.sh

demo: setup
	$(BIN)/automator demo

lint: setup
	$(BIN)/ruff check automator tests benchmarks
	$(BIN)/ruff format --check automator tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	eval "$$($(SHARED)/envtest/setup.sh 2>/dev/null || true)"; \
	  $(BIN)/python -m pytest -q $(PYTEST_ARGS)

unit: setup
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

# Refresh requirements/*.txt from pyproject.toml's ranges (uv's flags via LOCK_ARGS, e.g. --upgrade).
lock: setup
	./scripts/lock.sh $(LOCK_ARGS)
