"""What runs, written down and read back: the commit status grammar, the inventory format, the flag."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from automator.errors import AutomatorError, ConfigError
from automator.sync import inventory
from automator.sync.cluster import KubeAPIError
from automator.sync.health import observe
from automator.sync.model import ClusterReport, Health, ObjectRef, Seen, SyncResult, WorkloadReport
from automator.sync.report import parse_cluster_flag, parse_commit_statuses
from automator.sync.status import MAX_DESCRIPTION, StatusPublisher, describe, parse_summary, summarize

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
SHA = "0123456789abcdef0123456789abcdef01234567"


def wl(name: str, image: str, health: str = "Ready", kind: str = "Deployment", ns: str = "prod") -> WorkloadReport:
    return WorkloadReport(kind, ns, name, (image,), health, "", T0)


def report(*workloads: WorkloadReport, objects: int = 12, omitted: int = 0) -> ClusterReport:
    return ClusterReport("prod", SHA, T0, tuple(workloads), objects, omitted)


# -- the commit status description ------------------------------------------------------------------


def test_summary_lists_each_workload_by_health_in_one_namespace() -> None:
    r = report(
        wl("web", "ghcr.io/x/web:1.2.3"),
        wl("api", "ghcr.io/x/api:2.0", "Progressing"),
        wl("db", "postgres:16", kind="StatefulSet"),
    )
    text = summarize(r)
    assert text == (
        "applied 12 objects in prod; ready: deploy/web=ghcr.io/x/web:1.2.3 sts/db=postgres:16;"
        " progressing: deploy/api=ghcr.io/x/api:2.0"
    )
    summary = parse_summary(text)
    assert summary is not None
    assert (summary.objects, summary.omitted) == (12, 0)
    assert set(summary.workloads) == {
        ("Deployment", "prod", "web", ("ghcr.io/x/web:1.2.3",), "Ready"),
        ("StatefulSet", "prod", "db", ("postgres:16",), "Ready"),
        ("Deployment", "prod", "api", ("ghcr.io/x/api:2.0",), "Progressing"),
    }


def test_namespaces_are_named_per_workload_when_they_differ_and_init_images_come_first() -> None:
    job = WorkloadReport("Job", "ops", "migrate", ("busybox:1", "migrate:7"), "Failed", "", T0)
    text = summarize(report(wl("web", "nginx:1.25"), job, objects=1))
    assert text == "applied 1 object; ready: deploy/prod/web=nginx:1.25; failed: job/ops/migrate=busybox:1,migrate:7"
    summary = parse_summary(text)
    assert summary is not None
    assert summary.workloads[1] == ("Job", "ops", "migrate", ("busybox:1", "migrate:7"), "Failed")


def test_a_revision_without_workloads() -> None:
    assert summarize(report(objects=3)) == "applied 3 objects; no workloads"
    summary = parse_summary("applied 3 objects; no workloads")
    assert summary is not None
    assert (summary.objects, summary.workloads, summary.omitted) == (3, (), 0)


def test_what_does_not_fit_in_140_characters_is_counted() -> None:
    many = [wl(f"service-{i:02}", f"registry.example.com/team/service-{i:02}:1.0.{i}") for i in range(12)]
    text = summarize(report(*many))
    assert len(text) <= MAX_DESCRIPTION
    summary = parse_summary(text)
    assert summary is not None
    assert text.endswith(f"; +{12 - len(summary.workloads)} more")
    assert len(summary.workloads) + summary.omitted == 12
    assert [w[2] for w in summary.workloads] == [w.name for w in many[: len(summary.workloads)]]


def test_a_long_image_is_skipped_and_shorter_ones_still_listed() -> None:
    digest = "ghcr.io/acme/very/long/repository/path/web@sha256:" + "a" * 64
    text = summarize(report(wl("web", digest), wl("db", "postgres:16"), omitted=2))
    assert text == "applied 12 objects in prod; ready: deploy/db=postgres:16; +3 more"
    summary = parse_summary(text)
    assert summary is not None
    assert (len(summary.workloads), summary.omitted) == (1, 3)


@pytest.mark.parametrize(
    "text",
    [
        "1 error(s): boom",
        "applied: 1 created, 1 unchanged",  # the summary before workloads were reported
        "applied 3 objects; sleepy: deploy/web=nginx",
        "build passed",
        "",
    ],
)
def test_descriptions_that_are_not_a_summary(text: str) -> None:
    assert parse_summary(text) is None


def test_a_token_outside_the_grammar_is_counted_not_guessed() -> None:
    summary = parse_summary("applied 2 objects in prod; ready: deploy/web=nginx:1 widget/x=y deploy/a/b=c")
    assert summary is not None
    assert summary.workloads == (("Deployment", "prod", "web", ("nginx:1",), "Ready"),)
    assert summary.omitted == 2


def test_state_follows_the_health_of_the_workloads() -> None:
    ok = SyncResult(SHA, report=report(wl("web", "nginx:1")))
    assert describe(ok) == ("success", "applied 12 objects in prod; ready: deploy/web=nginx:1")
    assert describe(SyncResult(SHA, report=report(wl("web", "nginx:1", "Progressing"))))[0] == "pending"
    assert describe(SyncResult(SHA, report=report(wl("web", "nginx:1", "Failed"))))[0] == "failure"
    assert describe(SyncResult(SHA, errors=("boom",), report=report()))[1] == "1 error(s): boom"


class Recorder:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    def set_commit_status(
        self, sha: str, state: str, context: str, description: str = "", url: str | None = None
    ) -> None:
        self.posted.append((sha, state, description))


def test_a_change_of_health_is_published_again() -> None:
    forge = Recorder()
    publisher = StatusPublisher(forge, "automator/sync/prod")
    progressing = SyncResult(SHA, report=report(wl("web", "nginx:1", "Progressing")))
    publisher.publish(progressing)
    publisher.publish(progressing)
    publisher.publish(SyncResult(SHA, report=report(wl("web", "nginx:1"))))
    assert [state for _, state, _ in forge.posted] == ["pending", "success"]


# -- reading commit statuses back -----------------------------------------------------------------


def github_status(
    description: str, at: datetime, context: str = "automator/sync/prod", sha: str = SHA
) -> dict[str, Any]:
    """One item of GET /repos/{o}/{r}/commits/{ref}/statuses: no ``sha`` field, the url ends in it."""
    return {
        "url": f"https://api.github.com/repos/octo/app/statuses/{sha}",
        "id": int(at.timestamp()),
        "state": "success",
        "description": description,
        "target_url": None,
        "context": context,
        "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "updated_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_statuses_read_back_per_cluster_newest_first_as_github_lists_them() -> None:
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    statuses = [  # newest first
        github_status("applied 12 objects in prod; ready: deploy/web=nginx:1.27 deploy/api=api:2", t2),
        github_status("applied 12 objects in prod; ready: deploy/web=nginx:1.27; progressing: deploy/api=api:2", t1),
        github_status("applied 12 objects in prod; progressing: deploy/web=nginx:1.27 deploy/api=api:2", T0),
        github_status("applied 3 objects in edge; ready: ds/agent=fluent-bit:3", t1, "automator/sync/edge"),
        github_status("tests passed", t2, "ci/tests"),
        github_status("1 error(s): boom", t2, "automator/sync/broken"),
    ]
    reports = parse_commit_statuses(statuses)
    assert set(reports) == {"prod", "edge"}
    prod = reports["prod"]
    assert (prod.cluster, prod.revision, prod.applied_at, prod.objects) == ("prod", SHA, T0, 12)
    assert [(w.name, w.images, w.health, w.since) for w in prod.workloads] == [
        ("web", ("nginx:1.27",), "Ready", t1),
        ("api", ("api:2",), "Ready", t2),
    ]
    assert reports["edge"].workloads[0].kind == "DaemonSet"


def test_a_failed_sync_after_a_summary_leaves_no_report_and_breaks_the_run() -> None:
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    ok = "applied 1 object in prod; ready: deploy/web=nginx:1"
    assert parse_commit_statuses([github_status("1 error(s): boom", t1), github_status(ok, T0)]) == {}
    [again] = parse_commit_statuses(
        [github_status(ok, t2), github_status("1 error(s): boom", t1), github_status(ok, T0)]
    ).values()
    assert (again.applied_at, again.workloads[0].since) == (T0, t2)


def test_gitlab_statuses_name_their_sha() -> None:
    status = {
        "id": 7,
        "sha": SHA,
        "name": "automator/sync/prod",
        "status": "success",
        "description": "applied 1 object in prod; ready: po/one=busybox:1",
        "created_at": "2026-12-02T01:00:00.000Z",
        "target_url": None,
    }
    [(name, r)] = parse_commit_statuses([status]).items()
    assert (name, r.revision, r.applied_at, r.workloads[0].kind) == ("prod", SHA, T0, "Pod")


# -- the inventory ------------------------------------------------------------------------------------


def live_configmap(data: dict[str, str], binary: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "automator-sync-prod",
            "creationTimestamp": "2026-11-01T00:00:00Z",
            "managedFields": [
                {"manager": "kubectl", "time": "2026-12-01T09:00:00Z"},
                {"manager": "automator-sync", "time": "2026-11-30T12:00:00Z"},
            ],
        },
        "data": data,
        **({"binaryData": binary} if binary else {}),
    }


def test_format_1_inventories_still_read() -> None:
    old = {
        "source": "https://git.example.com/config#main:.",
        "revision": SHA,
        "objects": json.dumps(
            [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "prod", "name": "web"}]
        ),
        "images": json.dumps({"Deployment prod/web": ["nginx:1.25"], "CronJob ops/backup": ["restic:0.16"]}),
    }
    inv = inventory.parse(live_configmap(old))
    written = datetime(2026, 11, 30, 12, tzinfo=UTC)  # when the synchronizer last wrote it
    assert (inv.revision, inv.applied_at, inv.objects[0].name) == (SHA, written, "web")
    assert inv.workloads == (
        WorkloadReport("Deployment", "prod", "web", ("nginx:1.25",), "Unknown", inventory.OLD_FORMAT_REASON, written),
        WorkloadReport("CronJob", "ops", "backup", ("restic:0.16",), "Unknown", inventory.OLD_FORMAT_REASON, written),
    )
    assert inv.data()["format"] == "2"


def test_format_2_round_trips_through_its_data() -> None:
    inv = inventory.Inventory(
        revision=SHA,
        objects=(ObjectRef("apps", "v1", "Deployment", "prod", "web"),),
        workloads=(WorkloadReport("Deployment", "prod", "web", ("nginx:1.27",), "Ready", "all replicas updated", T0),),
        applied_at=T0,
        source="s",
    )
    again = inventory.parse(live_configmap(inv.data()))
    assert (again.workloads, again.applied_at, again.objects) == (inv.workloads, T0, inv.objects)
    assert again.data() == inv.data()  # so an unchanged resync writes nothing
    assert json.loads(inv.data()["workloads"])[0]["since"] == "2026-12-02T01:00:00Z"


def test_the_record_is_bounded_and_says_what_was_dropped() -> None:
    def noise(seed: str, n: int) -> str:  # hex digests: gzip cannot shrink them much
        return "".join(hashlib.sha256(f"{seed}-{k}".encode()).hexdigest() for k in range(n))

    huge = [
        WorkloadReport(
            "Deployment", "prod", f"w{i}", tuple(f"r/{noise(f'{i}-{c}', 1)}:1" for c in range(40)), "Failed",
            noise(str(i), 8), T0,
        )
        for i in range(3000)
    ]  # fmt: skip
    kept, dropped = inventory.bound(huge)
    assert 0 < len(kept) < 3000
    assert dropped == 3000 - len(kept)
    assert [w.name for w in kept] == [w.name for w in huge[: len(kept)]]  # the last applied go first
    assert all(len(w.reason) == inventory.MAX_REASON and len(w.images) == inventory.MAX_IMAGES for w in kept)
    data = inventory.Inventory(revision=SHA, workloads=kept, applied_at=T0, omitted=dropped).data()
    assert data["workloadsOmitted"] == str(dropped)
    stored = inventory._encode(data, secret=False)
    assert sum(len(v) for part in stored.values() for v in part.values()) < 1024 * 1024
    gz = stored["binaryData"]["workloads.gz"]
    assert len(json.loads(gzip.decompress(base64.b64decode(gz)))) == len(kept)


# -- observing: since holds while the health does ---------------------------------------------------


class OneObject:
    """Just enough of a cluster for observe(): discovery, one GET and a Pod LIST (``pods``, or
    the error it raises: a 403, say)."""

    writes = 0

    def __init__(self, live: dict[str, Any] | None, pods: list[dict[str, Any]] | AutomatorError = []) -> None:  # noqa: B006
        self.live = live
        self.pods = pods
        self.gets = 0
        self.lists: list[str] = []

    def resource(self, group: str, version: str, kind: str) -> Any:
        return (group, version, kind)

    def get(self, res: Any, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets += 1
        return self.live

    def list(self, res: Any, label_selector: str = "", namespace: str = "") -> Iterator[dict[str, Any]]:
        assert res == ("", "v1", "Pod")
        self.lists.append(namespace)
        if isinstance(self.pods, AutomatorError):
            raise self.pods
        yield from self.pods


def deployment(image: str, *, ready: bool) -> dict[str, Any]:
    status = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1}
    status["conditions"] = [  # type: ignore[assignment]
        {"type": "Available", "status": "True"},
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "generation": 1 if ready else 2},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
        "status": status,
    }


def web_pod(image: str, digest: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"web-{digest[-4:]}", "namespace": "prod", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": image}]},
        "status": {
            "containerStatuses": [{"name": "app", "image": image, "imageID": f"docker.io/library/nginx@{digest}"}]
        },
    }


def test_since_is_kept_while_the_health_holds_and_moves_when_it_changes() -> None:
    ref = ObjectRef("apps", "v1", "Deployment", "prod", "web")
    ready = deployment("nginx:1.25", ready=True)
    cluster = OneObject(ready)
    first = observe(cluster, [Seen(ref, (), ready, written=False)], (), T0)  # type: ignore[arg-type]
    assert (first[0].health, first[0].since, first[0].images, cluster.gets) == ("Ready", T0, ("nginx:1.25",), 0)
    later = T0 + timedelta(hours=1)
    again = observe(cluster, [Seen(ref, (), ready, written=False)], first, later)  # type: ignore[arg-type]
    assert again[0].since == T0
    cluster.live = deployment("nginx:1.27", ready=False)  # written: a fresh GET sees the new generation
    rolled = observe(cluster, [Seen(ref, (), ready, written=True)], again, later)  # type: ignore[arg-type]
    assert (rolled[0].health, rolled[0].since, rolled[0].images, cluster.gets) == (
        str(Health.PROGRESSING),
        later,
        ("nginx:1.27",),
        1,
    )


def test_since_moves_when_the_images_change_though_the_health_does_not() -> None:
    # a rollout that finished between two passes: Ready before, Ready after, another image. The
    # new image has been Ready only since this pass (a promotion gate counts its soak from here)
    ref = ObjectRef("apps", "v1", "Deployment", "prod", "web")
    old = deployment("nginx:1.25", ready=True)
    cluster = OneObject(old)
    first = observe(cluster, [Seen(ref, (), old, written=False)], (), T0)  # type: ignore[arg-type]
    later = T0 + timedelta(hours=1)
    new = deployment("nginx:1.27", ready=True)
    cluster.live = new
    moved = observe(cluster, [Seen(ref, (), new, written=False)], first, later)  # type: ignore[arg-type]
    assert (moved[0].health, moved[0].images, moved[0].since) == ("Ready", ("nginx:1.27",), later)


DIGEST = "sha256:" + "d" * 64


def test_the_digests_the_pods_run_are_recorded_one_list_per_namespace(caplog: pytest.LogCaptureFixture) -> None:
    ref = ObjectRef("apps", "v1", "Deployment", "prod", "web")
    ready = deployment("nginx:1.25", ready=True)
    old = web_pod("nginx:1.24", "sha256:" + "0" * 64)  # a pod of the template before: not counted
    cluster = OneObject(ready, [web_pod("nginx:1.25", DIGEST), old])
    [seen] = observe(cluster, [Seen(ref, (), ready, written=False)], (), T0)  # type: ignore[arg-type]
    assert (seen.images, seen.digests, seen.running_digest(0), cluster.lists) == (
        ("nginx:1.25",),
        (DIGEST,),
        (DIGEST,),
        ["prod"],
    )
    # refused (no `list pods`): no digests, a warning, and the health is judged all the same
    refused = OneObject(ready, KubeAPIError("list pods: forbidden", status=403))
    with caplog.at_level(logging.WARNING, "automator.sync"):
        [seen] = observe(refused, [Seen(ref, (), ready, written=False)], (), T0)  # type: ignore[arg-type]
    assert (seen.health, seen.digests) == ("Ready", ())
    assert "cannot list the pods in prod" in caplog.text and "--no-pod-digests" in caplog.text
    # --no-pod-digests: no LIST at all
    quiet = OneObject(ready, [web_pod("nginx:1.25", DIGEST)])
    [seen] = observe(quiet, [Seen(ref, (), ready, written=False)], (), T0, pods=False)  # type: ignore[arg-type]
    assert (seen.digests, quiet.lists) == ((), [])


# -- --cluster NAME=KUBECONFIG ---------------------------------------------------------------------------


def test_cluster_flag(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "prod.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    assert parse_cluster_flag(f"prod={kubeconfig}") == ("prod", kubeconfig)
    assert parse_cluster_flag("local=") == ("local", None)
    assert parse_cluster_flag("local") == ("local", None)
    with pytest.raises(ConfigError, match=r"--cluster '=/x': expected NAME=KUBECONFIG"):
        parse_cluster_flag("=/x")
    with pytest.raises(ConfigError, match="is not a file"):
        parse_cluster_flag(f"prod={tmp_path / 'missing'}")
