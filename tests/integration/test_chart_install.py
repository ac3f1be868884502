"""The chart installed for real: every object it renders applied to the envtest kube-apiserver.

Two installs share the session's control plane: the defaults (plus the one required value, the
repository URL: ``tests/data/chart/minimal-values.yaml``) and every optional feature at once
(``all-features-values.yaml``). Each is rendered by real Helm with the capabilities the server
reports, as ``helm install`` would, then applied with ``kubectl apply --server-side``: the API
server validates and stores every object, so a field it does not know, a wrong API version or a
malformed value fails here. Then the chart's ServiceAccounts are used as a pod would use them,
with tokens from the TokenRequest API:

* ``kubectl auth can-i --list`` of both accounts equals a golden list under
  ``tests/data/chart/can-i/`` (regenerate with ``AUTOMATOR_UPDATE_GOLDEN=1`` after an intended
  RBAC change, and review the diff);
* ``automator sync --once`` with the synchronizer's token and the environment the chart gives it
  applies and prunes in the namespaces the chart lets it manage, and fails, naming the object and
  the refusal, outside them;
* each program's leader election, configured from the chart's environment and run with its
  account's token, creates, renews and releases the Lease the chart's Role names, and is refused
  any other.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
from helm_python import _native
from ruamel.yaml import YAML

from tests.servers.kube import ConfigRepo, KubeServer, configmap, service_account_kubeconfig

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "automator"
DATA = REPO_ROOT / "tests" / "data" / "chart"
GOLDEN = DATA / "can-i"
RELEASE = "rel"
# The envtest binary is Kubernetes v1.20.2 built without version stamping, so its /version says
# v0.0.0-master (which the chart's kubeVersion constraint would refuse); its API set is 1.20.2's.
KUBE_VERSION = "v1.20.2"
AUTOMATOR_SA, SYNC_SA = f"{RELEASE}-automator-automator", f"{RELEASE}-automator-synchronizer"

Obj = dict[str, Any]


def load_yaml(path: Path) -> Obj:
    loaded: Obj = YAML(typ="safe", pure=True).load(path)
    return loaded


def kubectl(server: KubeServer, *args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig or server.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def kubectl_ok(server: KubeServer, *args: str) -> str:
    proc = kubectl(server, *args)
    assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def server_api_versions(server: KubeServer) -> list[str]:
    """What Helm's capabilities hold on a real install: every served group/version, and
    group/version/Kind for each of its resources (as ``helm install`` gets them from discovery)."""
    versions = ["v1"]
    groups = json.loads(kubectl_ok(server, "get", "--raw", "/apis"))["groups"]
    paths = [("v1", "/api/v1")]
    for group in groups:
        for version in group["versions"]:
            versions.append(version["groupVersion"])
            paths.append((version["groupVersion"], f"/apis/{version['groupVersion']}"))
    for group_version, path in paths:
        resources = json.loads(kubectl_ok(server, "get", "--raw", path))["resources"]
        versions.extend(f"{group_version}/{r['kind']}" for r in resources if "/" not in r["name"])
    return sorted(set(versions))


def render(values: Obj, namespace: str, api_versions: list[str]) -> list[Obj]:
    """``helm template --kube-version --api-versions``: helm-python-sdk's ``Chart.render`` does not
    pass these two options on, so this calls the library function it wraps with them."""
    opts = {"name": RELEASE, "namespace": namespace, "kube_version": KUBE_VERSION, "api_versions": api_versions}
    with helm.Chart.load(CHART_DIR) as chart:
        manifests = json.loads(_native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(opts)))
    yaml = YAML(typ="safe", pure=True)
    return [
        doc
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.load_all(io.StringIO(text))
        if doc
    ]


def ref(obj: Obj) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@dataclass(frozen=True)
class Install:
    namespace: str  # of the chart's own objects
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def deployment(self, component: str) -> Obj:
        return next(o for o in self.of_kind("Deployment") if o["metadata"]["name"].endswith(f"-{component}"))


def create_namespaces(server: KubeServer, *names: str) -> None:
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in names]
    proc = subprocess.run(
        ["kubectl", "--kubeconfig", str(server.kubeconfig), "apply", "--server-side", "-f", "-"],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def apply(server: KubeServer, objects: list[Obj], path: Path) -> subprocess.CompletedProcess[str]:
    """Server-side apply, as Helm 4 installs, every object in one go; nothing is a dry run."""
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    return kubectl(server, "apply", "--server-side", "--field-manager=helm", "-f", str(path))


def install(server: KubeServer, values: Obj, namespace: str, api_versions: list[str], path: Path) -> Install:
    objects = render(values, namespace, api_versions)
    proc = apply(server, objects, path)
    assert proc.returncode == 0, f"the API server rejected a rendered object:\n{proc.stderr}"
    # Stored, not just accepted: read every object back.
    stored = json.loads(kubectl_ok(server, "get", "-f", str(path), "-o", "json"))["items"]
    assert sorted(map(ref, stored)) == sorted(map(ref, objects))
    # Where the ServiceAccounts live: namespaceOverride moves them out of the release namespace.
    return Install(values.get("namespaceOverride") or namespace, objects)


@pytest.fixture(scope="module")
def api_versions(kube_apiserver: KubeServer) -> list[str]:
    return server_api_versions(kube_apiserver)


@pytest.fixture(scope="module")
def default_install(
    kube_apiserver: KubeServer, api_versions: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Install:
    create_namespaces(kube_apiserver, "chart-defaults")
    path = tmp_path_factory.mktemp("chart-defaults") / "manifest.json"
    return install(kube_apiserver, load_yaml(DATA / "minimal-values.yaml"), "chart-defaults", api_versions, path)


FULL_NAMESPACES = ("chart-all", "monitoring", "chart-team-a", "chart-team-b", "chart-outside")


@pytest.fixture(scope="module")
def full_install(kube_apiserver: KubeServer, tmp_path_factory: pytest.TempPathFactory) -> Install:
    create_namespaces(kube_apiserver, *FULL_NAMESPACES)
    crd = DATA / "servicemonitor-crd.yaml"
    kubectl_ok(kube_apiserver, "apply", "--server-side", "-f", str(crd))
    crd_name = "crd/servicemonitors.monitoring.coreos.com"
    kubectl_ok(kube_apiserver, "wait", "--for=condition=Established", "--timeout=60s", crd_name)
    path = tmp_path_factory.mktemp("chart-all") / "manifest.json"
    # The release namespace holds nothing: namespaceOverride moves every object to chart-all.
    values = load_yaml(DATA / "all-features-values.yaml")
    # Asked again: the server now serves monitoring.coreos.com/v1 too.
    return install(kube_apiserver, values, "chart-release", server_api_versions(kube_apiserver), path)


def test_the_defaults_install_on_a_real_api_server(default_install: Install) -> None:
    kinds = sorted({o["kind"] for o in default_install.objects})
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    # The automator gets no token and nothing to use one for: no Role names its account.
    sa = next(o for o in default_install.of_kind("ServiceAccount") if o["metadata"]["name"] == AUTOMATOR_SA)
    assert sa["automountServiceAccountToken"] is False
    pod = default_install.deployment("automator")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    subjects = [s["name"] for b in default_install.objects if "subjects" in b for s in b["subjects"]]
    assert AUTOMATOR_SA not in subjects and SYNC_SA in subjects


def test_every_feature_at_once_installs_on_a_real_api_server(full_install: Install) -> None:
    kinds = {o["kind"] for o in full_install.objects}
    assert {"Ingress", "NetworkPolicy", "PodDisruptionBudget", "ServiceMonitor", "ConfigMap", "Secret"} <= kinds
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    # v1.20 serves PodDisruptionBudgets as policy/v1beta1 only; the chart asked the server.
    assert {o["apiVersion"] for o in full_install.of_kind("PodDisruptionBudget")} == {"policy/v1beta1"}
    namespaces = {o["metadata"].get("namespace") for o in full_install.objects}
    assert namespaces == {"chart-all", "monitoring", "chart-team-a", "chart-team-b"}
    # Two synchronizers taking turns; one automator fenced by its Lease, kept on Recreate for its claim.
    sync, automator = full_install.deployment("synchronizer")["spec"], full_install.deployment("automator")["spec"]
    assert (sync["replicas"], sync["strategy"]["type"]) == (2, "RollingUpdate")
    assert (automator["replicas"], automator["strategy"]["type"]) == (1, "Recreate")
    assert len([r for r in full_install.of_kind("Role") if r["metadata"]["name"].endswith("-leader-election")]) == 2


def test_a_rejected_object_fails_the_install(
    kube_apiserver: KubeServer, api_versions: list[str], tmp_path: Path
) -> None:
    """Not vacuous: the apply above would report an object the server refuses."""
    create_namespaces(kube_apiserver, "chart-broken")
    values = load_yaml(DATA / "minimal-values.yaml")
    values["extraObjects"] = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_DNS_Name"}}]
    proc = apply(kube_apiserver, render(values, "chart-broken", api_versions), tmp_path / "manifest.json")
    assert proc.returncode != 0
    assert "Not_A_DNS_Name" in proc.stderr and "invalid" in proc.stderr.lower()


# -- what the chart's ServiceAccounts may do --------------------------------------------------


def can_i_list(server: KubeServer, namespace: str, account_namespace: str, account: str) -> list[str]:
    """``kubectl auth can-i --list`` for the account in ``namespace``: one row per rule, its cells
    (a name or a [bracketed list]) joined by one space so that column widths do not matter, sorted."""
    user = f"system:serviceaccount:{account_namespace}:{account}"
    table = kubectl_ok(server, "auth", "can-i", "--list", "-n", namespace, f"--as={user}")
    header, *rows = [line for line in table.splitlines() if line.strip()]
    assert header.split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"], header
    return sorted(" ".join(re.findall(r"\[[^\]]*\]|\S+", line)) for line in rows)


def baseline(server: KubeServer, namespace: str) -> list[str]:
    """What every service account may do (discovery, health, reviewing its own access): the rows
    of an account no binding names."""
    return can_i_list(server, namespace, "chart-nowhere", "nobody")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("AUTOMATOR_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    expected = path.read_text() if path.is_file() else ""
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True), str(path), "live"))
    assert text == expected, f"permissions differ from {path} (AUTOMATOR_UPDATE_GOLDEN=1 rewrites it):\n{diff}"


def permissions(server: KubeServer, install: Install, account: str, namespaces: list[str]) -> str:
    """The account's rows in each namespace beyond the baseline every account has."""
    sections = []
    for ns in namespaces:
        common = set(baseline(server, ns))
        rows = [row for row in can_i_list(server, ns, install.namespace, account) if row not in common]
        sections.append(f"# {account} in namespace {ns}\n" + "".join(f"{row}\n" for row in rows))
    return "\n".join(sections)


def test_the_baseline_every_account_has_is_the_golden_one(kube_apiserver: KubeServer) -> None:
    check_golden("baseline", "".join(f"{row}\n" for row in baseline(kube_apiserver, "default")))


CASES = {
    "defaults-automator": ("default_install", AUTOMATOR_SA, ["chart-defaults", "default"]),
    "defaults-synchronizer": ("default_install", SYNC_SA, ["chart-defaults", "default"]),
    "namespaced-automator": ("full_install", AUTOMATOR_SA, ["chart-all", "chart-team-a"]),
    "namespaced-synchronizer": (
        "full_install",
        SYNC_SA,
        ["chart-all", "chart-team-a", "chart-team-b", "chart-outside"],
    ),
}


@pytest.mark.parametrize("case", CASES.keys())
def test_service_accounts_may_do_what_the_golden_list_says(
    kube_apiserver: KubeServer, request: pytest.FixtureRequest, case: str
) -> None:
    fixture, account, namespaces = CASES[case]
    installed: Install = request.getfixturevalue(fixture)
    check_golden(case, permissions(kube_apiserver, installed, account, namespaces))


def test_the_automator_token_reads_nothing(kube_apiserver: KubeServer, full_install: Install, tmp_path: Path) -> None:
    config = service_account_kubeconfig(kube_apiserver, full_install.namespace, AUTOMATOR_SA, tmp_path / "kubeconfig")
    for what in (["get", "secrets", "-n", "chart-all"], ["get", "configmaps", "-n", "chart-all"]):
        proc = kubectl(kube_apiserver, *what, kubeconfig=config)
        assert proc.returncode != 0 and "forbidden" in proc.stderr, proc.stderr
        assert f"system:serviceaccount:chart-all:{AUTOMATOR_SA}" in proc.stderr


# -- the synchronizer at work with nothing but the chart's RBAC -------------------------------


Run = Callable[[], tuple[int, Obj, str]]


def sync_as_chart(server: KubeServer, installed: Install, tmp_path: Path) -> tuple[ConfigRepo, Run]:
    """``automator sync --once`` with the environment the chart's Deployment sets, run as the
    chart's synchronizer account. What only a pod has is filled in: the kubelet's namespace, a
    token, a local repository; what needs mounted Secrets (signature keys, git token) is left out."""
    (tmp_path / "repo").mkdir()
    repo = ConfigRepo(tmp_path / "repo")
    kubeconfig = service_account_kubeconfig(server, installed.namespace, SYNC_SA, tmp_path / "kubeconfig")
    container = installed.deployment("synchronizer")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("AUTOMATOR_SYNC_") and "value" in e}
    for needs_a_secret in ("VERIFY_SIGNATURES", "GPG_KEYS", "ALLOWED_SIGNERS", "GIT_TOKEN_FILE", "WEBHOOK_SECRET_FILE"):
        env.pop(f"AUTOMATOR_SYNC_{needs_a_secret}", None)
    env.pop("AUTOMATOR_SYNC_LISTEN")
    env |= {
        "AUTOMATOR_SYNC_INVENTORY_NAMESPACE": installed.namespace,  # the fieldRef the kubelet fills in
        "AUTOMATOR_SYNC_GIT_URL": repo.url,
        "AUTOMATOR_SYNC_CACHE_DIR": str(tmp_path / "cache"),
        "AUTOMATOR_SYNC_KUBECONFIG": str(kubeconfig),
        "AUTOMATOR_SYNC_ONCE": "true",
        "AUTOMATOR_SYNC_OUTPUT": "json",
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTOMATOR_") and k != "KUBECONFIG"}

    def run() -> tuple[int, Obj, str]:
        proc = subprocess.run(
            [sys.executable, "-m", "automator", "sync"],
            cwd=REPO_ROOT,
            env={**base, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else {}), proc.stderr

    return repo, run


def live(server: KubeServer, kind: str, namespace: str, name: str) -> bool:
    return kubectl(server, "get", kind, name, "-n", namespace).returncode == 0


def test_the_synchronizer_applies_and_prunes_only_where_the_chart_lets_it(
    kube_apiserver: KubeServer, full_install: Install, tmp_path: Path
) -> None:
    repo, run = sync_as_chart(kube_apiserver, full_install, tmp_path)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "chart-team-b"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}},
    }
    repo.write("clusters/prod/a.yaml", configmap("settings", "chart-team-a", {"level": "info"}))
    repo.write("clusters/prod/default-ns.yaml", configmap("unnamespaced", None, {"k": "v"}))
    repo.write("infra/b.yaml", configmap("flags", "chart-team-b", {"beta": "on"}) + "\n---\n" + json.dumps(service))
    repo.commit("first")
    code, out, err = run()
    assert code == 0, (out, err)
    assert sorted(o["action"] for o in out["objects"]) == ["created"] * 4
    for kind, ns, name in [
        ("configmap", "chart-team-a", "settings"),
        ("configmap", "chart-team-a", "unnamespaced"),  # the first managed namespace is the default
        ("configmap", "chart-team-b", "flags"),
        ("service", "chart-team-b", "web"),
        ("secret", "chart-all", "automator-sync-prod"),  # the inventory, of the kind the chart set
    ]:
        assert live(kube_apiserver, kind, ns, name), (kind, ns, name)

    repo.write("infra/b.yaml", json.dumps(service))
    repo.commit("drop the flags")
    code, out, err = run()
    assert code == 0, (out, err)
    actions = {(o["kind"], o["name"]): o["action"] for o in out["objects"]}
    assert actions[("ConfigMap", "flags")] == "pruned"
    assert not live(kube_apiserver, "configmap", "chart-team-b", "flags")
    assert live(kube_apiserver, "service", "chart-team-b", "web")

    # Outside its namespaces: the API server refuses that object, named, and the sync says who was
    # refused what, where; what it may change is changed, and nothing is pruned on a failed sync.
    repo.write("clusters/prod/outside.yaml", configmap("intruder", "chart-outside", {"k": "v"}))
    repo.write("clusters/prod/a.yaml", configmap("settings", "chart-team-a", {"level": "debug"}))
    repo.remove("clusters/prod/default-ns.yaml")
    repo.commit("reach out")
    code, out, err = run()
    assert code == 1, (out, err)
    by_name = {o["name"]: o for o in out["objects"]}
    assert by_name["intruder"]["action"] == "failed", out
    [error] = [e for e in out["errors"] if "intruder" in e]
    assert "intruder" in error and "chart-outside" in error and "forbidden" in error, error
    assert f"system:serviceaccount:chart-all:{SYNC_SA}" in error, error
    assert not live(kube_apiserver, "configmap", "chart-outside", "intruder")
    assert by_name["settings"]["action"] == "configured", out

    # The automator's token (clusterReport on) reads what the synchronizer reported, and no more.
    from automator.errors import AutomatorError
    from automator.sync.report import read_cluster

    reader = service_account_kubeconfig(kube_apiserver, full_install.namespace, AUTOMATOR_SA, tmp_path / "reader")
    report = read_cluster(reader, name="prod", namespace=full_install.namespace, inventory_kind="secret")
    assert report is not None and report.revision == out["revision"]
    with pytest.raises(AutomatorError, match=r"(?i)forbidden|403"):
        read_cluster(reader, name="other", namespace=full_install.namespace, inventory_kind="secret")
    level = kubectl_ok(
        kube_apiserver, "get", "configmap", "settings", "-n", "chart-team-a", "-o", "jsonpath={.data.level}"
    )
    assert level == "debug"
    assert live(kube_apiserver, "configmap", "chart-team-a", "unnamespaced")  # not pruned: the sync failed
    assert live(kube_apiserver, "service", "chart-team-b", "web")


def test_by_default_the_synchronizer_applies_cluster_wide(
    kube_apiserver: KubeServer, default_install: Install, tmp_path: Path
) -> None:
    repo, run = sync_as_chart(kube_apiserver, default_install, tmp_path)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "chart-made-by-sync"}}
    repo.write("ns.yaml", json.dumps(namespace))
    repo.write("cm.yaml", configmap("settings", "chart-made-by-sync", {"k": "v"}))
    repo.commit("a namespace of its own")
    code, out, err = run()
    assert code == 0, (out, err)
    assert live(kube_apiserver, "configmap", "chart-made-by-sync", "settings")
    assert live(kube_apiserver, "configmap", "chart-defaults", f"automator-sync-{RELEASE}")

    repo.remove("cm.yaml")
    repo.commit("drop it")
    code, out, err = run()
    assert code == 0, (out, err)
    assert [o["action"] for o in out["objects"] if o["kind"] == "ConfigMap"] == ["pruned"]
    assert not live(kube_apiserver, "configmap", "chart-made-by-sync", "settings")


# -- leader election with nothing but the chart's Lease Role ----------------------------------


def lease_holder(
    server: KubeServer, installed: Install, component: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The LeaseHolder the program builds from the environment the chart's Deployment sets
    (POD_NAME and the inventory namespace filled in as the kubelet would), talking to the API
    server with the chart's ServiceAccount token."""
    from automator.sync.cluster import KubeCluster
    from automator.sync.lease import KubeLeases, LeaseHolder

    account = AUTOMATOR_SA if component == "automator" else SYNC_SA
    kubeconfig = service_account_kubeconfig(server, installed.namespace, account, tmp_path / f"{component}-kubeconfig")
    container = installed.deployment(component)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("AUTOMATOR_") and "value" in e}
    for name in [n for n in os.environ if n.startswith("AUTOMATOR_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pod = f"{container['name']}-5c8d7-x2x9q"
    monkeypatch.setenv("POD_NAME", pod)
    from automator.cli import _leader, build_parser

    if component == "automator":
        args = build_parser("run").parse_args(["run", "--lease-kubeconfig", str(kubeconfig)])
        holder = _leader(args)
    else:
        from automator.sync import command

        monkeypatch.setenv("AUTOMATOR_SYNC_INVENTORY_NAMESPACE", installed.namespace)
        args = build_parser().parse_args(["sync"])
        config = command.lease_config(args, command.options_from(args), once=False)
        holder = LeaseHolder(KubeLeases(KubeCluster.connect(str(kubeconfig), pool_size=1)), config)
    assert holder is not None and holder.config.identity == pod
    return holder


def lease_spec(server: KubeServer, namespace: str, name: str) -> Obj:
    spec: Obj = json.loads(kubectl_ok(server, "get", "lease", name, "-n", namespace, "-o", "json"))["spec"]
    return spec


LEASES = {"automator": (f"{RELEASE}-automator-automator", 20.0), "synchronizer": ("automator-sync-prod", 15.0)}


@pytest.mark.parametrize("component", LEASES.keys())
def test_each_program_takes_its_lease_with_the_charts_role(
    kube_apiserver: KubeServer, full_install: Install, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, component: str
) -> None:
    from automator.errors import AutomatorError
    from automator.sync.lease import LeaseConfig, LeaseHolder

    lease, duration = LEASES[component]
    holder = lease_holder(kube_apiserver, full_install, component, tmp_path, monkeypatch)
    assert (holder.config.namespace, holder.config.name) == (full_install.namespace, lease)
    assert holder.config.duration == duration  # leaderElection.leaseDuration
    assert not live(kube_apiserver, "lease", full_install.namespace, lease)
    assert holder.step() is True  # created (POST)
    created = lease_spec(kube_apiserver, full_install.namespace, lease)
    assert created["holderIdentity"] == holder.config.identity
    assert holder.step() is True  # renewed (PUT)
    renewed = lease_spec(kube_apiserver, full_install.namespace, lease)
    assert renewed["renewTime"] > created["renewTime"] and renewed["holderIdentity"] == holder.config.identity
    holder.stop()  # released (PUT), so a standby takes over at once
    assert not lease_spec(kube_apiserver, full_install.namespace, lease).get("holderIdentity")

    # a standby takes the released Lease over (PUT on someone else's record)
    standby = LeaseHolder(
        holder.api, LeaseConfig(full_install.namespace, lease, "standby", duration=15, renew_deadline=10)
    )
    assert standby.step() is True
    assert lease_spec(kube_apiserver, full_install.namespace, lease)["holderIdentity"] == "standby"

    # any other Lease is refused: reading and changing are granted by name
    other = LeaseHolder(
        holder.api, LeaseConfig(full_install.namespace, "someone-else", "x", duration=15, renew_deadline=10)
    )
    with pytest.raises(AutomatorError, match=r"get lease chart-all/someone-else: the API server answered 403"):
        other.step()
    # ... and in a namespace neither program manages, create too
    elsewhere = LeaseHolder(holder.api, LeaseConfig("chart-outside", lease, "x", duration=15, renew_deadline=10))
    with pytest.raises(AutomatorError, match=r"answered 403"):
        elsewhere.step()
    assert not live(kube_apiserver, "lease", "chart-outside", lease)
