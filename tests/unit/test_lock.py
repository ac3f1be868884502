"""The lock files agree with pyproject.toml and with each other.

``requirements/dev.txt`` (CI, ``make``) and ``requirements/runtime.txt`` (the image) are made by
``scripts/lock.sh``; a range changed in pyproject.toml without a new lock, or a lock edited by
hand, would make what is installed drift from what was tested. These checks fail then.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")
# CPython 3.11 on Linux, where CI and the image run: markers are judged there
LINUX_311 = {"python_version": "3.11", "sys_platform": "linux", "platform_python_implementation": "CPython"}


def read_lock(name: str) -> dict[str, tuple[str, int, str]]:
    """package -> (version, number of hashes, marker) of one lock file."""
    pins: dict[str, tuple[str, int, str]] = {}
    current = ""
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            m = PIN.match(line)
            assert m, f"{name}: not a pinned requirement: {line!r}"
            current = canonicalize_name(m.group(1))
            assert current not in pins, f"{name}: {current} pinned twice"
            pins[current] = (m.group(2), 0, m.group(3) or "")
        elif line.strip().startswith("--hash=sha256:"):
            version, hashes, marker = pins[current]
            pins[current] = (version, hashes + 1, marker)
    return pins


def requirements(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    build = [ln for ln in (ROOT / "requirements" / "build.in").read_text().splitlines() if ln and ln[0] != "#"]
    reqs = [Requirement(r) for r in [*names, *build]]
    return [r for r in reqs if canonicalize_name(r.name) != "automator"]  # the self-reference of "dev"


@pytest.mark.parametrize("name", ["dev.txt", "runtime.txt"])
def test_every_pin_carries_hashes(name: str) -> None:
    pins = read_lock(name)
    assert pins, f"{name} pins nothing"
    assert [p for p, (_, hashes, _) in pins.items() if hashes == 0] == []


@pytest.mark.parametrize(
    ("lock", "extras"), [("runtime.txt", [None]), ("dev.txt", [None, "test", "dev"])], ids=["runtime", "dev"]
)
def test_the_lock_satisfies_every_range_of_pyproject(lock: str, extras: list[str | None]) -> None:
    pins = read_lock(lock)
    for extra in extras:
        for req in requirements(extra):
            name = canonicalize_name(req.name)
            assert name in pins, f"{req} (pyproject.toml) is not in {lock}: run `make lock`"
            version = pins[name][0]
            assert req.specifier.contains(version, prereleases=True), (
                f"{lock} pins {name}=={version}, outside pyproject.toml's {req}: run `make lock`"
            )


def test_both_locks_pin_one_version_and_the_image_gets_no_test_tools() -> None:
    dev, runtime = read_lock("dev.txt"), read_lock("runtime.txt")
    assert {p: v for p, (v, _, _) in runtime.items()} == {p: dev[p][0] for p in runtime if p in dev}
    assert set(runtime) <= set(dev)
    for tool in ("pytest", "hypothesis", "ruff", "mypy", "import-linter", "helm-python-sdk", "uv"):
        assert tool not in runtime, f"{tool} would reach the image"


def test_markers_keep_what_linux_needs() -> None:
    for package, (_, _, marker) in read_lock("dev.txt").items():
        if package in {"colorama"}:  # Windows only
            continue
        assert not marker or Marker(marker).evaluate(LINUX_311), f"{package} ; {marker} is skipped on Linux"
