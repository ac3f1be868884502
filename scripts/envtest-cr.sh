#!/usr/bin/env bash
# A kube-apiserver that can store custom resources, for the synchronizer's CRD + CR tests.
#
# ../shared/envtest ships kube-apiserver v1.20.2 built with Go 1.19 from Debian's `kubernetes`
# source package. That binary segfaults on the first custom-resource write: its vendored
# github.com/modern-go/reflect2 v1.0.1 reads Go's map internals, which changed in Go 1.18
# (fixed in reflect2 v1.0.2). This script rebuilds the same source the same way
# (../shared/envtest/build-kube-apiserver.sh) with that one vendored package replaced by Debian's
# golang-github-modern-go-reflect2-dev (1.0.2). Nothing else differs.
#
# usage: eval "$(scripts/envtest-cr.sh)"   # exports AUTOMATOR_ENVTEST_CR_ASSETS=<dir>
#
# Cached under $XDG_CACHE_HOME (keyed by this script's hash): about 3 minutes on 2 cores the
# first time, instant after. Needs root (or sudo) for apt-get the first time. Progress goes to
# stderr; stdout carries only the export line, and nothing when the build failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(uname -m)" != x86_64 ]; then echo "envtest-cr: only linux x86_64 is supported" >&2; exit 1; fi
key=$(sha256sum "$here/envtest-cr.sh" | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/automator-envtest-cr
out=$cache/$key
src=kubernetes_1.20.5+really1.20.2.orig.tar.gz
src_sha256=b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc
src_url=http://deb.debian.org/debian/pool/main/k/kubernetes/$src

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -x "$out/kube-apiserver" ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  pkgs=(golang-go golang-github-modern-go-reflect2-dev xz-utils curl)
  if ! dpkg -s "${pkgs[@]}" >/dev/null 2>&1; then
    echo "envtest-cr: apt-get install ${pkgs[*]}" >&2
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}"; } >&2
  fi
  reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  grep -q 'go_above_118' <(ls "$reflect2") || { echo "envtest-cr: $reflect2 is older than 1.0.2" >&2; exit 1; }
  work=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "envtest-cr: building kube-apiserver v1.20.2 with reflect2 1.0.2 in $work (about 3 minutes)" >&2
  if [ -f "$cache/$src" ] && echo "$src_sha256  $cache/$src" | sha256sum -c --status; then :; else
    curl -fsSL --retry 3 -o "$cache/$src.tmp" "$src_url" >&2
    echo "$src_sha256  $cache/$src.tmp" | sha256sum -c --quiet >&2
    mv "$cache/$src.tmp" "$cache/$src"
  fi
  tar xzf "$cache/$src" -C "$work"
  k8s=$work/kubernetes-1.20.2
  rm -rf "$k8s/vendor/github.com/modern-go/reflect2"
  cp -r "$reflect2" "$k8s/vendor/github.com/modern-go/reflect2"
  rm -f "$k8s/vendor/github.com/modern-go/reflect2/go.mod"
  mkdir -p "$work/gp/src/k8s.io" && ln -sfn "$k8s" "$work/gp/src/k8s.io/kubernetes"
  (
    cd "$work/gp/src/k8s.io/kubernetes"
    export GO111MODULE=off GOPATH="$work/gp" GOFLAGS=
    # The generated OpenAPI definitions are not in the source tarball: generate them first.
    go build -o "$work/openapi-gen" k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
    dirs=$( (grep -rl --include='*.go' '+k8s:openapi-gen=' pkg cmd plugin; grep -Rl --include='*.go' '+k8s:openapi-gen=' vendor/k8s.io/) \
      | grep -v -e vendor/k8s.io/code-generator/ -e vendor/k8s.io/sample-apiserver/ -e _test.go \
      | xargs -n1 dirname | LC_ALL=C sort -u | sed 's#^#k8s.io/kubernetes/#' | paste -sd,)
    "$work/openapi-gen" -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
      -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r /dev/null
    V=k8s.io/kubernetes/vendor/k8s.io/component-base/version
    go build -ldflags "-s -w -X $V.gitVersion=v1.20.2 -X $V.gitMajor=1 -X $V.gitMinor=20 -X $V.gitTreeState=clean" \
      -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  ) >&2
  "$work/kube-apiserver" --version >&2
  mkdir -p "$out.tmp" && mv "$work/kube-apiserver" "$out.tmp/kube-apiserver"
  rm -rf "$out" && mv "$out.tmp" "$out"
fi
if ! command -v etcd >/dev/null 2>&1; then echo "envtest-cr: etcd is missing (apt-get install etcd-server)" >&2; exit 1; fi
ln -sf "$(command -v etcd)" "$out/etcd"
echo "export AUTOMATOR_ENVTEST_CR_ASSETS=$out"
