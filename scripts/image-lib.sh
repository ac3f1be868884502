# shellcheck shell=bash
# Sourced by scripts/base-image.sh, image-build.sh and image-test.sh: where the image tooling
# keeps its state, and the one way this machine runs a container. Not executable on its own.
#
# These machines have no Docker engine and no reachable container registry, so the image is built
# with Debian's buildah (`--isolation chroot`, the `vfs` storage driver: no overlay mounts, no
# user namespaces, no daemon) and run with Debian's podman on runc (crun fails on these
# machines' cgroups, and podman's default ulimits are refused, hence the explicit ones below).
# Both read the same private container storage under ~/.cache, so nothing here touches the
# machine's own /var/lib/containers, and the base image and build layers survive between runs.

# Root only: buildah's chroot isolation and podman on runc without user namespaces need it (as
# bootstrap.sh needs root or sudo for apt-get). A developer who is not root goes through sudo.
if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=HOME,XDG_CACHE_HOME,AUTOMATOR_IMAGE_CACHE,AUTOMATOR_IMAGE,IMAGE,KUBECTL_FROM,PIP_CERT,VENV,SHARED,PATH "$0" "$@"
fi

IMAGE_CACHE=${AUTOMATOR_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/automator-image}
mkdir -p "$IMAGE_CACHE"
# buildah and podman both honour CONTAINERS_STORAGE_CONF (containers-storage.conf(5)).
export CONTAINERS_STORAGE_CONF="$IMAGE_CACHE/storage.conf"
# (The runroot, for locks and mount state, is per storage and on a tmpfs, as containers-storage
# expects: it must not outlive a reboot.)
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "vfs"
graphroot = "$IMAGE_CACHE/storage"
runroot = "/run/automator-image/$(printf '%s' "$IMAGE_CACHE" | sha256sum | cut -c1-12)"
EOF
export BUILDAH_ISOLATION=chroot
export STORAGE_DRIVER=vfs


# The tools, from Debian's archive. Not version-pinned: a stable release only takes fixes, and a
# pin on a point release would break the first time Debian publishes the next one. The versions
# in use are printed with every build instead.
image_tools() {
  local need=()
  command -v buildah >/dev/null || need+=(buildah)
  command -v podman >/dev/null || need+=(podman)
  [ -x /usr/sbin/runc ] || need+=(runc)
  command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
  if [ ${#need[@]} -gt 0 ]; then
    echo "image: apt-get install ${need[*]}" >&2
    { apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >&2
  fi
}

podman_() { podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs "$@"; }
