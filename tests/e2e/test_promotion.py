"""Promotion after proof, end to end: a new tag goes to staging at once and to production only
once staging has run it Ready for the soak (a clock the test controls); a staging rollout that
fails, or a rollback there, is never promoted; a query over a metric we serve, scraped by the real
Prometheus, holds production when it crosses its threshold. Production's pull request shows the
proof; ``automator status`` shows the held row.

Real servers: two kube-apiservers (staging: the session's; production: one of its own), the
registry, a git remote, the fake GitHub, Debian's prometheus. The synchronizer runs in-process
(``automator sync --once``) against each; no controller runs, so the test writes the
Deployment's status through the status subresource as its controller would. The automator's
cycles run in-process too, with the state database's clock in the test's hands (the
synchronizers' own clocks are real: the soak is counted against the times they report).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from automator.cli import _observe_clusters, build_parser
from automator.config import DEFAULT, with_overrides
from automator.promotion import Prometheuses
from automator.run import RunOptions, RunSummary, run_once
from automator.state import StateStore
from automator.status import status_from_state, status_json
from automator.sync.__main__ import main as sync_main
from automator.sync.cluster import KubeCluster
from automator.wiring import make_forge
from tests.e2e.test_cli_status import cluster_kubeconfig
from tests.e2e.test_run_forges import bare_remote
from tests.servers.fake_github import GITHUB_TOKEN, GitHubState, github_server
from tests.servers.git_http import read_file, write_commit
from tests.servers.kube import DEPLOY, NS, KubeServer, start_apiserver
from tests.servers.kube import deployment_ready as ready
from tests.servers.prometheus import MetricsEndpoint, RunningPrometheus, metrics_endpoint, run_prometheus
from tests.servers.registry import RunningRegistry

pytestmark = pytest.mark.usefixtures("isolated_git")


@pytest.fixture
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeServer]:
    with start_apiserver(tmp_path_factory.mktemp("production-apiserver")) as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def deployment_failed(generation: int) -> dict[str, Any]:
    """What the Deployment controller writes when the rollout of ``generation`` ran out of time."""
    return {
        "observedGeneration": generation,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "unavailableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"},
        ],
    }


def make_remote(tmp: Path, image: str, promotion: str) -> Path:
    top = tmp / "seed"
    (top / "policies").mkdir(parents=True)
    (top / "policies" / "app.yaml").write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app-staging\n  namespace: apps\n"
        f"spec:\n  image: {image}\n  insecure: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
        "---\n"
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app-production\n"
        f"  namespace: apps\nspec:\n  image: {image}\n  insecure: true\n  policy:\n    semver:\n"
        f"      range: '>=1.0.0'\n  promotion:\n{promotion}"
    )
    for env in ("staging", "production"):
        (top / env).mkdir()
        (top / env / "app.yaml").write_text(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 1\n"
            "  progressDeadlineSeconds: 60\n"
            "  selector:\n    matchLabels: {app: app}\n  template:\n    metadata:\n      labels: {app: app}\n"
            "    spec:\n      containers:\n        - name: app\n"
            f'          image: {image}:1.0.0 # {{"$imagepolicy": "apps:app-{env}"}}\n'
        )
    return bare_remote(top, tmp)


class Env:
    """One environment: its cluster, its namespace, its synchronizer over its directory."""

    def __init__(self, name: str, server: KubeServer, remote: Path, tmp: Path, prefix: str = "promo") -> None:
        self.name, self.ns = name, f"{prefix}-{name}"
        self.kube = KubeCluster.connect(str(server.kubeconfig), pool_size=2, timeout=10.0)
        self.kube.apply(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}})
        self.kubeconfig = cluster_kubeconfig(server, self.ns, tmp / f"{name}.kubeconfig")
        self.argv = [
            "--once", "--git-url", str(remote), "--branch", "main", "--path", name,
            "--kubeconfig", str(self.kubeconfig), "--default-namespace", self.ns, "--inventory-namespace", self.ns,
            "--cache-dir", str(tmp / f"{name}-sync-cache"), "--output", "json",
        ]  # fmt: skip

    def sync(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = sync_main(self.argv)
        out = capsys.readouterr().out
        assert code == 0, out

    def image(self) -> str:
        live = self.kube.get(DEPLOY, self.ns, "app")
        assert live is not None
        return str(live["spec"]["template"]["spec"]["containers"][0]["image"])

    def settle(self, capsys: pytest.CaptureFixture[str], status: str = "ready") -> None:
        """Sync, the controller's part (rolled out, or ran out of time), then sync again to report it."""
        self.sync(capsys)
        live = self.kube.get(DEPLOY, self.ns, "app")
        assert live is not None
        generation = int(live["metadata"]["generation"])
        written = ready(generation) if status == "ready" else deployment_failed(generation)
        self.kube.patch_status(DEPLOY, self.ns, "app", written)
        self.sync(capsys)


class Automator:
    def __init__(self, remote: Path, gh: GitHubState, staging: Env, tmp: Path, prometheus: str | None = None) -> None:
        self.gh, self.repo = gh, gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
        self.config = with_overrides(
            DEFAULT,
            {
                "spec.git.url": str(remote),
                "spec.forge.provider": "github",
                "spec.forge.url": gh.base_url,
                "spec.forge.repository": "octo/app",
            },
        )
        self.args = build_parser("run").parse_args(["run", "--cluster", f"staging={staging.kubeconfig}"])
        self.state, self.cache = tmp / "state", tmp / "cache"
        self.clock = Clock()
        self.prober = Prometheuses({"staging": prometheus}) if prometheus else None

    def cycle(self) -> RunSummary:
        """One cycle as ``automator run --once --state-dir ... --cluster staging=...`` runs it."""
        with StateStore(self.state, now=self.clock) as store:
            sight = _observe_clusters(self.args, store)
            options = RunOptions(self.cache, state=store, clusters=sight, prober=self.prober)
            summary = run_once(self.config, lambda c: make_forge(c, token=GITHUB_TOKEN), options)
            _observe_clusters(self.args, store)
        return summary

    def choice(self, summary: RunSummary, policy: str) -> Any:
        [r] = [r for r in summary.plan.scan if r.policy.name == policy]
        assert r.error is None, r.error
        return r.choice

    def open_pr(self, branch_suffix: str) -> Any:
        found = [p for p in self.repo.pulls.values() if p.state == "open" and p.head.endswith(branch_suffix)]
        return found[0] if found else None

    def held_row(self) -> str:
        """``automator status --output json`` as the service's /status builds it."""
        return json.dumps(status_json(status_from_state(self.state, self.clock())))


def test_production_gets_a_version_only_after_staging_ran_it_ready_for_the_soak(
    registry: RunningRegistry,
    kube_apiserver: KubeServer,
    production: KubeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for tag in ("1.0.0", "1.1.0"):
        registry.push("promo/app", tag)
    image = registry.image("promo/app")
    remote = make_remote(tmp_path, image, "    after:\n      - cluster: staging\n        healthyFor: 30m\n")
    staging, prod = Env("staging", kube_apiserver, remote, tmp_path), Env("production", production, remote, tmp_path)
    staging.settle(capsys)
    prod.settle(capsys)
    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        a = Automator(remote, gh, staging, tmp_path)

        # a new tag goes to staging at once; production waits for it to run there
        first = a.cycle()
        assert a.open_pr("app-staging") is not None and "1.1.0" in a.open_pr("app-staging").title
        assert a.open_pr("app-production") is None
        held = a.choice(first, "apps:app-production").held
        assert (held.tag, held.gate) == ("1.1.0", "promotion")
        assert held.reason == "waiting for staging: 1.1.0 is not running there (it runs 1.0.0)"

        gh.merge("octo/app", a.open_pr("app-staging").number)
        staging.settle(capsys)
        assert staging.image() == f"{image}:1.1.0"
        # the next cycle sees it Ready there: the soak starts (never before the automator saw it)
        held = a.choice(a.cycle(), "apps:app-production").held
        assert held.reason == "waiting for staging: healthy 0 of 30 min", held.reason

        a.clock.offset = timedelta(minutes=12)
        second = a.cycle()
        held = a.choice(second, "apps:app-production").held
        assert held.reason == "waiting for staging: healthy 12 of 30 min", held.reason
        assert a.open_pr("app-production") is None
        assert "waiting for staging: healthy 12 of 30 min" in a.held_row()  # what `automator status` shows

        a.clock.offset = timedelta(minutes=31)
        third = a.cycle()
        choice = a.choice(third, "apps:app-production")
        assert (choice.tag, choice.held) == ("1.1.0", None)
        assert choice.promoted.startswith("ran in staging (Deployment/promo-staging/app) Ready since ")
        pr = a.open_pr("app-production")
        assert pr is not None and "1.1.0" in pr.title
        assert "Promoted after proof" in pr.body and "ran in staging" in pr.body and "healthyFor 30m" in pr.body

        # the loop closes: merged, production's synchronizer applies it
        gh.merge("octo/app", pr.number)
        prod.settle(capsys)
        assert prod.image() == f"{image}:1.1.0"

        # a staging rollout that fails holds production, for good
        registry.push("promo/app", "1.2.0")
        a.clock.offset = timedelta(minutes=40)
        a.cycle()
        gh.merge("octo/app", a.open_pr("app-staging").number)
        staging.settle(capsys, status="failed")
        a.clock.offset = timedelta(hours=5)
        failed = a.cycle()
        held = a.choice(failed, "apps:app-production").held
        assert held is not None and held.tag == "1.2.0"
        assert held.reason.startswith("blocked: unhealthy in staging since "), held.reason
        assert a.open_pr("app-production") is None

        # a rollback in staging (by hand, to 1.1.0) is never promoted either
        registry.push("promo/app", "1.3.0")
        a.cycle()
        gh.merge("octo/app", a.open_pr("app-staging").number)
        staging.settle(capsys)
        assert staging.image() == f"{image}:1.3.0"
        waiting = a.choice(a.cycle(), "apps:app-production").held  # seen running there, Ready: the soak starts
        assert waiting is not None and waiting.reason == "waiting for staging: healthy 0 of 30 min"
        deploy = read_file(remote, "main", "staging/app.yaml") or ""
        write_commit(remote, {"staging/app.yaml": deploy.replace(":1.3.0", ":1.1.0")}, "roll staging back to 1.1.0")
        staging.settle(capsys)
        assert staging.image() == f"{image}:1.1.0"
        a.clock.offset = timedelta(hours=10)
        back = a.cycle()
        held = a.choice(back, "apps:app-production").held
        assert held is not None and held.reason.startswith(
            "blocked: rolled back in staging: it went from 1.3.0 back to 1.1.0"
        )
        assert a.choice(back, "apps:app-production").tag == "1.1.0"  # production stays where it is
        assert a.open_pr("app-production") is None


@pytest.fixture
def endpoint() -> Iterator[MetricsEndpoint]:
    with metrics_endpoint() as served:
        yield served


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory, endpoint: MetricsEndpoint) -> Iterator[RunningPrometheus]:
    with run_prometheus(tmp_path_factory.mktemp("prometheus"), [endpoint.target]) as prom:
        yield prom


def test_a_query_over_the_soak_holds_production_when_it_crosses_its_threshold(  # noqa: PLR0917 - fixtures
    registry: RunningRegistry,
    kube_apiserver: KubeServer,
    endpoint: MetricsEndpoint,
    prometheus: RunningPrometheus,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for tag in ("1.0.0", "1.1.0"):
        registry.push("promo-query/app", tag)
    image = registry.image("promo-query/app")
    step = (
        "    after:\n      - cluster: staging\n        healthyFor: 5s\n"
        "        query:\n          expr: app_error_ratio\n          below: 0.05\n"
    )
    remote = make_remote(tmp_path, image, step)
    staging = Env("staging", kube_apiserver, remote, tmp_path, prefix="promo-query")
    staging.settle(capsys)
    endpoint.set("app_error_ratio", 0.01)
    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        a = Automator(remote, gh, staging, tmp_path, prometheus=prometheus.base_url)
        a.cycle()
        gh.merge("octo/app", a.open_pr("app-staging").number)
        staging.settle(capsys)
        a.cycle()  # seen Ready in staging: the soak starts
        # the soak (5 s, real: the clock is not moved here, Prometheus keeps real time) and the
        # samples covering it, waited for with a deadline
        seen = datetime.now(UTC)
        covering(prometheus, "app_error_ratio", lambda s: True)
        wait_until(lambda: datetime.now(UTC) >= seen + timedelta(seconds=6))
        ok = a.cycle()
        choice = a.choice(ok, "apps:app-production")
        assert choice.tag == "1.1.0", choice.held
        assert "`app_error_ratio`" in choice.promoted
        pr = a.open_pr("app-production")
        assert pr is not None and "app_error_ratio" in pr.body

        # the metric crosses its threshold: the next version is held, and says why
        registry.push("promo-query/app", "1.2.0")
        a.cycle()
        gh.merge("octo/app", a.open_pr("app-staging").number)
        staging.settle(capsys)
        a.cycle()  # seen Ready in staging: the soak starts (1.1.0's run there ended, proved)
        seen = datetime.now(UTC)
        endpoint.set("app_error_ratio", 0.2)
        covering(prometheus, "app_error_ratio", lambda s: any(x.value == 0.2 for x in s))
        wait_until(lambda: datetime.now(UTC) >= seen + timedelta(seconds=6))
        crossed = a.cycle()
        held = a.choice(crossed, "apps:app-production").held
        assert held is not None and held.tag == "1.2.0"
        assert held.reason.startswith("waiting for staging: ") and "0.2" in held.reason and "0.05" in held.reason
        # 1.1.0 stays proposed: proved in staging, its query held over its own soak there
        assert a.choice(crossed, "apps:app-production").tag == "1.1.0"
        still = a.open_pr("app-production")
        assert still is not None and still.number == pr.number and "1.1.0" in still.title


def covering(prometheus: RunningPrometheus, metric: str, also: Any) -> None:
    """Wait until Prometheus holds samples of ``metric`` over the last 7 s (a 5 s soak and a
    step's margin) and ``also`` holds for them."""
    prometheus.wait_for_samples(
        metric, lambda s: bool(s) and s[0].at <= datetime.now(UTC) - timedelta(seconds=7) and also(s)
    )


def wait_until(check: Any, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)  # poll interval, bounded by the deadline
    pytest.fail("timed out")
