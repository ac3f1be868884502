"""The synchronizer reports what runs: in its inventory and in the commit status, and both read back.

No controller runs here: the test writes the Deployment's status through the status subresource,
as its controller would, and drives the clock the records are dated by.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from automator.cli import _status_forge, build_parser
from automator.sync import inventory
from automator.sync.cluster import Resource
from automator.sync.command import config_from
from automator.sync.model import ClusterReport, SyncResult, WorkloadReport, parse_time
from automator.sync.report import parse_commit_statuses, read_cluster
from automator.sync.runner import Runner
from automator.sync.status import StatusPublisher
from tests.servers.fake_github import GITHUB_TOKEN, GitHubState
from tests.servers.fake_gitlab import GITLAB_TOKEN, GitLabState
from tests.servers.kube import CM, DEPLOY, Sync, configmap, deployment, running_pod
from tests.servers.kube import deployment_ready as ready

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def fields(report: Any) -> list[tuple[str, str, str, tuple[str, ...], str]]:
    return [(w.kind, w.namespace, w.name, w.images, w.health) for w in report.workloads]


def test_the_inventory_and_the_commit_status_say_what_runs(sync: Sync, fake_github: GitHubState) -> None:
    token = sync.server.workdir / f"{sync.name}.token"
    token.write_text(GITHUB_TOKEN + "\n")
    forge_flags = ["--commit-status", "github", "--forge-repository", "octo/app", "--forge-url", fake_github.base_url]
    args = build_parser("sync").parse_args(
        ["sync", *sync.argv("--once", "--output", "json", *forge_flags, "--forge-token-file", str(token))]
    )

    def report() -> Any:
        return read_cluster(sync.server.kubeconfig, name=sync.name, namespace=sync.ns, inventory_kind="configmap")

    def forge_report() -> Any:
        # what GET /repos/octo/app/commits/{ref}/statuses lists: newest first
        return parse_commit_statuses(reversed(fake_github.repos["octo/app"].statuses))[sync.name]

    assert report() is None  # nothing synced yet
    sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.25"))
    sync.repo.write("cm.yaml", configmap("settings", sync.ns, {"level": "info"}))
    rev1 = sync.repo.commit()
    fake_github.push("octo/app", "main", sha=rev1)
    clock = Clock(T0)
    runner = Runner(config_from(args).runner, reporter=_status_forge(args), clock=clock)
    try:
        first = runner.once()
        assert first.ok, first.errors
        web = ("Deployment", sync.ns, "web", ("nginx:1.25",), "Progressing")
        assert fields(report()) == [web]  # created moments ago: no controller has reported yet
        assert report().workloads[0].reason == "replicas 0/1"

        live = sync.get(DEPLOY, "web")
        assert live is not None
        sync.kube.patch_status(DEPLOY, sync.ns, "web", ready(int(live["metadata"]["generation"])))
        clock.now = T1 = T0 + timedelta(minutes=1)
        assert runner.once().ok
        got = report()
        assert (got.cluster, got.revision, got.applied_at, got.objects) == (sync.name, rev1, T0, 2)
        assert fields(got) == [(*web[:4], "Ready")]
        assert (got.workloads[0].since, got.workloads[0].reason) == (T1, "all replicas updated and available")

        # nothing changed: the health holds since T1, and the inventory is not rewritten
        inventory_version = sync.get(CM, f"automator-sync-{sync.name}")["metadata"]["resourceVersion"]  # type: ignore[index]
        clock.now = T0 + timedelta(minutes=2)
        assert runner.once().ok
        assert report().workloads[0].since == T1
        assert sync.get(CM, f"automator-sync-{sync.name}")["metadata"]["resourceVersion"] == inventory_version  # type: ignore[index]

        status = fake_github.repos["octo/app"].statuses[-1]
        assert (status["state"], status["context"]) == ("success", f"automator/sync/{sync.name}")
        assert status["description"] == f"applied 2 objects in {sync.ns}; ready: deploy/web=nginx:1.25"
        from_forge = forge_report()
        assert (from_forge.revision, from_forge.objects, fields(from_forge)) == (rev1, 2, fields(got))
        # dated by the forge's clock: the first status that said Ready
        assert from_forge.workloads[0].since <= datetime.now(UTC)

        # a new image in git: a new revision, the new image, Progressing again from now
        sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.27"))
        rev2 = sync.repo.commit()
        fake_github.push("octo/app", "main", sha=rev2)
        clock.now = T3 = T0 + timedelta(minutes=3)
        assert runner.once().ok
        got = report()
        assert (got.revision, got.applied_at) == (rev2, T3)
        assert fields(got) == [("Deployment", sync.ns, "web", ("nginx:1.27",), "Progressing")]
        assert got.workloads[0].since == T3
        assert "generation" in got.workloads[0].reason
        status = fake_github.repos["octo/app"].statuses[-1]
        assert (status["sha"], status["state"]) == (rev2, "pending")
        from_forge = forge_report()
        assert (from_forge.revision, fields(from_forge)) == (rev2, fields(got))
    finally:
        runner.close()


def test_after_wait_the_record_and_the_status_say_what_the_wait_saw(sync: Sync) -> None:
    from automator.forge import NoneForge

    stop = threading.Event()

    def controller() -> None:
        """The Deployment controller's part: report each new generation rolled out."""
        while not stop.is_set():
            live = sync.get(DEPLOY, "web")
            generation = int(live["metadata"]["generation"]) if live else 0
            if live and (live.get("status") or {}).get("observedGeneration") != generation:
                sync.kube.patch_status(DEPLOY, sync.ns, "web", ready(generation))
            stop.wait(0.05)

    sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.25"))
    rev = sync.repo.commit()
    forge = NoneForge()
    argv = sync.argv("--once", "--wait", "--timeout", "60s", "--commit-status", "github", "--forge-repository", "a/b")
    args = build_parser("sync").parse_args(["sync", *argv, "--output", "json"])
    runner = Runner(config_from(args).runner, reporter=forge, clock=Clock(T0))
    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    try:
        result = runner.once()
    finally:
        stop.set()
        thread.join(timeout=30)
        runner.close()
    assert result.ok, result.errors
    got = read_cluster(sync.server.kubeconfig, name=sync.name, namespace=sync.ns, inventory_kind="configmap")
    assert got is not None
    assert fields(got) == [("Deployment", sync.ns, "web", ("nginx:1.25",), "Ready")]
    assert [(s.sha, s.state, s.description) for s in forge.statuses] == [
        (rev, "success", f"applied 1 object in {sync.ns}; ready: deploy/web=nginx:1.25")
    ]


def _get(url: str, headers: dict[str, str]) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
        return json.load(resp)


def _forge(provider: str, url: str, repository: str, token: str, tmp_path: Path) -> Any:
    token_file = tmp_path / f"{provider}.token"
    token_file.write_text(token + "\n")
    flags = ["--commit-status", provider, "--forge-repository", repository, "--forge-url", url]
    args = build_parser("sync").parse_args(
        ["sync", "--git-url", "file:///x", *flags, "--forge-token-file", str(token_file)]
    )
    return _status_forge(args)


def _publish_rollout(forge: Any, sha: str) -> None:
    """What a sync posts while web rolls out and once it is Ready (two syncs, a minute apart)."""
    publisher = StatusPublisher(forge, "automator/sync/prod")
    for health in ("Progressing", "Ready"):
        web = WorkloadReport("Deployment", "prod", "web", ("ghcr.io/x/web:1.2.3",), health, "", T0)
        publisher.publish(SyncResult(sha, report=ClusterReport("prod", sha, T0, (web,), 4)))


EXPECTED = [("Deployment", "prod", "web", ("ghcr.io/x/web:1.2.3",), "Ready")]


def test_github_statuses_listed_by_the_forge_read_back(fake_github: GitHubState, tmp_path: Path) -> None:
    sha = fake_github.push("octo/app", "main")
    forge = _forge("github", fake_github.base_url, "octo/app", GITHUB_TOKEN, tmp_path)
    _publish_rollout(forge, sha)
    forge.set_commit_status(sha, "success", "ci/tests", "all tests passed")
    listed = _get(
        f"{fake_github.base_url}/repos/octo/app/commits/main/statuses?per_page=100",
        {"Authorization": f"token {GITHUB_TOKEN}"},
    )
    assert [s["context"] for s in listed] == ["ci/tests", "automator/sync/prod", "automator/sync/prod"]
    [(cluster, got)] = parse_commit_statuses(listed).items()
    assert (cluster, got.revision, got.objects, fields(got)) == ("prod", sha, 4, EXPECTED)
    ready_at = parse_time(listed[1]["created_at"])
    assert (got.applied_at, got.workloads[0].since) == (parse_time(listed[2]["created_at"]), ready_at)


def test_gitlab_statuses_listed_by_the_forge_read_back(fake_gitlab: GitLabState, tmp_path: Path) -> None:
    sha = fake_gitlab.push("group/app", "main")
    forge = _forge("gitlab", fake_gitlab.url, "group/app", GITLAB_TOKEN, tmp_path)
    _publish_rollout(forge, sha)
    project = fake_gitlab.projects["group/app"].id
    listed = _get(
        f"{fake_gitlab.url}/api/v4/projects/{project}/repository/commits/{sha}/statuses?all=true",
        {"PRIVATE-TOKEN": GITLAB_TOKEN},
    )
    assert [s["status"] for s in listed] == ["pending", "success"]
    got = parse_commit_statuses(listed)["prod"]
    assert (got.revision, got.objects, fields(got)) == (sha, 4, EXPECTED)


def test_an_inventory_an_older_synchronizer_wrote_reads_and_is_upgraded(sync: Sync) -> None:
    sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.25"))
    rev = sync.repo.commit()
    web = {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": sync.ns, "name": "web"}
    old = {  # format 1: images, no workloads, no appliedAt
        "source": "",
        "revision": rev,
        "objects": json.dumps([web]),
        "images": json.dumps({f"Deployment {sync.ns}/web": ["nginx:1.25"]}),
    }
    meta = {"name": f"automator-sync-{sync.name}", "namespace": sync.ns}
    sync.kube.apply(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": old})

    got = read_cluster(sync.server.kubeconfig, name=sync.name, namespace=sync.ns, inventory_kind="configmap")
    assert got is not None
    assert (got.revision, fields(got)) == (rev, [("Deployment", sync.ns, "web", ("nginx:1.25",), "Unknown")])
    assert got.workloads[0].reason == inventory.OLD_FORMAT_REASON
    written = sync.get(CM, f"automator-sync-{sync.name}")["metadata"]["managedFields"][0]["time"]  # type: ignore[index]
    assert got.applied_at == got.workloads[0].since == parse_time(written)  # when it was written

    code, out = sync.run()
    assert code == 0, out
    live = sync.get(CM, f"automator-sync-{sync.name}")
    assert live is not None
    assert (live["data"]["format"], "images" in live["data"]) == ("2", False)
    got = read_cluster(sync.server.kubeconfig, name=sync.name, namespace=sync.ns, inventory_kind="configmap")
    assert got is not None
    assert fields(got) == [("Deployment", sync.ns, "web", ("nginx:1.25",), "Progressing")]


A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
OLD = "sha256:" + "0" * 64


def test_the_inventory_records_the_digests_the_pods_run(sync: Sync, caplog: pytest.LogCaptureFixture) -> None:
    """Two pods of the current template ran one digest and a third another (the tag was
    re-pushed between pulls); a pod of the template before is not counted. Without ``list pods``
    the sync still succeeds, records no digests and says why."""
    sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.25"))
    sync.repo.commit()
    for name, image, digest in [("web-1", "nginx:1.25", A), ("web-2", "nginx:1.25", A), ("web-3", "nginx:1.25", B),
                                ("web-old", "nginx:1.24", OLD)]:  # fmt: skip
        running_pod(
            sync.kube, sync.ns, name, labels={"app": "web"}, image=image, image_id=f"docker.io/library/nginx@{digest}"
        )

    def report() -> ClusterReport:
        got = read_cluster(sync.server.kubeconfig, name=sync.name, namespace=sync.ns, inventory_kind="configmap")
        assert got is not None
        return got

    code, out = sync.run()
    assert code == 0, out
    [web] = report().workloads
    assert (web.images, web.digests, web.running_digest(0)) == (("nginx:1.25",), (f"{A},{B}",), (A, B))

    # a sync that may apply Deployments and ConfigMaps but not list pods
    rbac = Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True)
    binding = Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True)
    meta = {"name": "sync-no-pods", "namespace": sync.ns}
    rules = [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]},
    ]
    sync.kube.apply(
        rbac, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules}
    )
    sync.kube.apply(
        binding,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sync-no-pods"},
            "subjects": [{"kind": "User", "name": "limited", "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )  # fmt: skip
    sync.repo.write("web.yaml", deployment("web", sync.ns, image="nginx:1.27"))
    sync.repo.commit()
    with caplog.at_level(logging.WARNING, "automator.sync"):
        code, out = sync.run("--kubeconfig", str(sync.server.limited_kubeconfig))
    assert code == 0, out
    [web] = report().workloads
    assert (web.images, web.digests) == (("nginx:1.27",), ())
    assert f"cannot list the pods in {sync.ns}" in caplog.text and "forbidden" in caplog.text.lower()
