"""What build is running, and the process metrics both services expose with it.

:func:`build_commit` reads the commit the package was built from (``automator/_build.py``,
written when an image or wheel is built; else ``git rev-parse`` in a checkout; else
``unknown``), :func:`version_string` is ``automator --version``'s line, and
:func:`instrument` adds to a service's Prometheus registry ``automator_build_info{program,
version, commit, python}`` and prometheus_client's own process (CPU, resident memory, open
file descriptors, start time), platform and garbage-collector collectors.
"""

from __future__ import annotations

import platform
import re
import subprocess
from functools import cache
from pathlib import Path

from prometheus_client import CollectorRegistry, GCCollector, Info, PlatformCollector, ProcessCollector

__all__ = ["__version__", "build_commit", "instrument", "version_string"]

__version__ = "0.1.0"  # the package's version (pyproject.toml's), exported by automator/__init__.py


def version_string(package: Path | None = None) -> str:
    return f"automator {__version__} (commit {build_commit(package)})"


def build_commit(package: Path | None = None) -> str:
    """The commit the package (this one by default, read once) was built from, 12 hex digits,
    or ``unknown``."""
    return _commit(package) if package is not None else _own_commit()


@cache
def _own_commit() -> str:
    return _commit(Path(__file__).resolve().parent)


def _commit(package: Path) -> str:
    build = package / "_build.py"
    if build.is_file():
        found = re.search(r"""^COMMIT\s*=\s*["']([0-9a-fA-F]{7,40})["']""", build.read_text("utf-8"), re.M)
        if found:
            return found.group(1)[:12]
    if (package.parent / ".git").exists():
        try:
            done = subprocess.run(
                ["git", "-C", str(package.parent), "rev-parse", "--short=12", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return "unknown"


def instrument(registry: CollectorRegistry, program: str) -> None:
    """The build-info metric and the process, platform and GC collectors, on ``registry``."""
    info = Info("automator_build", "The build that runs: one series, value 1.", registry=registry)
    info.info(
        {"program": program, "version": __version__, "commit": build_commit(), "python": platform.python_version()}
    )
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
