#!/usr/bin/env bash
# `make image`: build the Dockerfile on a machine without a Docker engine or a reachable registry.
#
#   scripts/image-build.sh                      # -> localhost/automator:dev
#   IMAGE=localhost/automator:x scripts/image-build.sh
#   KUBECTL_FROM=download scripts/image-build.sh   # the Dockerfile's pinned, verified download
#
# - the base: scripts/base-image.sh makes debian:bookworm-slim from Debian's archive (mmdebstrap)
#   and tags it under the Dockerfile's name; the build uses it with --pull=never;
# - kubectl: KUBECTL_FROM (default: the machine's `kubectl`) replaces the Dockerfile's download
#   stage through --build-context, as `docker buildx build --build-context kubectl=DIR` would;
# - the build: buildah with chroot isolation and the vfs driver, layers cached in the private
#   storage under ~/.cache/automator-image (scripts/image-lib.sh), so an unchanged tree rebuilds
#   in seconds and a code change rebuilds only the layers from `COPY automator` on;
# - the same inputs give the same image contents: Python packages from the hashed lock as wheels
#   only, Debian packages pinned by version, bytecode compiled with unchecked hashes, and the
#   labels from the commit (not from the clock).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-lib.sh
. scripts/image-lib.sh
image_tools

IMAGE=${IMAGE:-localhost/automator:dev}
start=$(date +%s)
echo "image: $(buildah --version), $(podman --version), $(runc --version | head -1)" >&2

base=$(scripts/base-image.sh)

build=(--layers --pull=never --isolation chroot --storage-driver vfs --format oci --build-arg "BASE_IMAGE=$base")
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)
build+=(--build-arg "VERSION=$version")
if revision=$(git rev-parse HEAD 2>/dev/null); then
  build+=(--build-arg "REVISION=$revision" --build-arg "CREATED=$(git log -1 --format=%cI)")
fi

# Behind a TLS-inspecting proxy (as on these machines) pip inside the build must trust the same CA
# bundle as pip here: PIP_CERT, when set, is bind-mounted for the RUN steps of the build stage,
# with a pip.conf naming it. Every file pip fetches is still checked against the lock's hashes.
# Only that stage gets the mounts: buildah leaves an empty file where each was, which the final
# image should not carry (it copies nothing from the build stage but /opt/automator).
mounts=()
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
  printf '[global]\ncert = /run/automator-build/ca.crt\n' >"$IMAGE_CACHE/pip.conf"
  mounts+=(--volume "$PIP_CERT:/run/automator-build/ca.crt:ro" --volume "$IMAGE_CACHE/pip.conf:/etc/pip.conf:ro")
  echo "image: pip in the build trusts $PIP_CERT (PIP_CERT)" >&2
fi

KUBECTL_FROM=${KUBECTL_FROM-$(command -v kubectl || true)}
if [ -n "$KUBECTL_FROM" ] && [ "$KUBECTL_FROM" != download ]; then
  # A directory of its own holding only kubectl: the context the stage is replaced by, copied
  # again only when the binary changed (so the layer cache holds).
  context="$IMAGE_CACHE/kubectl-context"
  mkdir -p "$context"
  if ! cmp -s "$KUBECTL_FROM" "$context/kubectl"; then
    cp -L "$KUBECTL_FROM" "$context/kubectl.tmp" && chmod 0755 "$context/kubectl.tmp"
    mv "$context/kubectl.tmp" "$context/kubectl"
  fi
  echo "image: kubectl from $KUBECTL_FROM ($("$context/kubectl" version --client 2>/dev/null | head -1))" >&2
  build+=(--build-context "kubectl=$context")
else
  echo "image: kubectl from the Dockerfile's pinned download" >&2
fi

# The build stage first, under a tag of its own, then the image (which finds that stage cached):
# the tags keep both chains of layers, and everything else, the layers of earlier builds, is
# pruned, so the storage stays at about 4 GB (vfs keeps a full copy of the tree per layer) instead
# of growing by that much with every change.
cache=localhost/automator-build-cache
echo "image: buildah bud ${build[*]} ${mounts[*]} --target build -t $cache:build ." >&2
buildah bud "${build[@]}" "${mounts[@]}" --target build -t "$cache:build" . >&2
if [ "${KUBECTL_FROM:-download}" = download ]; then
  buildah bud "${build[@]}" "${mounts[@]}" --target kubectl -t "$cache:kubectl" . >&2
fi
echo "image: buildah bud ${build[*]} -t $IMAGE ." >&2
buildah bud "${build[@]}" -t "$IMAGE" . >&2
podman_ image prune --force >/dev/null

size=$(podman_ image inspect --format '{{.Size}}' "$IMAGE")
echo "image: $IMAGE built in $(($(date +%s) - start)) s; size $((size / 1000 / 1000)) MB ($size bytes, uncompressed)" >&2
podman_ image inspect --format 'image: id {{.Id}}, user {{.Config.User}}, entrypoint {{.Config.Entrypoint}}' "$IMAGE" >&2
