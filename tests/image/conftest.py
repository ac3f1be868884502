"""The built image, run as a user runs it: podman on runc, read-only root, the image's own user.

These tests need an image: ``make image-test`` builds it (``make image``) and runs them with
``AUTOMATOR_IMAGE`` naming it and ``CONTAINERS_STORAGE_CONF`` pointing podman at the storage the
build wrote (see scripts/image-lib.sh). Without ``AUTOMATOR_IMAGE`` the suite's default run does
not collect this directory at all (it is not a skip: there is nothing to test without an image);
naming the directory on the command line without it is an error that says what to do.

Every container gets the flags these machines need (runc, cgroupfs, explicit ulimits) and the
ones the Helm chart implies: host network (the servers are on loopback), a read-only root, a tmpfs
on /tmp, and on each other directory the chart mounts an emptyDir on, what the kubelet makes of
one: a fresh host directory, owned by root, mode 0777. (A podman tmpfs there would not do: runc
gives a tmpfs over an existing directory that directory's mode and root as its owner.)
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PODMAN = ["podman", "--runtime", "/usr/sbin/runc", "--cgroup-manager=cgroupfs"]
# The chart's emptyDirs besides /tmp (helm/automator; tests/integration/test_dockerfile.py keeps
# the Dockerfile and the chart in step). Everything else is read-only.
EMPTY_DIRS = ("/home/automator", "/var/cache/automator")
DEADLINE = 300.0  # seconds for one container run, image start-up included


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if os.environ.get("AUTOMATOR_IMAGE"):
        return None
    named = [Path(str(arg).split("::", 1)[0]).resolve() for arg in config.args]
    if any(path == HERE or HERE in path.parents for path in named):
        return None  # asked for by name: collected, and the `image` fixture says what is missing
    return True


@dataclass(frozen=True)
class Container:
    """Runs the image with podman; one container per call, removed when it exits."""

    image: str
    scratch: Path  # where this test's emptyDirs live on the host

    def run(
        self,
        *args: str,
        entrypoint: str | None = None,
        mounts: dict[Path, str] | None = None,
        env: Sequence[str] = (),
        extra: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """``args`` after the image; ``mounts`` host file -> container path (read-only); ``env``
        names variables passed through from this process (values stay off the command line)."""
        argv = [
            *PODMAN, "run", "--rm", "--network=host", "--read-only",
            "--ulimit", "nofile=1024:4096", "--ulimit", "nproc=1024:4096",
        ]  # fmt: skip
        argv += ["--tmpfs", "/tmp"]
        for path in EMPTY_DIRS:
            host = self.scratch / path.strip("/").replace("/", "-")
            host.mkdir(parents=True, exist_ok=True)
            host.chmod(0o777)
            argv += ["--volume", f"{host}:{path}:rw"]
        for source, target in (mounts or {}).items():
            argv += ["--volume", f"{source}:{target}:ro"]
        for name in env:
            argv += ["--env", name]
        if entrypoint is not None:
            argv += ["--entrypoint", entrypoint]
        argv += [*extra, self.image, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE, check=False)

    def inspect(self, template: str) -> str:
        proc = subprocess.run(
            [*PODMAN, "image", "inspect", "--format", template, self.image],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()


@pytest.fixture(scope="session")
def image() -> str:
    image = os.environ.get("AUTOMATOR_IMAGE")
    if not image:
        pytest.fail("AUTOMATOR_IMAGE is not set: run `make image-test` (it builds the image first)", pytrace=False)
    proc = subprocess.run([*PODMAN, "image", "exists", image], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"no image {image} in podman's storage (CONTAINERS_STORAGE_CONF="
            f"{os.environ.get('CONTAINERS_STORAGE_CONF', 'unset')}): run `make image` first",
            pytrace=False,
        )
    return image


@pytest.fixture
def container(image: str, tmp_path: Path) -> Container:
    return Container(image, tmp_path / "emptydirs")
