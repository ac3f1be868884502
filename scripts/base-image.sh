#!/usr/bin/env bash
# Make the Dockerfile's base image locally, from Debian's packages, when no registry can be reached.
#
#   scripts/base-image.sh            # prints the local image name to pass as BASE_IMAGE
#
# The Dockerfile builds FROM docker.io/library/debian:bookworm-slim, pinned by digest. A digest
# names bytes that only a registry can hand out, so it cannot be satisfied by an image made here;
# this script makes the nearest equivalent instead (what debuerreotype does for the official image:
# a minbase bookworm with its "slim" dpkg excludes and apt settings), imports it under the
# Dockerfile's image name without the digest, and scripts/image-build.sh passes that name as
# --build-arg BASE_IMAGE, with --pull=never so the build never tries a registry.
#
# Reproducible: mmdebstrap with SOURCE_DATE_EPOCH writes the same tarball for the same package set.
# Cached: the tarball and the imported image are keyed by a hash of the recipe below, under
# ~/.cache/automator-image, so a second run on one machine only checks that the image exists.
# The mirror moves on (security updates), so a cached base gets older; to take Debian's latest,
# delete the cached base (`rm ~/.cache/automator-image/base-*.tar`, `podman rmi` the image) or
# change the recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-lib.sh
. scripts/image-lib.sh
image_tools

NAME=docker.io/library/debian:bookworm-slim
SUITE=bookworm
ARCH=$(dpkg --print-architecture)
MIRRORS=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
# The official image's "slim" variant: no manuals, docs (except copyrights) or translations, in
# the base and in whatever a later `apt-get install` adds (mmdebstrap writes these into
# /etc/dpkg/dpkg.cfg.d/99mmdebstrap inside the image).
DPKG_OPTS=(
  "path-exclude=/usr/share/man/*"
  "path-exclude=/usr/share/groff/*"
  "path-exclude=/usr/share/info/*"
  "path-exclude=/usr/share/lintian/*"
  "path-exclude=/usr/share/linda/*"
  "path-exclude=/usr/share/locale/*"
  "path-exclude=/usr/share/doc/*"
  "path-include=/usr/share/doc/*/copyright"
)
# ... and its apt settings (docker-no-languages, docker-gzip-indexes, docker-clean).
APT_OPTS=(
  'Acquire::Languages "none";'
  'Acquire::GzipIndexes "true";'
  'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };'
)
# /usr merged the way the official image has it, by mmdebstrap's hook rather than the usrmerge
# package (which would pull perl, 50 MB, into every layer above).
HOOKS=(/usr/share/mmdebstrap/hooks/merged-usr)
# A fixed timestamp for every file mmdebstrap creates (package files keep their own).
SOURCE_DATE_EPOCH=1735689600 # 2025-01-01T00:00:00Z
export SOURCE_DATE_EPOCH

recipe=$(printf '%s\n' "$NAME" "$SUITE" "$ARCH" "${MIRRORS[@]}" "${DPKG_OPTS[@]}" "${APT_OPTS[@]}" "${HOOKS[@]##*/}" "$SOURCE_DATE_EPOCH")
key=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)
tarball="$IMAGE_CACHE/base-$SUITE-$ARCH-$key.tar"
keyed=localhost/automator-base:$SUITE-$key

if ! podman_ image exists "$keyed"; then
  if [ ! -s "$tarball" ]; then
    echo "base: mmdebstrap $SUITE (minbase, $ARCH) -> $tarball" >&2
    args=(--variant=minbase --architectures="$ARCH" --format=tar --quiet)
    for opt in "${DPKG_OPTS[@]}"; do args+=(--dpkgopt="$opt"); done
    for opt in "${APT_OPTS[@]}"; do args+=(--aptopt="$opt"); done
    for hook in "${HOOKS[@]}"; do args+=(--hook-dir="$hook"); done
    mmdebstrap "${args[@]}" "$SUITE" "$tarball.tmp" "${MIRRORS[@]}"
    mv "$tarball.tmp" "$tarball"
    # a new recipe replaces the old one's tarball
    find "$IMAGE_CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "${tarball##*/}" -delete
  fi
  echo "base: podman import $tarball as $keyed" >&2
  podman_ import --quiet --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$keyed" >/dev/null
fi
# The Dockerfile's name for the base points at this recipe's image (again, if another recipe's
# image held it); other recipes' images go.
for old in $(podman_ images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/automator-base:' || true); do
  [ "$old" = "$keyed" ] || podman_ rmi "$old" >/dev/null || true
done
podman_ tag "$keyed" "$NAME"
echo "$NAME"
