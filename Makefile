# The two commands the README promises: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
# The workplace's shared assets (envtest): beside the checkout, or at /work/shared for a clone elsewhere.
SHARED ?= $(firstword $(wildcard ../shared /work/shared) ../shared)

.PHONY: setup demo test lint unit bench lock image image-test
setup:
	@VENV=$(VENV) ./scripts/bootstrap.sh

demo: setup
	$(BIN)/automator demo

lint: setup
	$(BIN)/ruff check automator tests benchmarks scripts
	$(BIN)/ruff format --check automator tests benchmarks scripts
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

# The container image, built and run here without Docker or a registry: buildah and podman from
# Debian, a base made from Debian's packages, the machine's kubectl (scripts/image-build.sh says
# how; KUBECTL_FROM=download keeps the Dockerfile's pinned download). Needs root, as setup does.
IMAGE ?= localhost/automator:dev
image:
	IMAGE=$(IMAGE) ./scripts/image-build.sh

# The image's own tests (tests/image/): both programs inside the container against the suite's
# servers, read-only root, the image's uid 65532; and hadolint on the Dockerfile.
image-test: setup image
	AUTOMATOR_IMAGE=$(IMAGE) VENV=$(VENV) SHARED=$(SHARED) ./scripts/image-test.sh $(PYTEST_ARGS)
