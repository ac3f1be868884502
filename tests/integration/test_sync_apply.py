"""`automator sync --once` against the real kube-apiserver + etcd and a real git repository."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from typing import Any

import pytest

from automator.sync.__main__ import main
from automator.sync.cluster import Resource
from tests.servers.kube import CM, DEPLOY, JOB, NS, SVC, Sync, configmap, deployment

# No protocol on the port: server-side apply before Kubernetes 1.21 refuses that unless it is defaulted.
SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
  - port: 80
    targetPort: 8080
"""


def versions(s: Sync, names: list[tuple[Resource, str]]) -> dict[str, str]:
    out = {}
    for res, name in names:
        obj = s.get(res, name)
        assert obj is not None, name
        out[name] = obj["metadata"]["resourceVersion"]
    return out


def test_first_apply_then_noop_resync_writes_nothing(sync: Sync) -> None:
    sync.repo.write(
        "app/cm.yaml", configmap("settings", None, {"a": "1"}) + "\n---\n" + configmap("more", None, {"b": "2"})
    )
    sync.repo.write("app/deploy.yml", deployment("web", sync.ns))
    sync.repo.write("app/svc.yaml", SERVICE.format(name="web"))
    sync.repo.write("app/.hidden.yaml", "this: is ignored")
    sync.repo.write("app/README.md", "not a manifest")
    rev = sync.repo.commit("first")

    code, out = sync.run()
    assert code == 0, out
    assert out["revision"] == rev
    assert out["errors"] == []
    assert sync.actions(out) == {
        "ConfigMap/settings": "created",
        "ConfigMap/more": "created",
        "Deployment/web": "created",
        "Service/web": "created",
    }
    assert {o["namespace"] for o in out["objects"]} == {sync.ns}
    assert set(out["objects"][0]) == {"apiVersion", "kind", "namespace", "name", "action"}
    live = sync.get(CM, "settings")
    assert live is not None
    assert live["metadata"]["labels"]["sync.automator.io/name"] == sync.name
    assert live["metadata"]["annotations"]["sync.automator.io/owner"] == f"{sync.ns}/{sync.name}"
    assert any(m["manager"] == "automator-sync" for m in live["metadata"]["managedFields"])
    inventory = sync.get(CM, f"automator-sync-{sync.name}")
    assert inventory is not None
    assert inventory["data"]["revision"] == rev
    assert inventory["data"]["format"] == "2"
    [web] = json.loads(inventory["data"]["workloads"])
    assert (web["kind"], web["namespace"], web["name"], web["images"]) == ("Deployment", sync.ns, "web", ["nginx:1.25"])

    tracked = [(CM, "settings"), (CM, "more"), (DEPLOY, "web"), (SVC, "web"), (CM, f"automator-sync-{sync.name}")]
    before = versions(sync, tracked)
    writes_before = sync.kube.writes
    code, out = sync.run()
    assert code == 0
    assert set(sync.actions(out).values()) == {"unchanged"}
    assert versions(sync, tracked) == before
    assert sync.kube.writes == writes_before  # the test's own client made no writes either


def test_out_of_band_patch_is_reverted_and_reported_as_drift(sync: Sync) -> None:
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kubectl("-n", sync.ns, "patch", "configmap", "settings", "-p", '{"data":{"level":"debug","extra":"x"}}')

    code, out = sync.run()
    assert code == 0
    [obj] = out["objects"]
    assert obj["action"] == "configured"
    assert obj["drift"] == ["/data/level"]
    live = sync.get(CM, "settings")
    assert live is not None
    assert live["data"]["level"] == "info"
    assert live["data"]["extra"] == "x"  # a field we never managed is left alone


def test_ignored_fields_are_never_reverted(sync: Sync) -> None:
    sync.repo.write(
        "web.yaml",
        deployment("web", sync.ns, annotations="  annotations:\n    sync.automator.io/ignore-fields: /spec/replicas\n"),
    )
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kubectl("-n", sync.ns, "scale", "deployment", "web", "--replicas=5")
    sync.kubectl("-n", sync.ns, "patch", "configmap", "settings", "-p", '{"data":{"level":"debug"}}')

    code, out = sync.run("--ignore-field", "ConfigMap:/data/level")
    assert code == 0
    assert set(sync.actions(out).values()) == {"unchanged"}
    deploy = sync.get(DEPLOY, "web")
    cm = sync.get(CM, "settings")
    assert deploy is not None and cm is not None
    assert deploy["spec"]["replicas"] == 5
    assert cm["data"]["level"] == "debug"

    # A real change from git still applies without reverting the ignored field.
    sync.repo.write(
        "web.yaml",
        deployment(
            "web",
            sync.ns,
            image="nginx:1.26",
            annotations="  annotations:\n    sync.automator.io/ignore-fields: /spec/replicas\n",
        ),
    )
    sync.repo.commit()
    code, out = sync.run()
    assert sync.actions(out)["Deployment/web"] == "configured"
    deploy = sync.get(DEPLOY, "web")
    assert deploy is not None
    assert deploy["spec"]["replicas"] == 5
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"


def test_removed_file_is_pruned_but_unlabelled_and_protected_objects_are_not(sync: Sync) -> None:
    sync.repo.write("a.yaml", configmap("a", None, {"k": "v"}))
    sync.repo.write("b.yaml", configmap("b", None, {"k": "v"}))
    sync.repo.write("c.yaml", configmap("c", None, {"k": "v"}))
    sync.repo.write("keep.yaml", configmap("keep", None, {"k": "v"}, {"sync.automator.io/prune": "disabled"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    # Someone takes "c" over: without our label it is no longer ours to delete.
    sync.kubectl("-n", sync.ns, "label", "configmap", "c", "sync.automator.io/name-")
    sync.repo.remove("b.yaml")
    sync.repo.remove("c.yaml")
    sync.repo.remove("keep.yaml")
    sync.repo.commit("drop b, c, keep")

    code, out = sync.run()
    assert code == 0, out
    assert sync.actions(out) == {
        "ConfigMap/a": "unchanged",
        "ConfigMap/b": "pruned",
        "ConfigMap/c": "skipped",
        "ConfigMap/keep": "skipped",
    }
    assert sync.get(CM, "b") is None
    assert sync.get(CM, "c") is not None
    assert sync.get(CM, "keep") is not None
    # Pruned objects leave the inventory: the next run is quiet.
    code, out = sync.run()
    assert sync.actions(out) == {"ConfigMap/a": "unchanged"}


def test_broken_yaml_prunes_nothing_and_names_file_and_line(sync: Sync) -> None:
    sync.repo.write("a.yaml", configmap("a", None, {"k": "v"}))
    sync.repo.write("b.yaml", configmap("b", None, {"k": "v"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.repo.remove("b.yaml")
    sync.repo.write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: [unclosed\n")
    sync.repo.commit("broken")

    code, out = sync.run()
    assert code == 1
    assert out["objects"] == []
    [error] = out["errors"]
    assert re.search(r"a\.yaml:\d+", error), error
    assert sync.get(CM, "b") is not None


def test_empty_render_prunes_nothing_unless_allowed(sync: Sync) -> None:
    sync.repo.write("app/a.yaml", configmap("a", None, {"k": "v"}))
    sync.repo.commit()
    assert sync.run("--path", "app")[0] == 0
    sync.repo.remove("app/a.yaml")
    sync.repo.write("app/.keep", "")
    sync.repo.commit("empty")

    code, out = sync.run("--path", "app")
    assert code == 1
    assert "--allow-empty" in out["errors"][0]
    assert sync.get(CM, "a") is not None

    code, out = sync.run("--path", "app", "--allow-empty")
    assert code == 0
    assert sync.actions(out) == {"ConfigMap/a": "pruned"}
    assert sync.get(CM, "a") is None


CRD_YAML = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {{plural: {plural}, singular: {singular}, kind: {kind}, listKind: {kind}List}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"""


def _widget(sync: Sync) -> tuple[str, str]:
    """A kind of the test's own (the CR control plane is shared by the session)."""
    kind = "Widget" + "".join(c for c in sync.name.title() if c.isalpha())[:20]
    return kind, kind.lower() + "s"


def _widget_cr(kind: str, size: int, name: str = "one") -> str:
    return f"apiVersion: example.com/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n  size: {size}\n"


def test_crd_and_custom_resource_in_one_commit(sync: Sync) -> None:
    kind, plural = _widget(sync)
    # The CR sorts first in the tree; phases still apply the CRD first and wait for Established.
    sync.repo.write("a-cr.yaml", _widget_cr(kind, 3))
    sync.repo.write("z-crd.yaml", CRD_YAML.format(plural=plural, singular=kind.lower(), kind=kind))
    sync.repo.commit()

    code, out = sync.run()
    assert code == 0, out
    assert [(o["kind"], o["action"]) for o in out["objects"]] == [
        ("CustomResourceDefinition", "created"),
        (kind, "created"),
    ]
    assert out["objects"][1]["namespace"] == sync.ns  # scope from the CRD, default namespace applied
    live = json.loads(sync.kubectl("-n", sync.ns, "get", f"{plural}.example.com", "one", "-o", "json"))
    assert live["spec"] == {"size": 3}
    assert live["metadata"]["labels"]["sync.automator.io/name"] == sync.name
    code, out = sync.run()
    assert code == 0
    assert set(sync.actions(out).values()) == {"unchanged"}


def test_custom_resource_drift_is_reverted_and_crd_and_cr_are_pruned_cr_first(sync: Sync) -> None:
    kind, plural = _widget(sync)
    sync.repo.write("crd.yaml", CRD_YAML.format(plural=plural, singular=kind.lower(), kind=kind))
    sync.repo.write("cr.yaml", _widget_cr(kind, 3))
    sync.repo.write("cm.yaml", configmap("keep", None, {"a": "1"}))
    sync.repo.commit()
    assert sync.run()[0] == 0

    sync.kubectl("-n", sync.ns, "patch", f"{plural}.example.com", "one", "--type", "merge", "-p", '{"spec":{"size":5}}')
    code, out = sync.run()
    assert code == 0, out
    [cr] = [o for o in out["objects"] if o["kind"] == kind]
    assert (cr["action"], cr["drift"]) == ("configured", ["/spec/size"])
    live = json.loads(sync.kubectl("-n", sync.ns, "get", f"{plural}.example.com", "one", "-o", "json"))
    assert live["spec"]["size"] == 3

    sync.repo.remove("crd.yaml")
    sync.repo.remove("cr.yaml")
    sync.repo.commit()
    code, out = sync.run()
    assert code == 0, out
    pruned = [o["kind"] for o in out["objects"] if o["action"] == "pruned"]
    assert pruned == [kind, "CustomResourceDefinition"]  # reverse apply order: the CR before its CRD
    assert sync.actions(out)["ConfigMap/keep"] == "unchanged"
    left = sync.kubectl("get", "crd", "-o", "name")
    assert f"{plural}.example.com" not in left or "deletionTimestamp" in sync.kubectl(
        "get", "crd", f"{plural}.example.com", "-o", "json"
    )


CRD_WITH_STATUS = CRD_YAML.replace(
    "    storage: true\n", "    storage: true\n    subresources: {{status: {{}}}}\n"
).replace(
    "            x-kubernetes-preserve-unknown-fields: true\n",
    "            x-kubernetes-preserve-unknown-fields: true\n"
    "          status:\n            type: object\n            x-kubernetes-preserve-unknown-fields: true\n",
)


def test_custom_resources_are_waited_for_by_their_standard_conditions(sync: Sync) -> None:
    """kstatus's generic rules: observedGeneration, then Stalled, Reconciling and Ready."""
    kind, plural = _widget(sync)
    sync.repo.write("crd.yaml", CRD_WITH_STATUS.format(plural=plural, singular=kind.lower(), kind=kind))
    sync.repo.write("cr.yaml", _widget_cr(kind, 3))
    sync.repo.commit()
    # no controller has written a status yet: nothing to wait for, as kstatus reads it
    code, out = sync.run("--wait", "--timeout", "5s")
    assert code == 0, out
    assert [o.get("health") for o in out["objects"] if o["kind"] == kind] == [None]

    res = sync.kube.resource("example.com", "v1", kind)
    assert res is not None

    def status(**conditions: str) -> dict[str, Any]:
        return {
            "observedGeneration": 1,
            "conditions": [{"type": t, "status": v, "reason": f"{t}Reason"} for t, v in conditions.items()],
        }

    for conditions, code_expected, health, reason in [
        ({"Ready": "False"}, 1, "Progressing", "Ready is False: ReadyReason"),
        ({"Reconciling": "True", "Ready": "False"}, 1, "Progressing", "Reconciling: ReconcilingReason"),
        ({"Stalled": "True", "Ready": "False"}, 1, "Failed", "Stalled: StalledReason"),
        ({"Ready": "True"}, 0, "Ready", ""),
    ]:
        sync.kube.patch_status(res, sync.ns, "one", status(**conditions))
        code, out = sync.run("--wait", "--timeout", "1s")
        [cr] = [o for o in out["objects"] if o["kind"] == kind]
        assert (code, cr["health"]) == (code_expected, health), out
        assert reason in " ".join(out["errors"])
    # a newer generation the controller has not observed yet is not Ready
    sync.repo.write("cr.yaml", _widget_cr(kind, 4))
    sync.repo.commit()
    code, out = sync.run("--wait", "--timeout", "1s")
    [cr] = [o for o in out["objects"] if o["kind"] == kind]
    assert (code, cr["health"]) == (1, "Progressing")
    assert "has not observed the latest generation" in " ".join(out["errors"])

    # a resource just created is given a moment to report: its controller's first status counts
    sync.repo.write("cr2.yaml", _widget_cr(kind, 1, name="two"))
    sync.repo.commit()

    def controller() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sync.kube.get(res, sync.ns, "two") is None:
            time.sleep(0.05)  # poll for the apply, bounded by the deadline
        sync.kube.patch_status(res, sync.ns, "two", {"conditions": [{"type": "Stalled", "status": "True"}]})

    thread = threading.Thread(target=controller)
    thread.start()
    code, out = sync.run("--wait", "--timeout", "4s")
    thread.join()
    two = [o for o in out["objects"] if o["name"] == "two"]
    assert (code, [o["health"] for o in two]) == (1, ["Failed"]), out


def test_namespace_and_its_objects_in_one_commit(sync: Sync) -> None:
    other = f"{sync.ns}-x"[:63]
    sync.repo.write("cm.yaml", configmap("settings", other, {"k": "v"}))
    sync.repo.write("ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {other}\n")
    sync.repo.commit()
    code, out = sync.run()
    assert code == 0, out
    assert [o["kind"] for o in out["objects"]] == ["Namespace", "ConfigMap"]
    assert out["objects"][0]["namespace"] == ""
    assert sync.get(CM, "settings", ns=other) is not None


def test_kustomize_directory(sync: Sync) -> None:
    sync.repo.write("base/cm.yaml", configmap("settings", None, {"k": "v"}))
    sync.repo.write(
        "base/kustomization.yaml",
        f"namespace: {sync.ns}\nnamePrefix: prod-\nresources:\n- cm.yaml\nconfigMapGenerator:\n- name: gen\n"
        "  literals: [a=b]\n  options: {disableNameSuffixHash: true}\n",
    )
    sync.repo.commit()
    code, out = sync.run("--path", "base")
    assert code == 0, out
    assert sorted(sync.actions(out)) == ["ConfigMap/prod-gen", "ConfigMap/prod-settings"]
    assert sync.get(CM, "prod-gen") is not None


def test_immutable_field_fails_clearly_then_recreates_with_opt_in(sync: Sync) -> None:
    job = """apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
{annotations}spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: m
        image: {image}
"""
    sync.repo.write("job.yaml", job.format(annotations="", image="migrate:1"))
    sync.repo.commit()
    assert sync.run()[0] == 0
    uid = (sync.get(JOB, "migrate") or {})["metadata"]["uid"]

    sync.repo.write("job.yaml", job.format(annotations="", image="migrate:2"))
    sync.repo.commit()
    code, out = sync.run()
    assert code == 1
    assert sync.actions(out) == {"Job/migrate": "failed"}
    [error] = out["errors"]
    assert f"Job {sync.ns}/migrate" in error
    assert "immutable" in error
    assert "sync.automator.io/recreate" in error

    sync.repo.write(
        "job.yaml",
        job.format(annotations='  annotations:\n    sync.automator.io/recreate: "true"\n', image="migrate:2"),
    )
    sync.repo.commit()
    code, out = sync.run()
    assert code == 0, out
    assert sync.actions(out) == {"Job/migrate": "created"}
    live = sync.get(JOB, "migrate") or {}
    assert live["metadata"]["uid"] != uid
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "migrate:2"


def test_dry_run_prints_the_diff_and_writes_nothing(sync: Sync) -> None:
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "warn"}))
    sync.repo.write("new.yaml", configmap("new", None, {"k": "v"}))
    sync.repo.commit()
    before = versions(sync, [(CM, "settings"), (CM, f"automator-sync-{sync.name}")])

    code, out = sync.run("--dry-run", output="table")
    assert code == 0
    text = out["text"]
    assert re.search(r"ConfigMap\s+\S+\s+new\s+created", text)
    assert re.search(r"ConfigMap\s+\S+\s+settings\s+configured", text)
    assert "-  level: info" in text and "+  level: warn" in text
    assert versions(sync, [(CM, "settings"), (CM, f"automator-sync-{sync.name}")]) == before
    assert sync.get(CM, "new") is None


def test_usage_errors_exit_2(sync: Sync, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--once", "--kubeconfig", str(sync.server.kubeconfig)]) == 2
    assert "--git-url" in capsys.readouterr().err
    missing = sync.server.workdir / "nope"
    assert main(["--once", "--git-url", sync.repo.url, "--kubeconfig", str(missing)]) == 2


def test_suspended_by_annotation_on_the_inventory(sync: Sync) -> None:
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kubectl(
        "-n", sync.ns, "annotate", "configmap", f"automator-sync-{sync.name}", "sync.automator.io/suspend=true"
    )
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "warn"}))
    sync.repo.commit()
    code, out = sync.run()
    assert code == 0
    assert out["objects"] == []
    assert (sync.get(CM, "settings") or {})["data"]["level"] == "info"


def test_custom_resource_without_its_crd_fails_clearly_and_prunes_nothing(sync: Sync) -> None:
    sync.repo.write("a.yaml", configmap("a", None, {"k": "v"}))
    sync.repo.write("b.yaml", configmap("b", None, {"k": "v"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.repo.remove("b.yaml")
    sync.repo.write("cr.yaml", "apiVersion: nowhere.example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n")
    sync.repo.commit()
    code, out = sync.run()
    assert code == 1
    assert sync.actions(out) == {"Gadget/g": "failed", "ConfigMap/a": "unchanged"}
    assert "cr.yaml:1" in out["errors"][0]
    assert "install its CRD" in out["errors"][0]
    assert sync.get(CM, "b") is not None


def test_namespaced_permissions_are_enough(sync: Sync) -> None:
    rbac = Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True)
    binding = Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True)
    meta = {"name": "sync", "namespace": sync.ns}
    sync.kube.apply(rbac, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
                           "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})  # fmt: skip
    sync.kube.apply(
        binding,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sync"},
            "subjects": [{"kind": "User", "name": "limited", "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )  # fmt: skip
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.write("web.yaml", deployment("web", sync.ns))
    sync.repo.commit()
    limited = ("--kubeconfig", str(sync.server.limited_kubeconfig))

    code, out = sync.run(*limited)
    assert code == 0, out
    assert set(sync.actions(out).values()) == {"created"}
    code, out = sync.run(*limited)
    assert code == 0, out
    assert set(sync.actions(out).values()) == {"unchanged"}


def test_dry_run_of_a_new_namespace_and_its_objects(sync: Sync) -> None:
    other = f"{sync.ns}-dry"[:63]
    sync.repo.write("ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {other}\n")
    sync.repo.write("cm.yaml", configmap("settings", other, {"k": "v"}))
    sync.repo.commit()
    code, out = sync.run("--dry-run")
    assert code == 0, out
    assert sync.actions(out) == {"Namespace/" + other: "created", "ConfigMap/settings": "created"}
    assert "+  k: v" in out["diff"]
    assert sync.get(NS, other, ns="") is None


def test_an_object_marked_ignore_is_neither_applied_nor_pruned(sync: Sync) -> None:
    sync.repo.write("a.yaml", configmap("a", None, {"k": "v"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.kubectl("-n", sync.ns, "patch", "configmap", "a", "-p", '{"data":{"k":"hand-edited"}}')
    sync.repo.write("a.yaml", configmap("a", None, {"k": "v2"}, {"sync.automator.io/ignore": "true"}))
    sync.repo.commit()
    code, out = sync.run()
    assert code == 0, out
    assert sync.actions(out) == {"ConfigMap/a": "skipped"}
    assert (sync.get(CM, "a") or {})["data"]["k"] == "hand-edited"


def test_conflicts_are_forced_by_default_and_reported_when_not(sync: Sync) -> None:
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    # Another field manager takes the field over with its own server-side apply.
    other = configmap("settings", sync.ns, {"level": "debug"})
    proc = subprocess.run(
        ["kubectl", "--kubeconfig", str(sync.server.kubeconfig), "apply", "--server-side", "--force-conflicts",
         "--field-manager", "someone-else", "-f", "-"],
        input=other, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    code, out = sync.run("--no-force-conflicts")
    assert code == 1
    assert sync.actions(out) == {"ConfigMap/settings": "failed"}
    assert "someone-else" in out["errors"][0]
    assert "--no-force-conflicts" in out["errors"][0]
    assert (sync.get(CM, "settings") or {})["data"]["level"] == "debug"

    code, out = sync.run()
    assert code == 0
    assert out["objects"][0]["drift"] == ["/data/level"]
    assert (sync.get(CM, "settings") or {})["data"]["level"] == "info"


def test_suspend_flag_applies_nothing(sync: Sync) -> None:
    sync.repo.write("cm.yaml", configmap("settings", None, {"level": "info"}))
    sync.repo.commit()
    code, out = sync.run("--suspend", output="table")
    assert code == 0
    assert "suspended" in out["text"]
    assert sync.get(CM, "settings") is None


def test_inventory_can_be_a_secret(sync: Sync) -> None:
    secret = Resource("", "v1", "Secret", "secrets", True)
    sync.repo.write("a.yaml", configmap("a", None, {"k": "v"}))
    sync.repo.write("b.yaml", configmap("b", None, {"k": "v"}))
    sync.repo.commit()
    assert sync.run("--inventory-kind", "secret")[0] == 0
    assert sync.get(CM, f"automator-sync-{sync.name}") is None
    stored = sync.get(secret, f"automator-sync-{sync.name}")
    assert stored is not None
    version = stored["metadata"]["resourceVersion"]
    code, out = sync.run("--inventory-kind", "secret")
    assert code == 0
    assert set(sync.actions(out).values()) == {"unchanged"}
    assert (sync.get(secret, f"automator-sync-{sync.name}") or {})["metadata"]["resourceVersion"] == version
    sync.repo.remove("b.yaml")
    sync.repo.commit()
    code, out = sync.run("--inventory-kind", "secret")
    assert code == 0
    assert sync.actions(out) == {"ConfigMap/a": "unchanged", "ConfigMap/b": "pruned"}


def test_apply_order_crds_namespaces_cluster_rbac_then_the_rest(sync: Sync) -> None:
    crd_res = Resource("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False)
    kind = "Gizmo" + "".join(c for c in sync.name.title() if c.isalpha())[:20]
    plural = kind.lower() + "s"
    other = f"{sync.ns}-o"[:63]
    # File names sort in the opposite order of the phases.
    sync.repo.write("a-cm.yaml", configmap("settings", other, {"k": "v"}))
    sync.repo.write("b-role.yaml", f"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
                                   f"  name: {sync.name}\nrules: []\n")  # fmt: skip
    sync.repo.write("c-ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {other}\n")
    sync.repo.write("d-crd.yaml", CRD_YAML.format(plural=plural, singular=kind.lower(), kind=kind))
    sync.repo.commit()

    code, out = sync.run()
    assert code == 0, out
    assert [o["kind"] for o in out["objects"]] == ["CustomResourceDefinition", "Namespace", "ClusterRole", "ConfigMap"]
    crd = sync.get(crd_res, f"{plural}.example.com", ns="") or {}
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"  # awaited before the rest was applied
    code, out = sync.run()
    assert set(sync.actions(out).values()) == {"unchanged"}

    # Removing them prunes in reverse: the namespace's objects, then cluster-scoped, then the CRD last.
    for path in ("a-cm.yaml", "b-role.yaml", "c-ns.yaml", "d-crd.yaml"):
        sync.repo.remove(path)
    sync.repo.write("keep.yaml", configmap("keep", None, {"k": "v"}))
    sync.repo.commit()
    code, out = sync.run()
    assert code == 0, out
    pruned = [o["kind"] for o in out["objects"] if o["action"] == "pruned"]
    assert pruned == ["ConfigMap", "ClusterRole", "Namespace", "CustomResourceDefinition"]


def test_prune_finds_objects_recorded_under_an_api_version_no_longer_served(sync: Sync) -> None:
    sync.repo.write("web.yaml", deployment("web", sync.ns))
    sync.repo.write("keep.yaml", configmap("keep", None, {"k": "v"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    inventory_name = f"automator-sync-{sync.name}"
    data = (sync.get(CM, inventory_name) or {})["data"]
    # An inventory written while the cluster served apps/v1beta1 (removed in Kubernetes 1.16).
    objects = data["objects"].replace('"group":"apps","version":"v1"', '"group":"apps","version":"v1beta1"')
    assert objects != data["objects"]
    sync.kubectl("-n", sync.ns, "patch", "configmap", inventory_name, "-p", json.dumps({"data": {"objects": objects}}))
    sync.repo.remove("web.yaml")
    sync.repo.commit()
    code, out = sync.run()
    assert code == 0, out
    assert sync.actions(out) == {"ConfigMap/keep": "unchanged", "Deployment/web": "pruned"}
    assert sync.get(DEPLOY, "web") is None


@pytest.mark.parametrize("kind", ["configmap", "secret"])
def test_large_inventories_are_gzipped_and_still_drive_prune(
    sync: Sync, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from automator.sync import inventory

    monkeypatch.setattr(inventory, "COMPRESS_OVER", 40)  # as if there were tens of thousands of objects
    res = CM if kind == "configmap" else Resource("", "v1", "Secret", "secrets", True)
    for name in ("a", "b", "c"):
        sync.repo.write(f"{name}.yaml", configmap(name, None, {"k": "v"}))
    sync.repo.commit()
    assert sync.run("--inventory-kind", kind)[0] == 0
    stored = sync.get(res, f"automator-sync-{sync.name}") or {}
    fields = stored.get("binaryData") or stored.get("data") or {}
    assert "objects.gz" in fields and "objects" not in fields
    version = stored["metadata"]["resourceVersion"]
    code, out = sync.run("--inventory-kind", kind)
    assert (code, set(sync.actions(out).values())) == (0, {"unchanged"})
    assert (sync.get(res, f"automator-sync-{sync.name}") or {})["metadata"]["resourceVersion"] == version

    sync.repo.remove("c.yaml")
    sync.repo.commit()
    monkeypatch.setattr(inventory, "COMPRESS_OVER", 1 << 20)
    code, out = sync.run("--inventory-kind", kind)
    assert code == 0, out
    assert sync.actions(out)["ConfigMap/c"] == "pruned"
    stored = sync.get(res, f"automator-sync-{sync.name}") or {}
    assert "objects.gz" not in {**stored.get("data", {}), **stored.get("binaryData", {})}


def test_a_second_sync_with_the_same_name_is_refused_and_prunes_nothing(sync: Sync) -> None:
    """The adversarial run: a second agent with the same --name on another path pruned all
    303 objects of the first. An inventory belongs to one name and one source."""
    sync.repo.write("team-a/cm.yaml", configmap("a", None, {"k": "v"}))
    sync.repo.write("team-b/cm.yaml", configmap("b", None, {"k": "v"}))
    sync.repo.commit()
    assert sync.run("--path", "team-a")[0] == 0
    code, out = sync.run("--path", "team-b")
    assert code != 0
    [error] = out["errors"]
    assert "belongs to the sync of" in error and "team-a" in error and "--take-over" in error
    assert sync.get(CM, "a") is not None  # nothing pruned
    assert sync.get(CM, "b") is None  # nothing applied
    # moving a sync to another path on purpose is one explicit flag away
    code, out = sync.run("--path", "team-b", "--take-over")
    assert code == 0, out
    assert sync.actions(out) == {"ConfigMap/b": "created", "ConfigMap/a": "pruned"}
    assert sync.run("--path", "team-b")[0] == 0


def test_a_sync_killed_before_its_inventory_is_written_orphans_nothing(
    sync: Sync, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adversarial run: killed between applying and writing its inventory, a sync left 277
    objects labelled ours that the next commit removed, and the next sync said "unchanged"."""
    from automator.sync import inventory

    sync.repo.write("keep.yaml", configmap("keep", None, {"k": "v"}))
    sync.repo.commit()
    assert sync.run()[0] == 0
    sync.repo.write("new.yaml", configmap("new", None, {"k": "v"}))
    rev = sync.repo.commit("add new")
    real = inventory.write

    def killed_at_the_final_write(*args: Any, **kwargs: Any) -> bool:
        new = args[4]
        if new.revision == rev:  # the record of the finished sync: die before it lands
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(inventory, "write", killed_at_the_final_write)
    with pytest.raises(KeyboardInterrupt):
        sync.run()
    monkeypatch.setattr(inventory, "write", real)
    assert sync.get(CM, "new") is not None  # applied, but the sync never recorded its end
    sync.repo.remove("new.yaml")
    sync.repo.commit("drop new")
    code, out = sync.run()
    assert code == 0, out
    assert sync.actions(out) == {"ConfigMap/keep": "unchanged", "ConfigMap/new": "pruned"}
    assert sync.get(CM, "new") is None
