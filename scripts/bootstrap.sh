#!/usr/bin/env bash
# Install what automator's demo and tests need on a fresh Debian machine, then a venv.
# Idempotent: each step is skipped when already done. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v git >/dev/null || need+=(git)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
command -v etcd >/dev/null || need+=(etcd-server)
command -v gpg >/dev/null || need+=(gnupg)
command -v chromium >/dev/null || need+=(chromium)  # the dashboard's browser tests (Playwright drives it)
command -v prometheus >/dev/null || need+=(prometheus)  # the promotion query's tests (a real Prometheus)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "bootstrap: apt-get install ${need[*]}" >&2
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"; } >&2
fi
VENV=${VENV:-.venv}
# Python packages come from the lock (requirements/dev.txt: every version pinned, every file
# hashed; `make lock` refreshes it), never from a fresh resolve: what CI, a developer and the
# image install is what was tested. The project itself is installed without its dependencies
# and without build isolation, so even its build backend comes from the lock.
lock=requirements/dev.txt
stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing $lock into $VENV" >&2
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r "$lock" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . >&2
  "$VENV/bin/python" -m pip check >&2
  touch "$stamp"
fi
