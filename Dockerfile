# syntax=docker/dockerfile:1
#
# One image for both programs: `automator run` (the image update automator) and `automator sync`
# (the in-cluster synchronizer). The Helm chart in helm/automator runs it.
#
#   docker build -t automator:dev .
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t automator:0.1.0 .
#
# `make image` builds it on machines without a Docker engine or a reachable registry (buildah with
# chroot isolation and the vfs driver, a base made from Debian's packages, the machine's kubectl),
# and `make image-test` runs the result: see scripts/image-build.sh and tests/image/.
#
# The image runs as uid/gid 65532 and works with a read-only root filesystem as long as these
# three directories are writable (the chart mounts an emptyDir on each):
#   /tmp                   scratch space
#   /home/automator        $HOME: git config, ~/.ssh/known_hosts, ~/.gnupg
#   /var/cache/automator   $AUTOMATOR_CACHE_DIR and $XDG_CACHE_HOME: git clones
# With plain Docker, named volumes (a new one starts with the image's directory, owner included):
#   docker run --read-only --tmpfs /tmp -v automator-home:/home/automator \
#     -v automator-cache:/var/cache/automator automator:dev sync --git-url ... --branch main --path .
# (Not `--tmpfs /home/automator`: runc gives a tmpfs over an existing directory that directory's
# mode but root as its owner, so the user could not write it; podman's `--tmpfs DIR:U` can.)
#
# Everything is pinned. The base by digest (below); Debian packages by version; Python packages by
# the hashed lock requirements/runtime.txt (`make lock` refreshes it), as wheels only, so nothing
# is compiled at build time; kubectl by release and SHA-256. An apt pin fails the build once
# Debian replaces that version (a security or point release): that is the signal to refresh.
# Read the new versions in the base with
#   docker run --rm "$BASE_IMAGE" sh -c 'apt-get update -qq && apt-cache policy python3 python3-venv \
#     ca-certificates curl git gnupg openssh-client' | grep -E '^\S|Candidate'
# and update every pin of a package together (the same package is pinned in several stages).

# The base: Debian 12 "bookworm", slim, pinned by the digest of its multi-arch index. To refresh:
#   skopeo inspect --format '{{.Digest}}' docker://docker.io/library/debian:bookworm-slim
#   (or: crane digest docker.io/library/debian:bookworm-slim)
# then update this line and the apt pins above, together. Not verified from the machines this is
# developed on (no registry is reachable there): this digest is the one public pins of
# debian:bookworm-slim used; check it with the command above before relying on it.
# Debian's own python3 (3.11, what requirements/runtime.txt is locked for) rather than the python
# image: one base for every stage, and one that can be made from Debian's archive (mmdebstrap)
# where no registry can be reached. A locally made base cannot match a digest, so there the build
# passes --build-arg BASE_IMAGE=<local name> (scripts/base-image.sh).
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

# --- build: the package and its dependencies in a virtualenv, copied whole into the final image.
FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3=3.11.2-1+b1 \
        python3-venv=3.11.2-1+b1 \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/automator
WORKDIR /src
# Dependencies from the runtime lock (every version pinned, every file hashed; `make lock`
# refreshes it), in a layer of their own so a code change does not reinstall them. The build
# backend is in the lock too, hence --no-build-isolation below. Bytecode is compiled here, since a
# read-only root cannot write it later, with unchecked hashes: it then depends on the sources'
# bytes, not on file times, and the interpreter does not re-read a source to check it (the image
# never changes under it).
COPY requirements/runtime.txt ./requirements/
RUN /opt/automator/bin/python -m pip install --no-cache-dir --require-hashes --no-deps --only-binary :all: \
        --no-compile -r requirements/runtime.txt \
    && /opt/automator/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/automator/lib
# Only what `pip install .` reads: the project metadata (with the README it names) and the package.
COPY pyproject.toml README.md ./
COPY automator ./automator
# The commit `automator --version` names (automator/cli.py reads automator/_build.py), when given.
ARG REVISION=""
RUN if [ -n "$REVISION" ]; then printf 'COMMIT = "%s"\n' "$REVISION" >automator/_build.py; fi \
    && /opt/automator/bin/python -m pip install --no-cache-dir --no-deps --no-build-isolation --no-compile . \
    && /opt/automator/bin/python -m pip check \
    && /opt/automator/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash \
        /opt/automator/lib/python3*/site-packages/automator

# --- kubectl: fetched and verified in its own stage so no download tool reaches the final image.
# To use a kubectl you already have instead (no network, or an air-gapped build), replace this
# stage with a directory holding it: `docker buildx build --build-context kubectl=DIR` or
# `buildah bud --build-context kubectl=DIR` (DIR/kubectl is copied; the stage is then skipped).
FROM ${BASE_IMAGE} AS kubectl
ARG TARGETARCH
ARG KUBECTL_VERSION=v1.36.1
ARG KUBECTL_SHA256_AMD64=629d3f410e09bf49b64ae7079f7f0bda1191efed311f7d37fdbab0ad5b0ec2b7
ARG KUBECTL_SHA256_ARM64=59f7ee8e477fae658447607dc3c8790ac17a1b016c01c622c12070e969e2d4e7
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# TARGETARCH is set by BuildKit (and by buildx for each platform); the legacy builder leaves it
# empty, which means amd64.
RUN set -eu; \
    arch="${TARGETARCH:-amd64}"; \
    case "$arch" in \
      amd64) sum="$KUBECTL_SHA256_AMD64" ;; \
      arm64) sum="$KUBECTL_SHA256_ARM64" ;; \
      *) echo "no pinned kubectl checksum for architecture $arch" >&2; exit 1 ;; \
    esac; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates=20250419~deb12u2 \
      curl=7.88.1-10+deb12u15; \
    curl --fail --silent --show-error --location --proto '=https' --tlsv1.2 --output /kubectl \
      "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl"; \
    echo "${sum}  /kubectl" | sha256sum -c -; \
    chmod 0755 /kubectl

# --- runtime
FROM ${BASE_IMAGE}

# python3 for the virtualenv's interpreter (the venv links to /usr/bin/python3), git for clones
# and pushes, openssh-client for ssh remotes, gnupg for signing commits and verifying signatures,
# ca-certificates for https remotes and registries.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates=20250419~deb12u2 \
        git=1:2.39.5-0+deb12u3 \
        gnupg=2.2.40-1.1+deb12u2 \
        openssh-client=1:9.2p1-2+deb12u10 \
        python3=3.11.2-1+b1 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 65532 automator \
    && useradd --system --uid 65532 --gid 65532 --home-dir /home/automator --no-create-home \
        --shell /usr/sbin/nologin automator \
    && install -d -o 65532 -g 65532 -m 0750 /home/automator /var/cache/automator

# The configuration first and the copies last: a code change then redoes only the steps from
# `COPY --from=build` on (with the vfs driver every instruction costs a commit of the whole tree).
ENV PATH=/opt/automator/bin:$PATH \
    HOME=/home/automator \
    XDG_CACHE_HOME=/var/cache/automator \
    AUTOMATOR_CACHE_DIR=/var/cache/automator \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GIT_TERMINAL_PROMPT=0
USER 65532:65532
WORKDIR /home/automator
# --listen of either program (/healthz, /readyz, /metrics) and the automator's --webhook-listen
# (registry webhooks), as the Helm chart sets them.
EXPOSE 8080 8081
ENTRYPOINT ["automator"]
CMD ["--help"]

COPY --from=kubectl /kubectl /usr/local/bin/kubectl
COPY --from=build /opt/automator /opt/automator
# Fail the build, not the first pod, if a tool is missing or the entry point does not start
# (as the image's user, as it will run).
# `ssh -V` prints the client's version and exits: a smoke test, not an ssh session (DL3001).
# hadolint ignore=DL3001
RUN automator --help >/dev/null \
    && kubectl version --client \
    && git --version \
    && ssh -V \
    && gpg --version >/dev/null

# Last, so that a new revision or date only changes this layer: a build argument a stage declares
# is part of the environment of every RUN after it, so declared earlier it would rebuild them.
ARG BASE_IMAGE VERSION=0.1.0 REVISION="" CREATED="" SOURCE_URL=""
LABEL org.opencontainers.image.title="automator" \
      org.opencontainers.image.description="GitOps image update automation: registry scanning, pull requests, and an in-cluster synchronizer" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
