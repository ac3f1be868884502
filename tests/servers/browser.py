"""A real browser for the dashboard's tests: Debian's chromium, driven by Playwright.

Playwright's own browser download cannot work here, so it drives ``/usr/bin/chromium`` (the
``chromium`` package ``scripts/bootstrap.sh`` installs) headless, with a fresh user-data
directory per test and everything that would reach the network (updates, sync, component
downloads) switched off. Each page records its console errors and uncaught exceptions, which
a test can assert are none. Screenshots go to ``build/test-artifacts/`` (kept by CI as the
test's artefact; ``build/`` is not committed).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"


@dataclass
class Browser:
    """One browser context: pages opened with :meth:`page` log their console errors in ``errors``."""

    context: Any
    errors: list[str] = field(default_factory=list)

    def page(self) -> Any:
        page = self.context.new_page()
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.set_default_timeout(60_000)  # a deadline for each wait, never a sleep
        return page

    @staticmethod
    def screenshot(page: Any, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield Browser(context)
        finally:
            context.close()
