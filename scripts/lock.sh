#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml's ranges: `make lock` (or scripts/lock.sh).
#
#   requirements/dev.txt      runtime + test + dev tools + the build backend: CI, `make`, developers
#   requirements/runtime.txt  runtime + the build backend: the container image
#
# Both are made by uv's pip-compatible resolver with a hash for every file of every pinned
# release, for CPython 3.11 on any platform (the image is built for amd64 and arm64). The runtime
# lock is resolved against the dev lock, so a package is pinned at one version in both.
# Pass uv's flags through, e.g. `scripts/lock.sh --upgrade-package httpx` or `--upgrade`.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[ -x "$UV" ] || UV=$(command -v uv) || { echo "lock: no uv; run 'make setup' first" >&2; exit 2; }
common=(--quiet --universal --python-version 3.11 --generate-hashes --no-header --annotation-style line)
"$UV" pip compile "${common[@]}" "$@" pyproject.toml requirements/build.in --extra dev -o requirements/dev.txt
"$UV" pip compile "${common[@]}" "$@" pyproject.toml requirements/build.in -c requirements/dev.txt \
  -o requirements/runtime.txt
echo "lock: requirements/dev.txt and requirements/runtime.txt are up to date" >&2
