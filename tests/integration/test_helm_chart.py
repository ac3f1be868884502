"""The Helm chart at helm/automator, linted and rendered by real Helm.

helm-python-sdk (import name ``helm_python``) binds Helm's own Go SDK, so ``lint`` and
``Chart.render`` are ``helm lint`` and ``helm template``: same template engine, same values
coalescing, same values.schema.json validation. Its calls are synchronous; no event loop is needed.
The tests read the rendered objects the way a user's cluster would and check what an operator
would notice: which programs run, how locked down they are, what they are told, what they may do.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
from ruamel.yaml import YAML

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "automator"
DATA = Path(__file__).resolve().parents[1] / "data" / "chart"
RELEASE = "rel"
NAMESPACE = "gitops"

Obj = dict[str, Any]

# The one value an install needs: the config repository (the synchronizer applies the same one).
REQUIRED: Obj = YAML(typ="safe", pure=True).load(DATA / "minimal-values.yaml")
REPO_URL = REQUIRED["automator"]["git"]["url"]


def merged(base: Obj, values: Obj) -> Obj:
    """``values`` over ``base``, mappings merged key by key, as Helm coalesces values."""
    out = dict(base)
    for key, value in values.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@dataclass(frozen=True)
class Rendered:
    """What `helm template` printed: the objects, and NOTES.txt."""

    objects: list[Obj]
    notes: str

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str, namespace: str | None = NAMESPACE) -> Obj:
        for o in self.of_kind(kind):
            meta = o["metadata"]
            if meta["name"] == name and meta.get("namespace") == namespace:
                return o
        names = [(o["metadata"]["name"], o["metadata"].get("namespace")) for o in self.of_kind(kind)]
        raise AssertionError(f"no {kind} {namespace}/{name}; rendered: {names}")

    def deployment(self, component: str) -> Obj:
        return self.get("Deployment", f"{RELEASE}-automator-{component}")

    def components(self, kind: str) -> set[str]:
        return {o["metadata"]["labels"]["app.kubernetes.io/component"] for o in self.of_kind(kind)}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def render(
    chart: helm.Chart, values: Obj | None = None, *, namespace: str = NAMESPACE, required: Obj = REQUIRED
) -> Rendered:
    """``helm template`` with ``values`` over the required ones (pass ``required={}`` to leave them out)."""
    manifests = chart.render(merged(required, values or {}), name=RELEASE, namespace=namespace)
    yaml = YAML(typ="safe", pure=True)
    objects: list[Obj] = []
    notes = ""
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(doc for doc in yaml.load_all(io.StringIO(text)) if doc)
    return Rendered(objects, notes)


def container(deployment: Obj) -> Obj:
    """The program's own container (sidecars from ``extraContainers`` aside)."""
    component = deployment["metadata"]["labels"]["app.kubernetes.io/component"]
    mains: list[Obj] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == component]
    (main,) = mains
    return main


def env_of(deployment: Obj) -> dict[str, Any]:
    """Environment as name -> value (or the valueFrom mapping)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment)["env"]}


def file_behind(deployment: Obj, path: str) -> tuple[Obj, str]:
    """The volume and the key that a path inside the container comes from, as the kubelet resolves it."""
    mounts = container(deployment)["volumeMounts"]
    mount = max((m for m in mounts if path.startswith(m["mountPath"] + "/")), key=lambda m: len(m["mountPath"]))
    relative = path[len(mount["mountPath"]) + 1 :]
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    source = volume["secret"] if "secret" in volume else volume["configMap"]
    if "items" not in source:  # the whole Secret or ConfigMap: each key is a file of that name
        assert "/" not in relative, path
        return volume, relative
    key = next(item["key"] for item in source["items"] if item["path"] == relative)
    return volume, key


SYNC_VALUES: Obj = {
    "synchronizer": {
        "git": {
            "url": "https://git.example.test/platform/config.git",
            "branch": "production",
            "paths": ["clusters/prod", "infra"],
            "tokenSecret": {"name": "sync-git", "key": "password"},
        },
        "interval": "2m",
        "prune": False,
        "wait": True,
        "timeout": "10m",
    }
}

AUTOMATOR_VALUES: Obj = {
    "automator": {
        "git": {
            "url": "https://github.com/acme/config.git",
            "branch": "trunk",
            "tokenSecret": {"name": "github-token", "key": "token"},
        },
        "dockerConfigSecret": {"name": "regcred"},
        "webhookSecret": {"name": "hooks", "key": "secret"},
        "interval": "10m",
    }
}

VARIANTS: dict[str, Obj] = {
    "defaults": {},
    "automator-only": {"synchronizer": {"enabled": False}},
    "synchronizer-only": {"automator": {"enabled": False}},
    "namespaced-rbac": {"synchronizer": {"rbac": {"scope": "namespaced", "namespaces": ["team-a", "team-b"]}}},
    "servicemonitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    "configured": {**SYNC_VALUES, **AUTOMATOR_VALUES},
    "replicas": {"automator": {"replicas": 2}, "synchronizer": {"replicas": 3}},
    "all-features": YAML(typ="safe", pure=True).load(DATA / "all-features-values.yaml"),
}


@pytest.mark.parametrize("values", VARIANTS.values(), ids=VARIANTS.keys())
def test_helm_lint_is_clean_in_strict_mode(values: Obj) -> None:
    report = helm.lint(CHART_DIR, merged(REQUIRED, values), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == []
    assert problems == []


@pytest.mark.parametrize(
    ("values", "deployed"),
    [
        ({}, {"automator", "synchronizer"}),
        (VARIANTS["automator-only"], {"automator"}),
        (VARIANTS["synchronizer-only"], {"synchronizer"}),
        ({"automator": {"enabled": False}, "synchronizer": {"enabled": False}}, set()),
    ],
    ids=["both", "automator-only", "synchronizer-only", "neither"],
)
def test_each_program_is_deployed_only_when_enabled(chart: helm.Chart, values: Obj, deployed: set[str]) -> None:
    out = render(chart, values)
    for kind in ("Deployment", "Service", "ServiceAccount"):
        assert out.components(kind) == deployed, kind
    args = {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: container(d)["args"] for d in out.of_kind("Deployment")
    }
    expected_args = {"automator": ["run"], "synchronizer": ["sync"]}
    assert args == {c: expected_args[c] for c in deployed}
    # The synchronizer's cluster-wide power goes away with it.
    has_cluster_rbac = bool(out.of_kind("ClusterRole") or out.of_kind("ClusterRoleBinding"))
    assert has_cluster_rbac == ("synchronizer" in deployed)
    if not deployed:
        assert "nothing runs" in out.notes


@pytest.mark.parametrize("component", ["automator", "synchronizer"])
def test_pods_run_locked_down_with_writable_scratch_dirs(chart: helm.Chart, component: str) -> None:
    deployment = render(chart).deployment(component)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # Service links would inject AUTOMATOR_*_PORT=tcp://... into the programs' own env namespace.
    assert pod["enableServiceLinks"] is False

    sc = container(deployment)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}

    # Read-only root: everything the programs (and git, ssh, gpg) write lands on an emptyDir.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    for path in ("/tmp", "/home/automator", "/var/cache/automator"):
        assert "emptyDir" in volumes[mounts[path]], path
    assert env_of(deployment)["HOME"] == "/home/automator"

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container(deployment)["resources"]["limits"]["memory"]


@pytest.mark.parametrize("component", ["automator", "synchronizer"])
def test_probes_hit_health_endpoints_on_a_declared_port(chart: helm.Chart, component: str) -> None:
    c = container(render(chart).deployment(component))
    port_names = {p["name"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["port"] in port_names
    assert c["readinessProbe"]["httpGet"]["port"] in port_names


@pytest.mark.parametrize("component", ["automator", "synchronizer"])
def test_service_exposes_webhooks_and_metrics(chart: helm.Chart, component: str) -> None:
    out = render(chart)
    deployment = out.deployment(component)
    service = out.get("Service", f"{RELEASE}-automator-{component}")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    env = env_of(deployment)
    if component == "automator":
        # the registry webhooks have a listener of their own: exposing them exposes no /status
        assert container_ports == {"http": 8080, "webhooks": 8081}
        assert ports == {"http": (80, "webhooks"), "metrics": (9090, "http")}
        assert (env["AUTOMATOR_LISTEN"], env["AUTOMATOR_WEBHOOK_LISTEN"]) == ("0.0.0.0:8080", "0.0.0.0:8081")
    else:
        assert container_ports == {"http": 8080}
        assert ports == {"http": (80, "http"), "metrics": (9090, "http")}
        assert env["AUTOMATOR_SYNC_LISTEN"] == "0.0.0.0:8080"


def test_listener_address_follows_listen_host_and_port(chart: helm.Chart) -> None:
    out = render(chart, {"listenHost": "::", "automator": {"port": 8000}})
    assert env_of(out.deployment("automator"))["AUTOMATOR_LISTEN"] == "[::]:8000"
    assert container(out.deployment("automator"))["ports"][0]["containerPort"] == 8000
    assert env_of(out.deployment("synchronizer"))["AUTOMATOR_SYNC_LISTEN"] == "[::]:8080"


def test_synchronizer_is_configured_through_its_env(chart: helm.Chart) -> None:
    deployment = render(chart, SYNC_VALUES).deployment("synchronizer")
    env = env_of(deployment)
    assert env["AUTOMATOR_SYNC_GIT_URL"] == "https://git.example.test/platform/config.git"
    assert env["AUTOMATOR_SYNC_BRANCH"] == "production"
    assert env["AUTOMATOR_SYNC_PATH"] == "clusters/prod,infra"
    assert env["AUTOMATOR_SYNC_INTERVAL"] == "2m"
    assert env["AUTOMATOR_SYNC_PRUNE"] == "false"
    assert env["AUTOMATOR_SYNC_WAIT"] == "true"
    assert env["AUTOMATOR_SYNC_TIMEOUT"] == "10m"
    assert env["AUTOMATOR_SYNC_INVENTORY_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["AUTOMATOR_SYNC_NAME"] == RELEASE
    assert env["AUTOMATOR_SYNC_DEFAULT_NAMESPACE"] == "default"
    assert env["AUTOMATOR_SYNC_GIT_USERNAME"] == "x-access-token"
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts[env["AUTOMATOR_SYNC_CACHE_DIR"]]]
    # The token is a file the program reads, not an env value that `kubectl describe` or a crash dump shows.
    token_file = env["AUTOMATOR_SYNC_GIT_TOKEN_FILE"]
    volume, key = file_behind(deployment, token_file)
    assert (volume["secret"]["secretName"], key) == ("sync-git", "password")
    assert not any("valueFrom" in e and "secretKeyRef" in e["valueFrom"] for e in container(deployment)["env"])


def test_automator_mounts_its_secrets_where_its_env_points(chart: helm.Chart) -> None:
    deployment = render(chart, AUTOMATOR_VALUES).deployment("automator")
    env = env_of(deployment)
    assert env["AUTOMATOR_GIT_URL"] == "https://github.com/acme/config.git"
    assert env["AUTOMATOR_BRANCH"] == "trunk"
    assert env["AUTOMATOR_INTERVAL"] == "10m"
    assert env["AUTOMATOR_FORGE"] == "github"

    volume, key = file_behind(deployment, env["AUTOMATOR_GIT_TOKEN_FILE"])
    assert (volume["secret"]["secretName"], key) == ("github-token", "token")
    volume, key = file_behind(deployment, env["AUTOMATOR_WEBHOOK_SECRET_FILE"])
    assert (volume["secret"]["secretName"], key) == ("hooks", "secret")
    # Registry credentials: a kubernetes.io/dockerconfigjson Secret becomes $DOCKER_CONFIG/config.json.
    volume, key = file_behind(deployment, env["DOCKER_CONFIG"] + "/config.json")
    assert (volume["secret"]["secretName"], key) == ("regcred", ".dockerconfigjson")
    for mount in container(deployment)["volumeMounts"]:
        if mount["mountPath"].startswith("/etc/automator/"):
            assert mount["readOnly"] is True


@pytest.mark.parametrize(("component", "prefix"), [("automator", "AUTOMATOR_"), ("synchronizer", "AUTOMATOR_SYNC_")])
def test_ssh_credentials_are_mounted_where_the_env_points(chart: helm.Chart, component: str, prefix: str) -> None:
    values = {component: {"git": {"url": "git@github.com:acme/config.git", "sshSecret": {"name": "deploy-key"}}}}
    deployment = render(chart, values).deployment(component)
    env = env_of(deployment)
    volume, key = file_behind(deployment, env[f"{prefix}SSH_KEY"])
    assert (volume["secret"]["secretName"], key) == ("deploy-key", "identity")
    volume, key = file_behind(deployment, env[f"{prefix}SSH_KNOWN_HOSTS"])
    assert (volume["secret"]["secretName"], key) == ("deploy-key", "known_hosts")
    assert f"{prefix}GIT_TOKEN_FILE" not in env


def test_signature_verification_mounts_the_trusted_keys(chart: helm.Chart) -> None:
    values = {
        "synchronizer": {
            "verifySignatures": {
                "enabled": True,
                "gpgKeys": {"secretName": "release-keys", "keys": ["alice.asc", "bob.asc"]},
                "allowedSigners": {"secretName": "ssh-signers", "key": "allowed_signers"},
            }
        }
    }
    deployment = render(chart, values).deployment("synchronizer")
    env = env_of(deployment)
    assert env["AUTOMATOR_SYNC_VERIFY_SIGNATURES"] == "true"
    keys = [file_behind(deployment, path) for path in env["AUTOMATOR_SYNC_GPG_KEYS"].split(",")]
    assert [(v["secret"]["secretName"], k) for v, k in keys] == [
        ("release-keys", "alice.asc"),
        ("release-keys", "bob.asc"),
    ]
    volume, key = file_behind(deployment, env["AUTOMATOR_SYNC_ALLOWED_SIGNERS"])
    assert (volume["secret"]["secretName"], key) == ("ssh-signers", "allowed_signers")
    assert "AUTOMATOR_SYNC_VERIFY_SIGNATURES" not in env_of(render(chart).deployment("synchronizer"))


def test_signature_verification_without_keys_fails_at_install(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"verifySignatures\.enabled needs"):
        render(chart, {"synchronizer": {"verifySignatures": {"enabled": True}}})


def test_automator_gets_no_token_and_no_rbac(chart: helm.Chart) -> None:
    # `automator run` never calls the Kubernetes API: its Secrets are mounted files, not API reads.
    out = render(chart, AUTOMATOR_VALUES)
    deployment = out.deployment("automator")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert out.get("ServiceAccount", pod["serviceAccountName"])["automountServiceAccountToken"] is False
    assert bound_rules(out, pod["serviceAccountName"]) == []
    rbac_kinds = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    assert not [
        o
        for k in rbac_kinds
        for o in out.of_kind(k)
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == "automator"
    ]
    # ... while the synchronizer, which applies through the API, keeps its token.
    sync_pod = out.deployment("synchronizer")["spec"]["template"]["spec"]
    assert sync_pod["automountServiceAccountToken"] is True


@pytest.mark.parametrize("kind", ["configmap", "secret"])
def test_cluster_reports_give_the_automator_one_get_and_nothing_more(
    chart: helm.Chart, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automator.cli import build_parser

    values = {
        "automator": {"clusterReport": {"enabled": True, "name": "prod"}},
        "synchronizer": {"inventoryKind": kind},
    }
    out = render(chart, merged(AUTOMATOR_VALUES, values))
    pod = out.deployment("automator")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True  # the one feature that calls the API
    [(role_kind, namespace, rules)] = bound_rules(out, pod["serviceAccountName"])
    assert (role_kind, namespace) == ("Role", NAMESPACE)
    assert rules == [
        {
            "apiGroups": [""],
            "resources": [f"{kind}s"],
            "resourceNames": [f"automator-sync-{RELEASE}"],
            "verbs": ["get"],
        }
    ]
    env = env_of(out.deployment("automator"))
    for name, value in env.items():
        if name.startswith("AUTOMATOR_CLUSTER"):
            monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["run"])  # what `automator run` makes of the chart's env
    assert (args.cluster, args.sync_name, args.sync_namespace) == (["prod="], RELEASE, NAMESPACE)
    assert args.inventory_kind == kind


def bound_rules(out: Rendered, service_account: str) -> list[tuple[str, str | None, list[Obj]]]:
    """(kind, namespace, rules) of every role the chart binds to the service account."""
    found = []
    for binding in out.of_kind("ClusterRoleBinding") + out.of_kind("RoleBinding"):
        subject = {"kind": "ServiceAccount", "name": service_account, "namespace": NAMESPACE}
        if subject not in binding["subjects"]:
            continue
        ref = binding["roleRef"]
        ns = binding["metadata"].get("namespace")
        role = out.get(ref["kind"], ref["name"], None if ref["kind"] == "ClusterRole" else ns)
        found.append((ref["kind"], ns, role["rules"]))
    return found


def test_synchronizer_defaults_to_cluster_wide_apply_and_keeps_an_inventory(chart: helm.Chart) -> None:
    out = render(chart)
    sa = out.deployment("synchronizer")["spec"]["template"]["spec"]["serviceAccountName"]
    assert out.get("ServiceAccount", sa)["automountServiceAccountToken"] is True
    rules = bound_rules(out, sa)
    cluster = [r for kind, _, r in rules if kind == "ClusterRole"]
    assert cluster == [
        [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ]
    ]
    inventory = [r for kind, ns, r in rules if kind == "Role" and ns == NAMESPACE]
    # Its own namespace: the one inventory object it server-side applies, nothing else.
    assert inventory == [
        [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [f"automator-sync-{RELEASE}"],
                "verbs": ["get", "create", "patch"],
            }
        ]
    ]
    env = env_of(out.deployment("synchronizer"))
    assert (env["AUTOMATOR_SYNC_NAME"], env["AUTOMATOR_SYNC_INVENTORY_KIND"]) == (RELEASE, "configmap")


def test_a_secret_inventory_is_the_only_secret_the_synchronizer_may_touch(chart: helm.Chart) -> None:
    out = render(chart, {"synchronizer": {"inventoryKind": "secret", "name": "prod"}})
    role = out.get("Role", f"{RELEASE}-automator-synchronizer-inventory")
    assert role["rules"][0]["resources"] == ["secrets"]
    assert role["rules"][0]["resourceNames"] == ["automator-sync-prod"]
    assert env_of(out.deployment("synchronizer"))["AUTOMATOR_SYNC_INVENTORY_KIND"] == "secret"


def test_namespaced_scope_grants_nothing_cluster_wide(chart: helm.Chart) -> None:
    out = render(chart, VARIANTS["namespaced-rbac"])
    assert out.of_kind("ClusterRole") == [] and out.of_kind("ClusterRoleBinding") == []
    deployment = out.deployment("synchronizer")
    # Objects that name no namespace land in the first managed one, not in "default".
    assert env_of(deployment)["AUTOMATOR_SYNC_DEFAULT_NAMESPACE"] == "team-a"
    sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    bound = bound_rules(out, sa)
    assert {kind for kind, _, _ in bound} == {"Role"}
    everything = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    assert {ns for _, ns, rules in bound if rules == everything} == {"team-a", "team-b"}
    # The inventory stays in the synchronizer's own namespace, whichever namespaces it manages.
    assert any(ns == NAMESPACE and "configmaps" in rules[0]["resources"] for _, ns, rules in bound)


def test_namespaced_scope_defaults_to_the_release_namespace(chart: helm.Chart) -> None:
    out = render(chart, {"synchronizer": {"rbac": {"scope": "namespaced"}}})
    assert out.of_kind("ClusterRole") == []
    assert env_of(out.deployment("synchronizer"))["AUTOMATOR_SYNC_DEFAULT_NAMESPACE"] == NAMESPACE
    assert out.get("Role", f"{RELEASE}-automator-synchronizer")["rules"][0]["resources"] == ["*"]


def test_an_existing_cluster_role_can_be_bound_instead(chart: helm.Chart) -> None:
    out = render(chart, {"synchronizer": {"rbac": {"existingClusterRole": "cluster-admin"}}})
    assert out.of_kind("ClusterRole") == []
    (binding,) = out.of_kind("ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin",
    }


def test_cluster_scoped_names_do_not_collide_across_namespaces(chart: helm.Chart) -> None:
    first = render(chart, namespace="team-a").of_kind("ClusterRole")[0]["metadata"]["name"]
    second = render(chart, namespace="team-b").of_kind("ClusterRole")[0]["metadata"]["name"]
    assert first != second


@pytest.mark.parametrize(
    ("values", "monitored"),
    [
        (VARIANTS["servicemonitor"], {"automator", "synchronizer"}),
        ({**VARIANTS["servicemonitor"], "automator": {"enabled": False}}, {"synchronizer"}),
        ({}, set()),
    ],
    ids=["both", "synchronizer-only", "off"],
)
def test_service_monitors_scrape_the_metrics_port(chart: helm.Chart, values: Obj, monitored: set[str]) -> None:
    out = render(chart, values)
    assert out.components("ServiceMonitor") == monitored
    for monitor in out.of_kind("ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "prom"
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [s for s in out.of_kind("Service") if selector.items() <= s["metadata"]["labels"].items()]
        assert len(services) == 1
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in services[0]["spec"]["ports"]}


def test_image_defaults_to_the_chart_app_version(chart: helm.Chart) -> None:
    app_version = chart.metadata["appVersion"]
    images = {container(d)["image"] for d in render(chart).of_kind("Deployment")}
    assert images == {f"ghcr.io/automator/automator:{app_version}"}
    digest = "sha256:" + "a" * 64
    pinned = render(chart, {"image": {"repository": "registry.test/automator", "tag": "9.9.9", "digest": digest}})
    assert {container(d)["image"] for d in pinned.of_kind("Deployment")} == {f"registry.test/automator@{digest}"}


def test_every_object_carries_the_standard_labels(chart: helm.Chart) -> None:
    out = render(chart, {**VARIANTS["servicemonitor"], "commonLabels": {"team": "platform"}})
    kinds = {obj["kind"] for obj in out.objects}
    assert {"Deployment", "Service", "ServiceAccount", "ServiceMonitor"} <= kinds, kinds  # not vacuous
    for obj in out.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "automator", obj["kind"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == f"automator-{chart.metadata['version']}"
        assert labels["team"] == "platform"


def test_the_webhook_port_must_differ_from_the_main_port(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"webhookPort must differ from automator\.port"):
        render(chart, {"automator": {"webhookPort": 8080}})


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({}, r"synchronizer\.git\.url is required: .*it defaults to automator\.git\.url"),
        ({"synchronizer": {"enabled": False}}, r"automator\.git\.url is required: .*--set automator\.git\.url="),
        ({"synchronizer": {"git": {"url": REPO_URL}}}, r"automator\.git\.url is required"),
    ],
    ids=["nothing", "automator-only", "synchronizer-url-only"],
)
def test_a_missing_repository_url_fails_the_install(chart: helm.Chart, values: Obj, complaint: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=complaint):
        render(chart, values, required={})


def test_the_synchronizer_applies_the_automators_repository_unless_told_otherwise(chart: helm.Chart) -> None:
    only_automator = render(chart, required={"automator": {"git": {"url": REPO_URL}}})
    assert env_of(only_automator.deployment("synchronizer"))["AUTOMATOR_SYNC_GIT_URL"] == REPO_URL
    own = "https://git.example.test/other.git"
    elsewhere = render(chart, {"synchronizer": {"git": {"url": own}}})
    assert env_of(elsewhere.deployment("synchronizer"))["AUTOMATOR_SYNC_GIT_URL"] == own
    just_sync = render(chart, {"automator": {"enabled": False}, "synchronizer": {"git": {"url": own}}}, required={})
    assert just_sync.components("Deployment") == {"synchronizer"}


def test_notes_show_what_runs_where(chart: helm.Chart) -> None:
    configured = render(chart, {**SYNC_VALUES, **AUTOMATOR_VALUES}).notes
    assert "WARNING" not in configured
    assert "https://git.example.test/platform/config.git" in configured
    assert "/hooks/<source>" in configured and "every 10m" in configured
    scheduled = render(chart, {"automator": {"schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin"}}).notes
    assert 'on "0 9 * * 1-5" (Europe/Berlin)' in scheduled
    assert "off: set automator.webhookSecret.name" in scheduled


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"automator": {"interval": "five minutes"}}, "/automator/interval"),
        ({"synchronizer": {"timeout": 300}}, "/synchronizer/timeout"),
        ({"synchronizer": {"rbac": {"scope": "global"}}}, "/synchronizer/rbac/scope"),
        ({"automator": {"enabeld": False}}, "enabeld"),
        ({"automator": {"forge": {"type": "bitbucket"}}}, "/automator/forge/type"),
        ({"synchronizer": {"port": 70000}}, "/synchronizer/port"),
        ({"synchronizer": {"interval": "90"}}, "/synchronizer/interval"),
        ({"synchronizer": {"timeout": "1m30m"}}, "/synchronizer/timeout"),
        ({"synchronizer": {"git": {"paths": ["a,b"]}}}, "/synchronizer/git/paths/0"),
        ({"synchronizer": {"git": {"paths": []}}}, "/synchronizer/git/paths"),
        ({"synchronizer": {"git": {"url": "not a url"}}}, "/synchronizer/git/url"),
        ({"automator": {"dockerConfigSecret": {"name": "Bad_Name"}}}, "/automator/dockerConfigSecret/name"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
    ],
    ids=[
        "interval",
        "timeout-not-duration",
        "rbac-scope",
        "typo",
        "forge",
        "port",
        "interval-without-unit",
        "timeout-units-repeated",
        "comma-in-path",
        "no-paths",
        "git-url",
        "secret-name",
        "digest",
    ],
)
def test_values_schema_rejects_bad_values(chart: helm.Chart, values: Obj, complaint: str) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema") as caught:
        render(chart, values)
    assert complaint in str(caught.value)
    report = helm.lint(CHART_DIR, values, namespace=NAMESPACE)
    assert any(complaint in error for error in report["errors"])


@pytest.mark.parametrize(
    "url",
    ["https://github.com/acme/config.git", "ssh://git@example.test:2222/config.git", "git@github.com:acme/c.git"],
)
def test_values_schema_accepts_usual_git_urls(chart: helm.Chart, url: str) -> None:
    chart.validate_schema({"automator": {"git": {"url": url}}, "synchronizer": {"git": {"url": url}}})


def test_synchronizer_cli_understands_every_variable_the_chart_sets(
    chart: helm.Chart, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The contract between the chart and `automator sync`: feed the rendered env to the real parser."""
    from automator.cli import build_parser
    from automator.sync import command

    values = {
        "synchronizer": {
            **SYNC_VALUES["synchronizer"],
            "git": {**SYNC_VALUES["synchronizer"]["git"], "sshSecret": {"name": "deploy-key"}},
            "webhookSecret": {"name": "hooks", "key": "secret"},
            "verifySignatures": {"enabled": True, "gpgKeys": {"secretName": "keys", "keys": ["a.asc"]}},
            "rbac": {"scope": "namespaced", "namespaces": ["apps"]},
            "notifications": notifications_values("synchronizer")["synchronizer"]["notifications"],
            "replicas": 2,  # leader election on
        }
    }
    out = render(chart, values)
    deployment = out.deployment("synchronizer")
    env = env_of(deployment)
    for name in [n for n in os.environ if n.startswith(command.ENV_PREFIX)]:
        monkeypatch.delenv(name)
    chart_env = {n: v for n, v in env.items() if n.startswith(command.ENV_PREFIX) and isinstance(v, str)}
    assert len(chart_env) >= 5, env  # the chart configures the synchronizer through its env: not vacuous
    for name, value in chart_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AUTOMATOR_SYNC_INVENTORY_NAMESPACE", NAMESPACE)  # what the kubelet fills in
    monkeypatch.setenv("POD_NAME", "rel-automator-synchronizer-7d9f-abcde")  # likewise

    args = build_parser().parse_args(["sync"])
    flags = {dest.upper() for dest in vars(args)} | {"PATH"}  # --path (dest "paths") reads AUTOMATOR_SYNC_PATH
    unknown = sorted(n for n in env if n.startswith(command.ENV_PREFIX) and n[len(command.ENV_PREFIX) :] not in flags)
    assert unknown == [], "the chart sets variables `automator sync` does not read"

    assert args.git_url == "https://git.example.test/platform/config.git"
    assert args.branch == "production"
    assert (args.interval, args.timeout) == (120.0, 600.0)
    assert (args.prune, args.wait, args.verify_signatures) == (False, True, True)
    assert args.listen == "0.0.0.0:8080"
    assert args.cache_dir == "/var/cache/automator"
    assert args.git_token_file == "/etc/automator/git-token/password"
    assert (args.ssh_key, args.ssh_known_hosts) == (
        "/etc/automator/git-ssh/identity",
        "/etc/automator/git-ssh/known_hosts",
    )
    assert args.webhook_secret_file == "/etc/automator/webhook/secret"
    assert args.notifications == NOTIFICATIONS_FILE
    assert file_behind(deployment, args.notifications)[0]["configMap"]["name"] == notifications_configmap(
        "synchronizer"
    )
    options = command.options_from(args)
    assert options.paths == ("clusters/prod", "infra")
    assert (options.name, options.inventory_namespace, options.default_namespace) == (RELEASE, NAMESPACE, "apps")
    # leader election: the Lease the program takes is the one the chart's Role names, where it is
    lease = command.lease_config(args, options, once=False)
    assert lease is not None and (lease.duration, lease.identity) == (15.0, "rel-automator-synchronizer-7d9f-abcde")
    [rules] = lease_rules(out, "synchronizer")
    role = out.get("Role", f"{RELEASE}-automator-synchronizer-leader-election")
    assert (lease.namespace, [lease.name]) == (role["metadata"]["namespace"], rules[0]["resourceNames"])


class _RecordingEnv(dict[str, str]):
    """``os.environ`` stand-in that remembers which variables the parser asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def test_automator_cli_understands_every_variable_the_chart_sets(
    chart: helm.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contract between the chart and `automator run`: the rendered env through the real parser."""
    from automator.cli import build_parser
    from automator.config import DEFAULT, completed, with_overrides

    values = {
        "automator": {
            **AUTOMATOR_VALUES["automator"],
            "forge": {"type": "github", "tokenSecret": {"name": "api-token", "key": "pat"}},
            "schedule": "*/15 7-19 * * 1-5",
            "timezone": "Europe/Berlin",
            "dashboard": {"tokenSecret": {"name": "dash", "key": "bearer"}, "refresh": "1m"},
            "notifications": notifications_values("automator")["automator"]["notifications"],
            "replicas": 2,  # leader election on
            "leaderElection": {"leaseDuration": "30s"},
        }
    }
    out = render(chart, values)
    deployment = out.deployment("automator")
    env = {k: v for k, v in env_of(deployment).items() if isinstance(v, str)}
    recording = _RecordingEnv({k: v for k, v in env.items() if k.startswith("AUTOMATOR_")})
    monkeypatch.setattr(os, "environ", recording)
    args = build_parser("run").parse_args(["run"])
    unknown = sorted(n for n in env if n.startswith("AUTOMATOR_") and n not in recording.asked)
    assert unknown == [], "the chart sets variables `automator run` does not read"

    assert (args.git_url, args.branch, args.forge) == ("https://github.com/acme/config.git", "trunk", "github")
    assert (args.interval, args.schedule, args.timezone) == ("10m", "*/15 7-19 * * 1-5", "Europe/Berlin")
    assert (args.webhook_debounce, args.cycle_timeout) == ("5s", "30m")
    assert (args.log_level, args.log_format) == ("info", "text")
    assert (args.listen, args.webhook_listen) == ("0.0.0.0:8080", "0.0.0.0:8081")
    assert args.once is False  # the Deployment runs the service
    volume, key = file_behind(deployment, args.forge_token_file)
    assert (volume["secret"]["secretName"], key) == ("api-token", "pat")
    volume, key = file_behind(deployment, args.webhook_secret_file)
    assert (volume["secret"]["secretName"], key) == ("hooks", "secret")
    volume, key = file_behind(deployment, args.dashboard_token_file)
    assert (volume["secret"]["secretName"], key, args.dashboard_refresh) == ("dash", "bearer", "1m")
    assert args.notifications == NOTIFICATIONS_FILE
    assert file_behind(deployment, args.notifications)[0]["configMap"]["name"] == notifications_configmap("automator")
    # the forge repository is derived from the git URL when the chart does not set it
    config = completed(
        with_overrides(
            DEFAULT,
            {
                "spec.git.url": args.git_url,
                "spec.forge.provider": args.forge,
                "spec.forge.auth.tokenFile": args.forge_token_file,
            },
        )
    )
    assert config.spec.forge.repository == "acme/config"
    # leader election: the Lease the program takes is the one the chart's Role names, where it is
    assert (args.leader_elect, args.lease_duration, args.lease_identity) == (True, "30s", None)  # identity: $POD_NAME
    # where the holder takes webhooks, so standbys pass theirs on: its pod IP and the webhook port
    assert env_of(deployment)["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    monkeypatch.setenv("POD_IP", "10.1.2.3")
    from automator.cli import _advertised

    assert args.lease_advertise is None
    assert dict(_advertised(args)) == {
        "automator.dev/webhook-url": "http://10.1.2.3:8081",  # the webhook listener
        "automator.dev/dashboard-url": "http://10.1.2.3:8080",  # --listen: the dashboard
    }
    role = out.get("Role", f"{RELEASE}-automator-automator-leader-election")
    assert (args.lease_namespace, [args.lease_name]) == (
        role["metadata"]["namespace"],
        role["rules"][0]["resourceNames"],
    )
    # the tokens are mounted files: nothing in the cluster grants the automator access to them,
    # its one Role is the Lease's
    sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert bound_rules(out, sa) == [("Role", NAMESPACE, role["rules"])]


# -- what users of other charts expect: namespaceOverride, ingress, extra objects, ... ---------

ALL_FEATURES: Obj = VARIANTS["all-features"]


def test_namespace_override_moves_every_namespaced_object(chart: helm.Chart) -> None:
    out = render(chart, {**ALL_FEATURES, "serviceMonitor": {"enabled": True}})
    placed = {(o["kind"], o["metadata"].get("namespace")) for o in out.objects}
    assert {ns for _, ns in placed} == {"chart-all", "chart-team-a", "chart-team-b"}, placed
    # the synchronizer's Roles go where it applies; everything else where the override says
    assert {kind for kind, ns in placed if ns != "chart-all"} == {"Role", "RoleBinding"}
    assert "ClusterRole" not in {kind for kind, _ in placed}
    assert 'in namespace "chart-all"' in out.notes


def test_the_webhooks_ingress_routes_only_the_webhook_paths(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    ingress = out.get("Ingress", f"{RELEASE}-automator-automator", "chart-all")
    service = out.get("Service", f"{RELEASE}-automator-automator", "chart-all")
    deployment = out.get("Deployment", f"{RELEASE}-automator-automator", "chart-all")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"]["example.com/release"] == RELEASE  # through tpl
    assert [r["host"] for r in ingress["spec"]["rules"]] == ["hooks.example.com", "automator.example.com"]
    for rule in ingress["spec"]["rules"]:
        (path,) = rule["http"]["paths"]
        assert (path["path"], path["pathType"]) == ("/hooks", "Prefix")
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        # the Service port the Ingress uses leads to the webhook listener, which serves no /status
        port = next(p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"])
        target = next(p for p in container(deployment)["ports"] if p["name"] == port["targetPort"])
        assert target["containerPort"] == ALL_FEATURES["automator"].get("webhookPort", 8081)
    assert ingress["spec"]["tls"] == [{"hosts": ["hooks.example.com"], "secretName": "hooks-tls"}]

    sync = out.get("Ingress", f"{RELEASE}-automator-synchronizer", "chart-all")
    (rule,) = sync["spec"]["rules"]
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [
        ("/hooks/github", "Exact"),
        ("/hooks/gitlab", "Prefix"),
    ]
    assert render(chart).of_kind("Ingress") == []
    any_host = render(chart, {"automator": {"ingress": {"enabled": True}}}).of_kind("Ingress")
    assert [list(r) for r in any_host[0]["spec"]["rules"]] == [["http"]]


DASHBOARD_PAGES = ["/", "/policies/web-frontend", "/static/dashboard.css", "/static/dashboard.js", "/login", "/logout"]
NOT_THE_DASHBOARD = ["/metrics", "/status", "/healthz", "/readyz", "/hooks/docker", "/policiesx", "/login/x", "/x"]
DASHBOARD_TOKEN: Obj = {"automator": {"dashboard": {"tokenSecret": {"name": "dashboard-token"}}}}
DASHBOARD_INGRESS: Obj = merged(DASHBOARD_TOKEN, {"automator": {"dashboard": {"ingress": {"enabled": True}}}})


def routed(paths: list[Obj], request: str) -> Obj | None:
    """The Ingress path a request path matches, as the Ingress API defines matching: Exact is the
    whole path; Prefix matches element by element, so /policies covers /policies/a, not /policiesx."""
    for p in paths:
        if p["pathType"] == "Exact" and request == p["path"]:
            return p
        prefix = p["path"].rstrip("/").split("/")
        if p["pathType"] == "Prefix" and request.rstrip("/").split("/")[: len(prefix)] == prefix:
            return p
    return None


def test_the_dashboard_token_is_a_read_only_file_where_the_env_points(
    chart: helm.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automator.cli import build_parser

    values = {"automator": {"dashboard": {"tokenSecret": {"name": "dash", "key": "bearer"}, "refresh": "0s"}}}
    deployment = render(chart, values).deployment("automator")
    env = env_of(deployment)
    volume, key = file_behind(deployment, env["AUTOMATOR_DASHBOARD_TOKEN_FILE"])
    assert (volume["secret"]["secretName"], key) == ("dash", "bearer")
    assert volume["secret"]["defaultMode"] == 0o440
    (mount,) = [m for m in container(deployment)["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    # a file the program reads (again when the Secret is rotated), not a value in the pod spec
    assert not any("valueFrom" in e for e in container(deployment)["env"] if "DASHBOARD" in e["name"])
    for name in ("AUTOMATOR_DASHBOARD_TOKEN_FILE", "AUTOMATOR_DASHBOARD_REFRESH"):
        monkeypatch.setenv(name, env[name])
    args = build_parser("run").parse_args(["run"])
    assert (args.dashboard_token_file, args.dashboard_refresh) == ("/etc/automator/dashboard-token/bearer", "0s")

    defaults = env_of(render(chart).deployment("automator"))
    assert defaults["AUTOMATOR_DASHBOARD_REFRESH"] == "15s"
    assert "AUTOMATOR_DASHBOARD_TOKEN_FILE" not in defaults  # open to whoever reaches the port


def test_the_dashboard_ingress_routes_only_the_dashboards_pages(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    ingress = out.get("Ingress", f"{RELEASE}-automator-automator-dashboard", "chart-all")
    service = out.get("Service", f"{RELEASE}-automator-automator", "chart-all")
    deployment = out.get("Deployment", f"{RELEASE}-automator-automator", "chart-all")
    ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "automator.example.com"
    paths = rule["http"]["paths"]
    assert [(p["path"], p["pathType"]) for p in paths] == [
        ("/", "Exact"),
        ("/policies", "Prefix"),
        ("/static", "Prefix"),
        ("/login", "Exact"),
        ("/logout", "Exact"),
    ]
    assert [request for request in DASHBOARD_PAGES if routed(paths, request) is None] == []
    assert [request for request in NOT_THE_DASHBOARD if routed(paths, request) is not None] == []
    for path in paths:
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        # the Service port leads to the main listener (`port`), never to the webhook listener
        port = next(p for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"])
        assert ports[port["targetPort"]] == ALL_FEATURES["automator"].get("port", 8080) != ports["webhooks"]
    assert ingress["spec"]["ingressClassName"] == "nginx-internal"
    assert ingress["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8",
        "example.com/release": RELEASE,  # through tpl
    }
    assert ingress["metadata"]["labels"]["exposed"] == "dashboard"
    assert ingress["spec"]["tls"] == [{"hosts": ["automator.example.com"], "secretName": f"{RELEASE}-dashboard-tls"}]
    # the webhooks keep their own Ingress, which routes no dashboard page
    webhooks = out.get("Ingress", f"{RELEASE}-automator-automator", "chart-all")
    assert not [r for rule in webhooks["spec"]["rules"] for r in DASHBOARD_PAGES if routed(rule["http"]["paths"], r)]
    assert "https://automator.example.com/ (Ingress" in out.notes

    assert render(chart).of_kind("Ingress") == []
    assert render(chart, DASHBOARD_TOKEN).of_kind("Ingress") == []  # a token alone publishes nothing
    (any_host,) = render(chart, DASHBOARD_INGRESS).of_kind("Ingress")
    assert [list(r) for r in any_host["spec"]["rules"]] == [["http"]]
    assert "spec" in any_host and "tls" not in any_host["spec"]
    off = merged(DASHBOARD_INGRESS, {"automator": {"enabled": False}, "synchronizer": {"git": {"url": REPO_URL}}})
    assert render(chart, off).of_kind("Ingress") == []


def test_the_dashboard_ingress_needs_a_token_unless_anonymous_is_meant(chart: helm.Chart) -> None:
    anonymous: Obj = {"automator": {"dashboard": {"ingress": {"enabled": True}}}}
    with pytest.raises(helm.HelmRenderError, match=r"needs a token: .*automator\.dashboard\.tokenSecret\.name"):
        render(chart, anonymous)
    meant = render(chart, merged(anonymous, {"automator": {"dashboard": {"ingress": {"allowAnonymous": True}}}}))
    assert [i["metadata"]["name"] for i in meant.of_kind("Ingress")] == [f"{RELEASE}-automator-automator-dashboard"]
    assert "allowAnonymous is on" in meant.notes
    assert "AUTOMATOR_DASHBOARD_TOKEN_FILE" not in env_of(meant.deployment("automator"))


def test_the_dashboard_ingress_needs_the_state(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"dashboard\.ingress\.enabled needs automator\.state\.enabled"):
        render(chart, merged(DASHBOARD_INGRESS, {"automator": {"state": {"enabled": False}}}))


def test_the_ingress_controller_may_reach_the_dashboard_through_the_network_policy(chart: helm.Chart) -> None:
    def peers(values: Obj) -> dict[str, list[Obj]]:
        policy = render(chart, values).get("NetworkPolicy", f"{RELEASE}-automator-automator", "chart-all")
        allowed: dict[str, list[Obj]] = {}
        for rule in policy["spec"]["ingress"]:
            for port in rule["ports"]:
                allowed.setdefault(port["port"], []).extend(rule.get("from", [{"anyone": True}]))
        return allowed

    nginx = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    # `http` is the container port the dashboard Ingress leads to (see the test above)
    assert peers(ALL_FEATURES) == {"webhooks": [nginx], "http": [monitoring, nginx]}
    without = merged(ALL_FEATURES, {"automator": {"networkPolicy": {"dashboardFrom": []}}})
    assert peers(without)["http"] == [monitoring]  # metricsFrom alone, not opened to anyone
    assert "dashboardFrom is empty" in render(chart, without).notes


def test_notes_say_how_to_reach_the_dashboard(chart: helm.Chart) -> None:
    notes = render(chart, DASHBOARD_TOKEN).notes
    assert f"kubectl -n {NAMESPACE} port-forward svc/{RELEASE}-automator-automator 9090:9090" in notes
    assert "http://localhost:9090/" in notes and "Secret dashboard-token (key token)" in notes
    hosts = {"hosts": ["a.example.com", "b.example.com"], "tls": [{"hosts": ["b.example.com"]}]}
    published = render(chart, merged(DASHBOARD_INGRESS, {"automator": {"dashboard": {"ingress": hosts}}})).notes
    assert "http://a.example.com/ https://b.example.com/ " in published and "port-forward" not in published
    stateless = render(chart, {"automator": {"state": {"enabled": False}}}).notes
    assert "without automator.state.enabled" in stateless


def test_extra_objects_are_rendered_through_tpl(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    assert out.get("ConfigMap", f"{RELEASE}-extra", "chart-all")["data"] == {"release": RELEASE}
    assert out.get("Secret", f"{RELEASE}-extra-env", "chart-all")["stringData"] == {"EXTRA": "1"}


def test_extra_env_volumes_and_containers_reach_the_pod(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    deployment = out.get("Deployment", f"{RELEASE}-automator-automator", "chart-all")
    pod = deployment["spec"]["template"]["spec"]
    main = next(c for c in pod["containers"] if c["name"] == "automator")
    assert {"name": "RELEASE", "value": RELEASE} in main["env"]
    assert main["envFrom"] == [
        {"secretRef": {"name": f"{RELEASE}-extra-env"}},
        {"configMapRef": {"name": f"{RELEASE}-extra", "optional": True}},
    ]
    assert {"name": "ca", "configMap": {"name": f"{RELEASE}-extra"}} in pod["volumes"]
    assert {"name": "ca", "mountPath": "/etc/ssl/extra", "readOnly": True} in main["volumeMounts"]
    assert [c["name"] for c in pod["containers"]] == ["automator", "sidecar"]
    assert [c["name"] for c in pod["initContainers"]] == ["wait"]
    assert pod["tolerations"][0]["key"] == "dedicated" and "nodeAffinity" in pod["affinity"]
    assert "envFrom" not in container(render(chart).deployment("automator"))


def test_topology_spread_defaults_to_the_programs_own_pods(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    for component, selector in [
        ("automator", None),
        ("synchronizer", {"matchLabels": {"app.kubernetes.io/component": "synchronizer"}}),
    ]:
        deployment = out.get("Deployment", f"{RELEASE}-automator-{component}", "chart-all")
        (constraint,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        expected = selector or {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
        assert constraint["labelSelector"] == expected
        assert constraint["labelSelector"]["matchLabels"].items() <= pod_labels.items()


def test_pod_disruption_budgets_select_their_program(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    budgets = {b["metadata"]["labels"]["app.kubernetes.io/component"]: b for b in out.of_kind("PodDisruptionBudget")}
    assert budgets["automator"]["spec"]["minAvailable"] == 1 and "maxUnavailable" not in budgets["automator"]["spec"]
    assert budgets["synchronizer"]["spec"]["maxUnavailable"] == 1  # the default: drains go on
    for component, budget in budgets.items():
        # `helm template` assumes a current cluster; installing asks the cluster (test_chart_install.py)
        assert budget["apiVersion"] == "policy/v1"
        deployment = out.get("Deployment", f"{RELEASE}-automator-{component}", "chart-all")
        assert budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    with pytest.raises(helm.HelmRenderError, match=r"set minAvailable or maxUnavailable, not both"):
        render(chart, {"automator": {"podDisruptionBudget": {"enabled": True, "minAvailable": 1, "maxUnavailable": 1}}})


def test_network_policies_open_only_the_ports_the_pods_declare(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    for component, egress_rules in [("automator", 2), ("synchronizer", 2)]:
        policy = out.get("NetworkPolicy", f"{RELEASE}-automator-{component}", "chart-all")
        deployment = out.get("Deployment", f"{RELEASE}-automator-{component}", "chart-all")
        assert policy["spec"]["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        declared = {p["name"] for p in container(deployment)["ports"]}
        ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        assert ports <= declared and ports, (ports, declared)
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert len(policy["spec"]["egress"]) == egress_rules  # DNS + the user's rule
    automator = out.get("NetworkPolicy", f"{RELEASE}-automator-automator", "chart-all")
    webhooks = next(r for r in automator["spec"]["ingress"] if r["ports"][0]["port"] == "webhooks")
    assert webhooks["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    # without egress rules, egress stays open
    open_egress = render(chart, {"synchronizer": {"networkPolicy": {"enabled": True}}}).of_kind("NetworkPolicy")
    assert [p["spec"]["policyTypes"] for p in open_egress] == [["Ingress"]]


def test_service_monitor_options_reach_the_endpoint(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    monitors = out.of_kind("ServiceMonitor")
    assert len(monitors) == 2
    for monitor in monitors:
        assert monitor["metadata"]["namespace"] == "monitoring"
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["chart-all"]}  # where the Services are
        assert monitor["metadata"]["annotations"] == {"owner": "platform"}
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/component"
        assert monitor["spec"]["targetLabels"] == ["app.kubernetes.io/part-of"]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["interval"], endpoint["scrapeTimeout"], endpoint["scheme"]) == ("1m", "20s", "http")
        assert endpoint["honorLabels"] is True
        assert endpoint["relabelings"][0]["targetLabel"] == "node"
        assert endpoint["metricRelabelings"][0]["action"] == "drop"
        assert endpoint["tlsConfig"] == {"insecureSkipVerify": False}


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"namespaceOverride": "Not_A_Namespace"}, "/namespaceOverride"),
        ({"extraObjects": [42]}, "/extraObjects/0"),
        (
            {"automator": {"ingress": {"enabled": True, "paths": [{"path": "hooks"}]}}},
            "/automator/ingress/paths/0/path",
        ),
        ({"synchronizer": {"ingress": {"paths": []}}}, "/synchronizer/ingress/paths"),
        (
            {"automator": {"podDisruptionBudget": {"minAvailable": "half"}}},
            "/automator/podDisruptionBudget/minAvailable",
        ),
        ({"synchronizer": {"networkPolicy": {"allowDns": True}}}, "allowDns"),
        ({"automator": {"extraEnvFrom": [{"secret": {"name": "x"}}]}}, "/automator/extraEnvFrom/0"),
        ({"serviceMonitor": {"scheme": "tcp"}}, "/serviceMonitor/scheme"),
        ({"synchronizer": {"inventoryKind": "lease"}}, "/synchronizer/inventoryKind"),
        ({"automator": {"rbac": {"create": True}}}, "rbac"),
        ({"automator": {"dashboard": {"refresh": "15"}}}, "/automator/dashboard/refresh"),
        ({"automator": {"dashboard": {"refresh": 15}}}, "/automator/dashboard/refresh"),
        (
            {"automator": {"dashboard": {"tokenSecret": {"name": "Dash_Token"}}}},
            "/automator/dashboard/tokenSecret/name",
        ),
        (
            {"automator": {"dashboard": {"ingress": {"allowAnonymous": "yes"}}}},
            "/automator/dashboard/ingress/allowAnonymous",
        ),
        ({"automator": {"dashboard": {"ingress": {"paths": [{"path": "/metrics"}]}}}}, "paths"),
        ({"automator": {"dashboard": {"ingress": {"hosts": [""]}}}}, "/automator/dashboard/ingress/hosts/0"),
        ({"synchronizer": {"networkPolicy": {"dashboardFrom": []}}}, "dashboardFrom"),
        ({"automator": {"notifications": {"enabled": "yes"}}}, "/automator/notifications/enabled"),
        ({"synchronizer": {"notifications": {"secrets": ["Slack_Url"]}}}, "/synchronizer/notifications/secrets/0"),
        ({"automator": {"notifications": {"secrets": ["slack", "slack"]}}}, "/automator/notifications/secrets"),
        (
            {"synchronizer": {"notifications": {"config": {"notifiers": {"name": "ops"}}}}},
            "/synchronizer/notifications/config/notifiers",
        ),
        ({"automator": {"notifications": {"config": "notifiers: []"}}}, "/automator/notifications/config"),
        ({"automator": {"notifications": {"configMap": "mine"}}}, "configMap"),
    ],
    ids=[
        "namespace",
        "extra-object",
        "ingress-path",
        "ingress-no-paths",
        "pdb",
        "netpol-typo",
        "env-from",
        "scheme",
        "inventory-kind",
        "automator-rbac-is-gone",
        "dashboard-refresh-without-unit",
        "dashboard-refresh-number",
        "dashboard-secret-name",
        "dashboard-anonymous",
        "dashboard-paths-are-fixed",
        "dashboard-empty-host",
        "synchronizer-has-no-dashboard",
        "notifications-enabled",
        "notifications-secret-name",
        "notifications-secret-twice",
        "notifications-notifiers-list",
        "notifications-config-is-values",
        "notifications-typo",
    ],
)
def test_values_schema_rejects_bad_new_values(chart: helm.Chart, values: Obj, complaint: str) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema") as caught:
        render(chart, values)
    assert complaint in str(caught.value)


def test_service_and_service_account_labels_are_added(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    account = out.get("ServiceAccount", f"{RELEASE}-automator-automator", "chart-all")
    assert account["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert account["metadata"]["annotations"] == {"iam.example.com/role": "automator"}
    service = out.get("Service", f"{RELEASE}-automator-automator", "chart-all")
    assert service["metadata"]["labels"]["exposure"] == "webhooks"
    assert service["metadata"]["labels"]["app.kubernetes.io/component"] == "automator"


def test_the_automator_keeps_its_state_on_an_empty_dir_or_a_claim(chart: helm.Chart) -> None:
    from automator.cli import build_parser

    out = render(chart)
    deployment = out.deployment("automator")
    env = env_of(deployment)
    assert (env["AUTOMATOR_STATE_DIR"], env["AUTOMATOR_STATE_RETENTION"]) == ("/var/lib/automator", "2160h")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    assert volumes[mounts["/var/lib/automator"]]["emptyDir"] == {"sizeLimit": "256Mi"}
    assert out.of_kind("PersistentVolumeClaim") == []
    args = build_parser().parse_args(["run", "--state-dir", env["AUTOMATOR_STATE_DIR"]])
    assert args.state_dir == "/var/lib/automator"  # the variable names a flag `automator run` has

    kept = render(chart, {"automator": {"state": {"persistence": {"enabled": True, "storageClass": "fast"}}}})
    [claim] = kept.of_kind("PersistentVolumeClaim")
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "fast",
        "resources": {"requests": {"storage": "1Gi"}},
    }
    volumes = {v["name"]: v for v in kept.deployment("automator")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"] == {"name": "state", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}

    existing = render(chart, {"automator": {"state": {"persistence": {"enabled": True, "existingClaim": "mine"}}}})
    assert existing.of_kind("PersistentVolumeClaim") == []
    volumes = {v["name"]: v for v in existing.deployment("automator")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"] == {"claimName": "mine"}

    off = render(chart, {"automator": {"state": {"enabled": False}}})
    assert "AUTOMATOR_STATE_DIR" not in env_of(off.deployment("automator"))


# -- notifications: the --notifications file of both programs --------------------------------

NOTIFICATIONS_FILE = "/etc/automator/notifications/notifications.yaml"
PROGRAMS = [("automator", "AUTOMATOR_"), ("synchronizer", "AUTOMATOR_SYNC_")]


def notifications_configmap(component: str) -> str:
    return f"{RELEASE}-automator-{component}-notifications"


def notifications_spec(component: str, files: dict[str, str] | None = None) -> Obj:
    """A spec with a Slack notifier (URL in a Secret) and a signed webhook; ``files`` moves the
    secret files from where the chart mounts them."""
    files = files or {}
    slack_url = files.get("slack-url", "/etc/automator/notify/slack/url")
    hmac = files.get("hmac", "/etc/automator/notify/hooks.example/hmac")
    event = "pullRequestMerged" if component == "automator" else "syncFailed"
    return {
        "failingCycles": 2,
        "notifiers": [
            {"name": "team-chat", "type": "slack", "urlFile": slack_url, "events": [event], "dedupe": "0s"},
            {
                "name": "ops",
                "type": "webhook",
                "url": "https://hooks.example.com/automator",
                "secretFile": hmac,
                "policies": ["podinfo*"],
                "rateLimit": {"count": 5, "per": "1m"},
                "timeout": "5s",
            },
        ],
    }


def notifications_values(component: str, files: dict[str, str] | None = None) -> Obj:
    notifications = {
        "enabled": True,
        "secrets": ["slack", "hooks.example"],
        "config": notifications_spec(component, files),
    }
    return {component: {"notifications": notifications}}


def notifications_document(out: Rendered, deployment: Obj, path: str) -> tuple[Obj, str]:
    """The ConfigMap behind ``path`` in the pod, and the text of the file the program reads."""
    volume, key = file_behind(deployment, path)
    configmap = out.get("ConfigMap", volume["configMap"]["name"])
    text: str = configmap["data"][key]
    return configmap, text


def annotations_of(deployment: Obj) -> dict[str, str]:
    annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
    return annotations


@pytest.mark.parametrize(("component", "prefix"), PROGRAMS)
def test_notifications_file_is_the_document_mounted_where_the_env_points(
    chart: helm.Chart, component: str, prefix: str
) -> None:
    out = render(chart, notifications_values(component))
    deployment = out.deployment(component)
    path = env_of(deployment)[f"{prefix}NOTIFICATIONS"]
    assert path == NOTIFICATIONS_FILE
    configmap, text = notifications_document(out, deployment, path)
    assert configmap["metadata"]["name"] == notifications_configmap(component)
    assert configmap["metadata"]["labels"]["app.kubernetes.io/component"] == component
    assert YAML(typ="safe", pure=True).load(text) == {
        "apiVersion": "automator.dev/v1alpha1",
        "kind": "Notifications",
        "spec": notifications_spec(component),
    }
    (mount,) = [m for m in container(deployment)["volumeMounts"] if m["mountPath"] == "/etc/automator/notifications"]
    assert mount["readOnly"] is True
    # only this program is told: the other one gets no file and no ConfigMap
    other = "synchronizer" if component == "automator" else "automator"
    assert not [n for n in env_of(out.deployment(other)) if n.endswith("NOTIFICATIONS")]
    assert [c["metadata"]["name"] for c in out.of_kind("ConfigMap")] == [notifications_configmap(component)]


@pytest.mark.parametrize(("component", "prefix"), PROGRAMS)
def test_a_changed_notifications_config_rolls_the_pod(chart: helm.Chart, component: str, prefix: str) -> None:
    def checksum(values: Obj) -> str | None:
        return annotations_of(render(chart, values).deployment(component)).get("checksum/notifications")

    values = notifications_values(component)
    first = checksum(values)
    assert first is not None and len(first) == 64
    assert checksum(values) == first  # the same document: no rollout on every upgrade
    changed = merged(values, {component: {"notifications": {"config": {"failingCycles": 5}}}})
    assert checksum(changed) not in (None, first)
    assert checksum({}) is None


@pytest.mark.parametrize(("component", "prefix"), PROGRAMS)
def test_notification_secrets_are_mounted_read_only_where_the_document_names_them(
    chart: helm.Chart, component: str, prefix: str
) -> None:
    deployment = render(chart, notifications_values(component)).deployment(component)
    slack, webhook = notifications_spec(component)["notifiers"]
    for path, expected in [(slack["urlFile"], ("slack", "url")), (webhook["secretFile"], ("hooks.example", "hmac"))]:
        volume, key = file_behind(deployment, path)
        assert (volume["secret"]["secretName"], key) == expected
        assert "items" not in volume["secret"]  # the whole Secret: any key it holds is a file
        assert volume["secret"]["defaultMode"] == 0o440
        (mount,) = [m for m in container(deployment)["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["mountPath"] == f"/etc/automator/notify/{expected[0]}"
        assert mount["readOnly"] is True
    # file paths, not values: nothing secret is in the pod spec
    assert not any("valueFrom" in e for e in container(deployment)["env"] if "NOTIF" in e["name"])


@pytest.mark.parametrize(("component", "prefix"), PROGRAMS)
def test_the_rendered_notifications_file_is_accepted_by_the_loader(
    chart: helm.Chart, component: str, prefix: str, tmp_path: Path
) -> None:
    """The real loader (the one `--notifications` calls) on exactly what the chart rendered. The
    secret files it names must exist, so here they live in tmp_path instead of the Secrets' mounts."""
    from automator.notify.config import load_notifications

    files = {"slack-url": str(tmp_path / "slack-url"), "hmac": str(tmp_path / "hmac")}
    (tmp_path / "slack-url").write_text("https://hooks.slack.example/T000/B000/XXXX\n")
    (tmp_path / "hmac").write_text("signing-key")
    out = render(chart, notifications_values(component, files))
    deployment = out.deployment(component)
    _, text = notifications_document(out, deployment, env_of(deployment)[f"{prefix}NOTIFICATIONS"])
    rendered = tmp_path / "notifications.yaml"
    rendered.write_text(text)

    loaded = load_notifications(rendered)
    assert loaded.failing_cycles == 2
    slack, webhook = loaded.notifiers
    event = "pullRequestMerged" if component == "automator" else "syncFailed"
    assert (slack.name, slack.type, slack.events, slack.dedupe) == ("team-chat", "slack", frozenset({event}), 0.0)
    assert slack.url is not None and slack.url().strip() == "https://hooks.slack.example/T000/B000/XXXX"
    assert (webhook.name, webhook.type, webhook.policies) == ("ops", "webhook", ("podinfo*",))
    assert (webhook.rate_count, webhook.rate_per, webhook.timeout) == (5, 60.0, 5.0)
    assert webhook.url is not None and webhook.url() == "https://hooks.example.com/automator"
    assert webhook.secret is not None and webhook.secret() == b"signing-key"


@pytest.mark.parametrize(("component", "prefix"), PROGRAMS)
def test_an_existing_notifications_configmap_is_mounted_instead(chart: helm.Chart, component: str, prefix: str) -> None:
    values = {component: {"notifications": {"enabled": True, "existingConfigMap": "team-notify", "secrets": ["slack"]}}}
    out = render(chart, values)
    deployment = out.deployment(component)
    volume, key = file_behind(deployment, env_of(deployment)[f"{prefix}NOTIFICATIONS"])
    assert (volume["configMap"]["name"], key) == ("team-notify", "notifications.yaml")
    assert out.of_kind("ConfigMap") == []  # the chart writes none of its own
    assert "checksum/notifications" not in annotations_of(deployment)  # the chart cannot see its content
    assert file_behind(deployment, "/etc/automator/notify/slack/url")[0]["secret"]["secretName"] == "slack"


@pytest.mark.parametrize(("component", "prefix"), PROGRAMS)
@pytest.mark.parametrize(
    "notifications",
    [{}, {"config": {"failingCycles": 2}}, {"config": {"notifiers": []}}, {"secrets": ["slack"]}],
    ids=["nothing", "no-notifiers", "empty-notifiers", "secrets-only"],
)
def test_notifications_without_a_document_fail_the_install(
    chart: helm.Chart, component: str, prefix: str, notifications: Obj
) -> None:
    values = {component: {"notifications": {"enabled": True, **notifications}}}
    complaint = rf"{component}\.notifications\.enabled needs config\.notifiers .* or existingConfigMap"
    with pytest.raises(helm.HelmRenderError, match=complaint):
        render(chart, values)


@pytest.mark.parametrize(("component", "prefix"), PROGRAMS)
def test_notifications_from_both_config_and_an_existing_configmap_fail_the_install(
    chart: helm.Chart, component: str, prefix: str
) -> None:
    values = merged(notifications_values(component), {component: {"notifications": {"existingConfigMap": "mine"}}})
    with pytest.raises(helm.HelmRenderError, match=rf"{component}\.notifications: set config or existingConfigMap"):
        render(chart, values)


def test_nothing_about_notifications_is_rendered_by_default(chart: helm.Chart) -> None:
    out = render(chart)
    assert out.of_kind("ConfigMap") == []
    for component, prefix in PROGRAMS:
        deployment = out.deployment(component)
        assert f"{prefix}NOTIFICATIONS" not in env_of(deployment)
        assert "checksum/notifications" not in annotations_of(deployment)
        pod = deployment["spec"]["template"]["spec"]
        assert not [v for v in pod["volumes"] if v["name"].startswith("notif")]
        assert not [
            m for m in container(deployment)["volumeMounts"] if m["mountPath"].startswith("/etc/automator/notif")
        ]
    # secrets and config alone switch nothing on; neither does a program that is off
    idle = {"enabled": False, "secrets": ["slack"], "config": notifications_spec("automator")}
    assert render(chart, {"automator": {"notifications": idle}}).of_kind("ConfigMap") == []
    off = merged(
        notifications_values("automator"), {"automator": {"enabled": False}, "synchronizer": {"git": {"url": REPO_URL}}}
    )
    assert render(chart, off).of_kind("ConfigMap") == []


def test_all_features_notifications_land_in_the_override_namespace(chart: helm.Chart) -> None:
    out = render(chart, ALL_FEATURES)
    deployment = out.get("Deployment", f"{RELEASE}-automator-automator", "chart-all")
    volume, key = file_behind(deployment, env_of(deployment)["AUTOMATOR_NOTIFICATIONS"])
    configmap = out.get("ConfigMap", volume["configMap"]["name"], "chart-all")
    document = YAML(typ="safe", pure=True).load(configmap["data"][key])
    assert document["spec"] == ALL_FEATURES["automator"]["notifications"]["config"]
    slack_url = document["spec"]["notifiers"][0]["urlFile"]
    assert file_behind(deployment, slack_url)[0]["secret"]["secretName"] == "slack-webhook"


# -- replicas and leader election: N pods, one Lease, a budget ---------------------------------

LEASES = {"automator": f"{RELEASE}-automator-automator", "synchronizer": f"automator-sync-{RELEASE}"}
ELECTION_ENV = {
    "automator": {
        "AUTOMATOR_LEADER_ELECT",
        "AUTOMATOR_LEASE_DURATION",
        "AUTOMATOR_LEASE_NAME",
        "AUTOMATOR_LEASE_NAMESPACE",
    },
    "synchronizer": {"AUTOMATOR_SYNC_LEADER_ELECT", "AUTOMATOR_SYNC_LEASE_DURATION"},
}


def replicas(component: str, count: int, **election: Any) -> Obj:
    values: Obj = {"replicas": count}
    if election:
        values["leaderElection"] = election
    return {component: values}


def lease_rules(out: Rendered, component: str) -> list[list[Obj]]:
    """The rules of every role bound to the program's account that mention leases."""
    sa = out.deployment(component)["spec"]["template"]["spec"]["serviceAccountName"]
    return [rules for _, _, rules in bound_rules(out, sa) if any("leases" in r.get("resources", []) for r in rules)]


@pytest.mark.parametrize("component", ["automator", "synchronizer"])
def test_one_replica_without_election_is_replaced_by_recreate(chart: helm.Chart, component: str) -> None:
    out = render(chart)
    spec = out.deployment(component)["spec"]
    assert (spec["replicas"], spec["strategy"]) == (1, {"type": "Recreate"})
    env = env_of(out.deployment(component))
    assert not ELECTION_ENV[component] & env.keys() and "POD_NAME" not in env
    assert lease_rules(out, component) == []
    assert out.of_kind("PodDisruptionBudget") == []


@pytest.mark.parametrize("component", ["automator", "synchronizer"])
def test_several_replicas_take_turns_through_their_lease(chart: helm.Chart, component: str) -> None:
    out = render(chart, replicas(component, 3))
    deployment = out.deployment(component)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}  # a new pod stands by, then takes over
    env = env_of(deployment)
    assert ELECTION_ENV[component] <= env.keys()
    prefix = "AUTOMATOR_SYNC_" if component == "synchronizer" else "AUTOMATOR_"
    assert (env[f"{prefix}LEADER_ELECT"], env[f"{prefix}LEASE_DURATION"]) == ("true", "15s")
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}  # its identity in the Lease
    if component == "automator":
        assert (env["AUTOMATOR_LEASE_NAME"], env["AUTOMATOR_LEASE_NAMESPACE"]) == (LEASES[component], NAMESPACE)
    # the other program is left as it was
    other = "synchronizer" if component == "automator" else "automator"
    assert out.deployment(other)["spec"]["replicas"] == 1 and lease_rules(out, other) == []

    longer = render(chart, merged(replicas(component, 2), {component: {"leaderElection": {"leaseDuration": "1m"}}}))
    assert env_of(longer.deployment(component))[f"{prefix}LEASE_DURATION"] == "1m"


def test_other_clusters_and_their_prometheus_reach_the_promotion_gates(
    chart: helm.Chart, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automator.cli import _prometheuses, build_parser

    values = {
        "automator": {
            "clusterReport": {"enabled": True, "name": "production"},
            "clusters": [{"name": "staging", "kubeconfigSecret": {"name": "staging-kubeconfig", "key": "config"}}],
            "promotion": {
                "prometheus": {"staging": "http://prometheus.staging:9090", "production": "http://prom:9090"},
                "tokenSecret": {"name": "prom-token", "key": "bearer"},
            },
        }
    }
    out = render(chart, values)
    deployment = out.deployment("automator")
    env = {k: v for k, v in env_of(deployment).items() if isinstance(v, str)}
    monkeypatch.setattr(os, "environ", env)
    args = build_parser("run").parse_args(["run"])
    assert args.cluster == ["production=", "staging=/etc/automator/clusters/staging/config"]
    assert args.prometheus == ["production=http://prom:9090", "staging=http://prometheus.staging:9090"]
    assert args.sync_namespace is None  # each inventory where its kubeconfig (or the pod) says
    volume, key = file_behind(deployment, "/etc/automator/clusters/staging/config")
    assert (volume["secret"]["secretName"], key) == ("staging-kubeconfig", "config")
    volume, key = file_behind(deployment, args.prometheus_token_file)
    assert (volume["secret"]["secretName"], key) == ("prom-token", "bearer")
    assert _prometheuses(argparse_namespace(args, prometheus_token_file=None)).urls == {
        "production": "http://prom:9090",
        "staging": "http://prometheus.staging:9090",
    }
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(chart, {"automator": {"promotion": {"prometheus": {"staging": "ftp://x"}}}})
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(
            chart, {"automator": {"clusters": [{"name": "Staging!", "kubeconfigSecret": {"name": "s", "key": "k"}}]}}
        )


def argparse_namespace(args: Any, **changes: Any) -> Any:
    import argparse

    return argparse.Namespace(**{**vars(args), **changes})


def test_shards_hold_a_lease_each_and_list_their_group(chart: helm.Chart, monkeypatch: pytest.MonkeyPatch) -> None:
    from automator.cli import build_parser

    out = render(chart, merged(replicas("automator", 3), {"automator": {"shards": 3}}))
    env = env_of(out.deployment("automator"))
    assert (env["AUTOMATOR_SHARDS"], env["AUTOMATOR_LEADER_ELECT"]) == ("3", "true")
    monkeypatch.setattr(os, "environ", {k: v for k, v in env.items() if isinstance(v, str)})
    args = build_parser("run").parse_args(["run"])
    assert (args.shards, args.leader_elect) == ("3", True)
    # member Leases are named after pods: no rule can name them, so leases in the namespace
    name = f"{RELEASE}-automator-automator-leader-election"
    assert out.get("Role", name)["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "list", "create", "update"]}
    ]
    assert out.get("Role", name)["metadata"]["namespace"] == NAMESPACE
    assert "AUTOMATOR_SHARDS" not in env_of(render(chart, replicas("automator", 3)).deployment("automator"))
    with pytest.raises(helm.HelmRenderError, match=r"automator\.shards is 3 without leader election"):
        render(chart, {"automator": {"shards": 3}})
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(chart, {"automator": {"shards": 0}})


@pytest.mark.parametrize("component", ["automator", "synchronizer"])
def test_the_lease_role_grants_that_lease_and_nothing_more(chart: helm.Chart, component: str) -> None:
    out = render(chart, replicas(component, 2))
    sa = out.deployment(component)["spec"]["template"]["spec"]["serviceAccountName"]
    name = f"{RELEASE}-automator-{component}-leader-election"
    binding = out.get("RoleBinding", name)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
    assert out.get("Role", name)["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [LEASES[component]],
            "verbs": ["get", "update"],
        },
        # create cannot be limited by name in Kubernetes RBAC: the name is in the body
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    # the only Lease rules the account has, and bound to no one else
    assert lease_rules(out, component) == [out.get("Role", name)["rules"]]
    bound_to = [b for b in out.of_kind("RoleBinding") if b["roleRef"]["name"] == name]
    assert bound_to == [binding]


def test_the_synchronizers_lease_follows_its_name_and_namespace(chart: helm.Chart) -> None:
    out = render(chart, {"namespaceOverride": "gitops-sync", "synchronizer": {"replicas": 2, "name": "prod"}})
    role = out.get("Role", f"{RELEASE}-automator-synchronizer-leader-election", "gitops-sync")
    assert role["rules"][0]["resourceNames"] == ["automator-sync-prod"]
    deployment = out.get("Deployment", f"{RELEASE}-automator-synchronizer", "gitops-sync")
    env = env_of(deployment)
    # the program's Lease is automator-sync-<AUTOMATOR_SYNC_NAME> in its inventory namespace (the pod's)
    assert env["AUTOMATOR_SYNC_NAME"] == "prod"
    assert env["AUTOMATOR_SYNC_INVENTORY_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert deployment["metadata"]["namespace"] == role["metadata"]["namespace"]
    # rbac.create off: the user grants it, the chart renders no Role
    off = render(chart, {"synchronizer": {"replicas": 2, "rbac": {"create": False}}})
    assert off.of_kind("Role") == [] and env_of(off.deployment("synchronizer"))["AUTOMATOR_SYNC_LEADER_ELECT"] == "true"


@pytest.mark.parametrize("component", ["automator", "synchronizer"])
def test_the_token_is_mounted_only_with_election(chart: helm.Chart, component: str) -> None:
    def token(values: Obj) -> bool:
        mounted: bool = render(chart, values).deployment(component)["spec"]["template"]["spec"][
            "automountServiceAccountToken"
        ]
        return mounted

    off_by_default = {component: {"serviceAccount": {"automountToken": False}}}
    assert token(off_by_default) is False
    assert token(merged(off_by_default, replicas(component, 2))) is True
    assert token(merged(off_by_default, replicas(component, 1, enabled=True))) is True
    assert token(merged(off_by_default, replicas(component, 2, enabled="auto"))) is True
    assert token(merged(off_by_default, replicas(component, 1, enabled="auto"))) is False
    if component == "automator":  # the automator's default: no token, until it needs one
        assert token({}) is False and token(replicas(component, 2)) is True


@pytest.mark.parametrize("component", ["automator", "synchronizer"])
def test_election_can_fence_a_single_replica(chart: helm.Chart, component: str) -> None:
    out = render(chart, replicas(component, 1, enabled=True))
    deployment = out.deployment(component)
    assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]["type"]) == (1, "RollingUpdate")
    assert len(lease_rules(out, component)) == 1
    assert out.of_kind("PodDisruptionBudget") == []  # one replica: a budget only when asked for


def test_the_automators_state_claim_keeps_recreate(chart: helm.Chart) -> None:
    claim = {"automator": {"leaderElection": {"enabled": True}, "state": {"persistence": {"enabled": True}}}}
    deployment = render(chart, claim).deployment("automator")
    # the new pod could not mount the ReadWriteOnce claim while the old one holds it
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert env_of(deployment)["AUTOMATOR_LEADER_ELECT"] == "true"


@pytest.mark.parametrize("component", ["automator", "synchronizer"])
def test_several_replicas_get_a_disruption_budget_unless_disabled(chart: helm.Chart, component: str) -> None:
    out = render(chart, replicas(component, 2))
    [budget] = out.of_kind("PodDisruptionBudget")
    assert budget["metadata"]["name"] == f"{RELEASE}-automator-{component}"
    assert budget["spec"]["maxUnavailable"] == 1  # drains evict one replica at a time
    assert budget["spec"]["selector"]["matchLabels"] == out.deployment(component)["spec"]["selector"]["matchLabels"]
    mine = merged(replicas(component, 2), {component: {"podDisruptionBudget": {"minAvailable": 1}}})
    assert render(chart, mine).of_kind("PodDisruptionBudget")[0]["spec"]["minAvailable"] == 1
    disabled = merged(replicas(component, 2), {component: {"podDisruptionBudget": {"enabled": False}}})
    assert render(chart, disabled).of_kind("PodDisruptionBudget") == []
    asked = {component: {"podDisruptionBudget": {"enabled": True}}}
    assert len(render(chart, asked).of_kind("PodDisruptionBudget")) == 1


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (
            replicas("automator", 2, enabled=False),
            "automator.replicas is 2 with automator.leaderElection.enabled=false: 2 replicas would scan and open"
            " the same pull requests",
        ),
        (
            replicas("synchronizer", 3, enabled=False),
            "synchronizer.replicas is 3 with synchronizer.leaderElection.enabled=false: 3 replicas would race",
        ),
        (
            {"automator": {"replicas": 2, "state": {"persistence": {"enabled": True}}}},
            "automator.replicas is 2 with automator.state.persistence.enabled: every replica would mount the one"
            " state claim, and a ReadWriteOnce claim cannot be mounted by pods on different nodes",
        ),
        (
            {"automator": {"replicas": 2, "state": {"persistence": {"enabled": True, "existingClaim": "mine"}}}},
            "automator.state.persistence.enabled=false",
        ),
    ],
    ids=["automator-without-election", "synchronizer-without-election", "state-claim", "existing-claim"],
)
def test_replicas_that_cannot_work_fail_the_install(chart: helm.Chart, values: Obj, complaint: str) -> None:
    with pytest.raises(helm.HelmRenderError) as caught:
        render(chart, values)
    assert complaint in str(caught.value)


def test_several_replicas_with_the_state_off_or_on_an_empty_dir_install(chart: helm.Chart) -> None:
    for state in ({"enabled": False}, {"enabled": False, "persistence": {"enabled": True}}, {}):
        deployment = render(chart, {"automator": {"replicas": 2, "state": state}}).deployment("automator")
        assert deployment["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"automator": {"replicas": -1}}, "/automator/replicas"),
        ({"synchronizer": {"replicas": "2"}}, "/synchronizer/replicas"),
        ({"automator": {"leaderElection": {"enabled": "yes"}}}, "/automator/leaderElection/enabled"),
        ({"synchronizer": {"leaderElection": {"leaseDuration": "15"}}}, "/synchronizer/leaderElection/leaseDuration"),
        ({"synchronizer": {"leaderElection": {"leaseName": "mine"}}}, "leaseName"),
        ({"automator": {"podDisruptionBudget": {"enabled": "always"}}}, "/automator/podDisruptionBudget/enabled"),
    ],
    ids=["negative", "replicas-string", "enabled-word", "duration", "lease-name-is-not-a-value", "pdb-enabled"],
)
def test_values_schema_rejects_bad_replica_values(chart: helm.Chart, values: Obj, complaint: str) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema") as caught:
        render(chart, values)
    assert complaint in str(caught.value)
