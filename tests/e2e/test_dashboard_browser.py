"""The dashboard in a real browser, while the loop runs: a tag is pushed, the pull request opens,
it is merged, one cluster applies it and turns Ready, and the page a user left open shows each
step as it happens (it refreshes itself), with the right state and versions per row, a filter
that works, a timeline, and no console error.

Everything is real but GitHub (the stateful fake): Debian's docker-registry, a git remote, the
envtest kube-apiserver with ``automator sync --once`` (the two "clusters" are two namespaces,
as in ``test_cli_status``), ``automator run`` as a service process with ``--state-dir`` and a
``--dashboard-token-file``, and Debian's chromium driven by Playwright. Cycles are started by
signed generic webhooks, so nothing waits for an interval; every wait is for something the page
shows, with a deadline. A screenshot of each page is kept in ``build/test-artifacts/``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from automator.sync.cluster import KubeCluster
from tests.e2e.test_cli_status import Cluster, make_remote
from tests.e2e.test_run_forges import GIT_ENV
from tests.e2e.test_run_service import http, wait_for
from tests.servers.browser import Browser
from tests.servers.fake_github import GITHUB_TOKEN, github_server
from tests.servers.kube import KubeServer
from tests.servers.registry import RunningRegistry, free_port

SECRET = "webhook-secret-for-the-dashboard"
TOKEN = "dashboard-token-0123456789"


class Service:
    """``automator run`` as a service, with the dashboard on its --listen port."""

    def __init__(self, argv: list[str], log: Path, port: int) -> None:
        self.log = log
        self.base = f"http://127.0.0.1:{port}"
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                argv,
                env={**os.environ, **GIT_ENV, "FORGE_TOKEN": GITHUB_TOKEN},
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.wait(lambda: http("GET", f"{self.base}/readyz")[0] == 200, "/readyz")

    def wait(self, check: Any, what: str) -> Any:
        return wait_for(check, what, self.proc, self.log)

    def status(self) -> dict[str, Any]:
        code, text = http("GET", f"{self.base}/status", headers={"Authorization": f"Bearer {TOKEN}"})
        assert code == 200, text
        doc: dict[str, Any] = json.loads(text)
        return doc

    def cycle(self, image: str) -> None:
        """A signed generic webhook naming ``image``: one cycle, waited for to its end."""
        before = self.status()["lastCycle"]
        payload = json.dumps({"image": image}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
        code, text = http("POST", f"{self.base}/hooks/generic", payload, {"X-Signature-256": signature})
        assert code == 202, text

        def done() -> bool:
            s = self.status()
            last = s["lastCycle"]
            return bool(
                last and last["finished"] and last != before and not s["running"] and not s["queuedRepositories"]
            )

        self.wait(done, f"the cycle for {image}")


@pytest.fixture
def procs() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for svc in started:
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait(timeout=10)


def row(page: Any, policy: str) -> Any:
    return page.locator("#policies tbody tr", has=page.locator(f'a:text-is("{policy}")'))


def test_the_dashboard_follows_an_image_from_registry_to_cluster(
    registry: RunningRegistry,
    *,
    kube_apiserver: KubeServer,
    kube: KubeCluster,
    browser: Browser,
    procs: list[Service],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    digests = {"1.0.0": registry.push("dash-e2e/app", "1.0.0").digest}
    image = registry.image("dash-e2e/app")
    remote = make_remote(tmp_path, image)
    (tmp_path / "secret").write_text(SECRET + "\n")
    (tmp_path / "token").write_text(TOKEN + "\n")
    port = free_port()
    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
        b = Cluster(kube_apiserver, kube, remote, "dash-e2e-b", tmp_path)
        b.sync(capsys)
        b.rolled_out(digests)
        b.sync(capsys)
        a = Cluster(kube_apiserver, kube, remote, "dash-e2e-a", tmp_path)
        a.sync(capsys)
        a.rolled_out(digests)
        a.sync(capsys)
        argv = [
            sys.executable, "-m", "automator", "--log-level", "info", "run",
            "--git-url", str(remote), "--cache-dir", str(tmp_path / "cache"), "--interval", "1h",
            "--listen", f"127.0.0.1:{port}", "--webhook-secret-file", str(tmp_path / "secret"),
            "--webhook-debounce", "0s", "--state-dir", str(tmp_path / "state"),
            "--dashboard-token-file", str(tmp_path / "token"), "--dashboard-refresh", "1s",
            "--cluster", f"a={a.kubeconfig}", "--cluster", f"b={b.kubeconfig}",
            "--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app",
            "--forge-token-env", "FORGE_TOKEN", "--output", "json",
        ]  # fmt: skip
        svc = Service(argv, tmp_path / "service.log", port)
        procs.append(svc)
        svc.wait(lambda: svc.status()["lastCycle"] and svc.status()["lastCycle"]["finished"], "the start-up cycle")

        page = browser.page()
        page.goto(f"{svc.base}/")
        assert page.locator("form#login").is_visible()  # the token guards the dashboard
        page.fill("#token", "not the token")
        page.click("form#login button")
        assert "that token is not the dashboard's" in page.inner_text("main")
        page.fill("#token", TOKEN)
        page.click("form#login button")
        page.wait_for_selector("#policies")
        app = row(page, "apps:app")
        assert app.get_attribute("data-state") == "up to date"
        cells = app.locator("td")
        assert [cells.nth(i).inner_text() for i in (2, 3, 4, 5)] == ["1.0.0", "1.0.0", "1.0.0", "-"]
        assert page.locator("#policies thead th").all_inner_texts()[-2:] == ["a", "b"]

        # a new tag: the pull request opens, and the page that stayed open shows it by itself
        digests["1.1.0"] = registry.push("dash-e2e/app", "1.1.0").digest
        svc.cycle(f"{image}:1.1.0")
        [number] = list(gh.repos["octo/app"].pulls)
        page.wait_for_selector('#policies tbody tr[data-state="pull request open"]', state="attached")
        assert f"#{number} 1.1.0" in row(page, "apps:app").inner_text()
        Browser.screenshot(page, "dashboard-pull-request-open")

        # merged, applied in cluster a only and Ready there: merged, not applied everywhere
        gh.merge("octo/app", number)
        a.sync(capsys)
        a.rolled_out(digests)
        a.sync(capsys)
        svc.cycle(f"{image}:1.1.0")
        app = row(page, "apps:app")
        cells = app.locator("td")
        # mid-cycle the page may show the merge before the clusters' reports: wait for both
        expect(cells.nth(6)).to_have_text(re.compile(r"^1\.1\.0"), timeout=60_000)
        assert app.get_attribute("data-state") == "merged not applied"
        assert "b runs 1.0.0" in app.inner_text() and "a runs" not in app.inner_text()
        assert cells.nth(6).get_attribute("title") == "Ready"
        assert cells.nth(7).inner_text().startswith("1.0.0")
        Browser.screenshot(page, "dashboard")

        # the filter: as you type, and by state, and the URL keeps it
        page.fill("#q", "no-such-policy")
        assert page.inner_text("#shown").startswith("0 of")
        assert page.locator("#policies tbody tr:not([hidden])").count() == 0
        page.fill("#q", "")
        page.select_option("#state", "merged not applied")
        assert page.locator("#policies tbody tr:not([hidden])").count() == 1
        assert "state=merged+not+applied" in page.url
        page.reload()  # the server filters the same way
        assert page.locator("#policies tbody tr:not([hidden])").count() == 1

        # one policy: every cluster with its running digest, and the timeline of 1.1.0
        page.click('a:text-is("apps:app")')
        page.wait_for_selector("#timeline")
        clusters = page.locator("#clusters tbody tr").all_inner_texts()
        assert clusters[0].startswith("a\t1.1.0") and clusters[1].startswith("b\t1.0.0")
        newest = page.locator("#timeline > li").first
        assert newest.locator("h3").inner_text() == "1.1.0"
        steps = newest.locator("li.step").evaluate_all("els => els.map(e => e.className.split(' ')[1])")
        assert steps[:3] == ["seen", "opened", "merged"] and "applied" in steps and "healthy" in steps
        assert str(newest.locator(f'a:text-is("#{number}")').get_attribute("href")).endswith(f"/pull/{number}")
        policy_file = page.locator('a:text-is("policy file")').get_attribute("href")
        forge_web = gh.base_url.removesuffix("/api/v3")
        assert policy_file == f"{forge_web}/octo/app/blob/main/policies/app.yaml#L4"  # the line naming it
        Browser.screenshot(page, "dashboard-policy")

        # signed out: the pages are refused again
        page.click("a.logout")
        page.wait_for_selector("form#login")
        assert browser.errors == []
        assert TOKEN not in svc.log.read_text()
