"""The loop closed, as a user lives it: a tag is pushed, a pull request opens, it is merged, the
synchronizer applies it, the workload turns Ready, and ``automator status`` shows the version
running and healthy in that cluster with a lead time for every step -- and a second cluster
that has not applied the merge yet, at the version before.

Real servers throughout: the registry, a git remote, the fake GitHub (the one fake: no real
GitHub runs here) and the envtest kube-apiserver. No controller runs: the test writes the
Deployment's status through the status subresource, as its controller would, and a Pod with
the status its kubelet would write (the digest it pulled). The two
"clusters" are two namespaces of the one API server, each with its own kubeconfig whose
context names the namespace (so ``--cluster NAME=KUBECONFIG`` alone finds each inventory).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from automator.sync.__main__ import main as sync_main
from automator.sync.cluster import KubeCluster
from tests.e2e.test_run_forges import automator_run, git
from tests.servers.fake_github import GITHUB_TOKEN, github_server
from tests.servers.kube import DEPLOY, NS, KubeServer, running_pod
from tests.servers.kube import deployment_ready as ready
from tests.servers.registry import RunningRegistry

FORGE_ENV = {"FORGE_TOKEN": GITHUB_TOKEN}


def make_remote(tmp: Path, image: str) -> Path:
    """A config repo: the policy under policies/, the manifests the synchronizer applies under deploy/."""
    top = tmp / "seed"
    (top / "policies").mkdir(parents=True)
    (top / "deploy").mkdir()
    (top / "policies" / "app.yaml").write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: apps\n"
        f"spec:\n  image: {image}\n  insecure: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
    )
    (top / "deploy" / "app.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 1\n"
        "  selector:\n    matchLabels: {app: app}\n  template:\n    metadata:\n      labels: {app: app}\n"
        "    spec:\n      containers:\n        - name: app\n"
        f'          image: {image}:1.0.0 # {{"$imagepolicy": "apps:app"}}\n'
    )
    git("init", "-q", "-b", "main", cwd=top)
    git("add", "-A", cwd=top)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init", cwd=top)
    remote = tmp / "remote.git"
    git("clone", "-q", "--bare", str(top), str(remote))
    return remote


def cluster_kubeconfig(server: KubeServer, namespace: str, path: Path) -> Path:
    """The API server's kubeconfig with ``namespace`` in its context: one "cluster" per namespace."""
    text = server.kubeconfig.read_text()
    path.write_text(text.replace("    user: admin\n", f"    user: admin\n    namespace: {namespace}\n", 1))
    return path


class Cluster:
    """One synchronizer (``automator sync --once``) and its namespace."""

    def __init__(self, server: KubeServer, kube: KubeCluster, remote: Path, ns: str, tmp: Path) -> None:
        self.kube, self.ns = kube, ns
        kube.apply(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.kubeconfig = cluster_kubeconfig(server, ns, tmp / f"{ns}.kubeconfig")
        self.argv = [
            "--once", "--git-url", str(remote), "--branch", "main", "--path", "deploy",
            "--kubeconfig", str(self.kubeconfig), "--default-namespace", ns, "--inventory-namespace", ns,
            "--cache-dir", str(tmp / f"{ns}-cache"), "--output", "json",
        ]  # fmt: skip

    def sync(self, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
        code = sync_main(self.argv)
        out = capsys.readouterr().out
        assert code == 0, out
        doc: dict[str, Any] = json.loads(out)
        return doc

    def rolled_out(self, digests: dict[str, str]) -> None:
        """The controllers' and the kubelet's part: the current generation is rolled out and
        available, and its pod runs the digest the registry has for the tag (``digests``)."""
        live = self.kube.get(DEPLOY, self.ns, "app")
        assert live is not None
        image = live["spec"]["template"]["spec"]["containers"][0]["image"]
        repository, _, tag = image.rpartition(":")
        pod = f"app-{tag.replace('.', '-')}"
        running_pod(
            self.kube, self.ns, pod, labels={"app": "app"}, image=image, image_id=f"{repository}@{digests[tag]}"
        )
        self.kube.patch_status(DEPLOY, self.ns, "app", ready(int(live["metadata"]["generation"])))


def automator(*args: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    from tests.e2e.test_run_forges import GIT_ENV

    return subprocess.run(
        [sys.executable, "-m", "automator", *args],
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_status_shows_the_version_running_and_healthy_with_a_lead_time_for_every_step(
    registry: RunningRegistry,
    kube_apiserver: KubeServer,
    kube: KubeCluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    digests = {"1.0.0": registry.push("status-e2e/app", "1.0.0").digest}
    image = registry.image("status-e2e/app")
    remote = make_remote(tmp_path, image)
    state, cache = tmp_path / "state", tmp_path / "cache"
    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
        forge = ["--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app"]
        run = ["--forge-token-env", "FORGE_TOKEN", "--output", "json", "--state-dir", str(state), *forge]

        def cycle() -> dict[str, Any]:
            proc = automator_run(remote, cache, *run, env=FORGE_ENV)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            doc: dict[str, Any] = json.loads(proc.stdout)
            return doc

        # cluster b applies 1.0.0 and is Ready there; it will not sync again
        b = Cluster(kube_apiserver, kube, remote, "status-e2e-b", tmp_path)
        b.sync(capsys)
        b.rolled_out(digests)
        b.sync(capsys)

        assert [g["outcome"] for g in cycle()["groups"]] == []  # 1.0.0 is the newest: nothing to do
        digests["1.1.0"] = registry.push("status-e2e/app", "1.1.0").digest
        opened = cycle()
        assert [g["outcome"] for g in opened["groups"]] == ["opened"]
        [number] = list(gh.repos["octo/app"].pulls)

        proc = automator("status", "--state-dir", str(state), "-o", "json")
        assert proc.returncode == 0, proc.stderr
        [row] = json.loads(proc.stdout)["policies"]
        assert (row["state"], row["git"], row["qualifies"]) == ("pull request open", ["1.0.0"], "1.1.0")
        assert (row["pullRequest"]["number"], row["pullRequest"]["version"]) == (number, "1.1.0")

        gh.merge("octo/app", number)
        cycle()  # sees the merge on the base branch and the pull request merged

        # cluster a applies the merge, the rollout completes, the next pass records Ready
        a = Cluster(kube_apiserver, kube, remote, "status-e2e-a", tmp_path)
        a.sync(capsys)
        a.rolled_out(digests)
        a.sync(capsys)

        clusters = ["--cluster", f"a={a.kubeconfig}", "--cluster", f"b={b.kubeconfig}"]
        # `automator run --cluster` records what each cluster reports after its cycle ...
        proc = automator_run(remote, cache, *run, *clusters, env=FORGE_ENV)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # ... so `automator status` without cluster access answers from the state alone
        proc = automator("status", "--state-dir", str(state), "-o", "json")
        assert proc.returncode == 0, proc.stderr
        [stored] = json.loads(proc.stdout)["policies"]
        assert {c["cluster"]: (c["version"], c["digest"], c["health"]) for c in stored["clusters"]} == {
            "a": ("1.1.0", digests["1.1.0"], "Ready"),
            "b": ("1.0.0", digests["1.0.0"], "Ready"),
        }

        proc = automator("status", "--state-dir", str(state), *clusters, "-o", "json")
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        [row] = doc["policies"]
        assert (row["policy"], row["newest"], row["qualifies"], row["git"]) == ("apps:app", "1.1.0", "1.1.0", ["1.1.0"])
        assert row["pullRequest"] is None  # merged
        by_cluster = {c["cluster"]: c for c in row["clusters"]}
        assert (by_cluster["a"]["version"], by_cluster["a"]["health"]) == ("1.1.0", "Ready")
        assert (by_cluster["b"]["version"], by_cluster["b"]["health"]) == ("1.0.0", "Ready")
        # the digest each cluster's pods run, as the kubelet reported it: not in any manifest
        assert (by_cluster["a"]["digests"], by_cluster["b"]["digests"]) == ([digests["1.1.0"]], [digests["1.0.0"]])
        assert row["state"] == "merged not applied"
        assert row["reasons"] == ["b runs 1.0.0"]
        lead = by_cluster["a"]["leadTimes"]
        assert sorted(lead) == [
            "applied_to_healthy",
            "merge_to_applied",
            "pr_to_merge",
            "seen_to_healthy",
            "seen_to_pr",
        ]
        assert all(v is not None and v >= 0 for v in lead.values()), lead
        assert by_cluster["a"]["revision"] == git("rev-parse", "main", cwd=remote).strip()

        table = automator("status", "--state-dir", str(state), *clusters)
        assert table.returncode == 0, table.stderr
        assert "merged not applied" in table.stdout and "apps:app: merged not applied: b runs 1.0.0" in table.stdout
        assert f"1.1.0@{digests['1.1.0'][:19]}" in table.stdout

        # what the clusters reported was recorded: the history has each step of 1.1.0
        proc = automator("history", "apps:app", "--state-dir", str(state), "-o", "json")
        assert proc.returncode == 0, proc.stderr
        versions = {v["version"]: v for v in json.loads(proc.stdout)["versions"]}
        new = versions["1.1.0"]
        assert new["pullRequest"]["number"] == number
        assert new["firstSeen"] and new["opened"] and new["merged"]
        [applied] = new["clusters"]
        assert applied["cluster"] == "a" and applied["healthy"] is not None
        assert [c["cluster"] for c in versions["1.0.0"]["clusters"]] == ["b"]

        text = automator("history", "apps:app", "--state-dir", str(state))
        assert text.returncode == 0, text.stderr
        assert "healthy  a" in text.stdout and f"#{number}" in text.stdout
