# syntax=docker/dockerfile:1
#
# One image for both programs: `automator run` (the image update automator) and `automator sync`
# (the in-cluster synchronizer). The Helm chart in helm/automator runs it.
#
#   docker build -t automator:dev .
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t automator:0.1.0 .
#
# NOT BUILT HERE: the machines this project is developed and tested on have no Docker engine, so
# this file is kept correct by reading and by the static checks in tests/integration/
# test_dockerfile.py (COPY sources exist and survive .dockerignore, the user, paths and ports agree
# with the chart, the kubectl pin is well formed). Build it once on a machine with Docker after
# changing it.
#
# The image runs as uid/gid 65532 and works with a read-only root filesystem as long as these
# three directories are writable (the chart mounts an emptyDir on each):
#   /tmp                   scratch space
#   /home/automator        $HOME: git config, ~/.ssh/known_hosts, ~/.gnupg
#   /var/cache/automator   $AUTOMATOR_CACHE_DIR and $XDG_CACHE_HOME: git clones
# With plain Docker:
#   docker run --read-only --tmpfs /tmp --tmpfs /home/automator:mode=1777 \
#     --tmpfs /var/cache/automator:mode=1777 automator:dev sync --git-url ... --branch main --path .
#
# kubectl is here for `kubectl kustomize`. It comes from the official release, pinned by version
# and checked against the SHA-256 of that release's binary for the target architecture. To move to
# another release, update all three ARGs together, from https://dl.k8s.io/release/<v>/bin/linux/
# <arch>/kubectl.sha256.

ARG PYTHON_VERSION=3.11
ARG DEBIAN_RELEASE=bookworm

# --- build: the package and its dependencies in a virtualenv, copied whole into the final image.
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/automator
WORKDIR /src
# Dependencies from the runtime lock (every version pinned, every file hashed; `make lock`
# refreshes it), in a layer of their own so a code change does not reinstall them. The build
# backend is in the lock too, hence --no-build-isolation below.
COPY requirements/runtime.txt ./requirements/
RUN /opt/automator/bin/python -m pip install --require-hashes --no-deps -r requirements/runtime.txt
# Only what `pip install .` reads: the project metadata (with the README it names) and the package.
COPY pyproject.toml README.md ./
COPY automator ./automator
# A regular (non-editable) install compiles bytecode now, since a read-only root cannot later.
RUN /opt/automator/bin/python -m pip install --no-deps --no-build-isolation . \
    && /opt/automator/bin/python -m pip check

# --- kubectl: fetched and verified in its own stage so no download tool reaches the final image.
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS kubectl
ARG TARGETARCH
ARG KUBECTL_VERSION=v1.36.1
ARG KUBECTL_SHA256_AMD64=629d3f410e09bf49b64ae7079f7f0bda1191efed311f7d37fdbab0ad5b0ec2b7
ARG KUBECTL_SHA256_ARM64=59f7ee8e477fae658447607dc3c8790ac17a1b016c01c622c12070e969e2d4e7
# TARGETARCH is set by BuildKit (and by buildx for each platform); the legacy builder leaves it
# empty, which means amd64.
RUN set -eu; \
    arch="${TARGETARCH:-amd64}"; \
    case "$arch" in \
      amd64) sum="$KUBECTL_SHA256_AMD64" ;; \
      arm64) sum="$KUBECTL_SHA256_ARM64" ;; \
      *) echo "no pinned kubectl checksum for architecture $arch" >&2; exit 1 ;; \
    esac; \
    python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
      "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl" /kubectl; \
    echo "${sum}  /kubectl" | sha256sum -c -; \
    chmod 0755 /kubectl

# --- runtime
FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}
ARG PYTHON_VERSION
ARG DEBIAN_RELEASE
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="automator" \
      org.opencontainers.image.description="GitOps image update automation: registry scanning, pull requests, and an in-cluster synchronizer" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}"

# git for clones and pushes, openssh-client for ssh remotes, gnupg for signing commits and
# verifying signatures, ca-certificates for https remotes and registries.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates \
        git \
        gnupg \
        openssh-client \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 65532 automator \
    && useradd --system --uid 65532 --gid 65532 --home-dir /home/automator --no-create-home \
        --shell /usr/sbin/nologin automator \
    && install -d -o 65532 -g 65532 -m 0750 /home/automator /var/cache/automator

COPY --from=kubectl /kubectl /usr/local/bin/kubectl
COPY --from=build /opt/automator /opt/automator

ENV PATH=/opt/automator/bin:$PATH \
    HOME=/home/automator \
    XDG_CACHE_HOME=/var/cache/automator \
    AUTOMATOR_CACHE_DIR=/var/cache/automator \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GIT_TERMINAL_PROMPT=0

# Fail the build, not the first pod, if a tool is missing or the entry point does not start.
RUN automator --help >/dev/null \
    && kubectl version --client \
    && git --version \
    && ssh -V \
    && gpg --version >/dev/null

USER 65532:65532
WORKDIR /home/automator
# --listen of either program (/healthz, /readyz, /metrics) and the automator's --webhook-listen
# (registry webhooks), as the Helm chart sets them.
EXPOSE 8080 8081
ENTRYPOINT ["automator"]
CMD ["--help"]
