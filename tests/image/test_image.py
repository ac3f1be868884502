"""The image as the Helm chart runs it: both programs from inside the container against real servers.

Each test runs the image with podman (see conftest.py): host network, a read-only root, and the
image's own user, never one passed on the command line, so an image that would run as root fails
here. The servers are the suite's own, on loopback: the envtest kube-apiserver, Debian's
docker-registry, a smart-HTTP git server and the fake GitHub. Files the container needs (a token,
a kubeconfig) are bind-mounted read-only, as the chart mounts Secrets.
"""

from __future__ import annotations

import base64
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from automator.sync.cluster import KubeCluster
from tests.image.conftest import Container
from tests.servers.fake_github import GITHUB_TOKEN, github_server
from tests.servers.git_http import GitHttpServer, git_http_server, read_file, write_commit
from tests.servers.kube import CM, NS, KubeServer
from tests.servers.registry import RunningRegistry

ROOT = Path(__file__).resolve().parents[2]
UID = 65532
TOKEN_IN_CONTAINER = "/etc/automator/git-token/password"  # where the chart mounts it
KUBECONFIG_IN_CONTAINER = "/etc/automator/kubeconfig"


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitHttpServer]:
    with git_http_server(tmp_path / "git", token="image-test-git-token") as server:
        yield server


@pytest.fixture
def token_file(tmp_path: Path, git_server: GitHttpServer) -> Path:
    path = tmp_path / "git-token"
    path.write_text(git_server.token + "\n")
    path.chmod(0o644)  # the container's user is not the owner of the host file
    return path


def test_version_is_the_projects_and_names_the_commit_built(container: Container) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    proc = container.run("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["automator", version]
    assert container.inspect('{{index .Labels "org.opencontainers.image.version"}}') == version
    revision = container.inspect('{{index .Labels "org.opencontainers.image.revision"}}')
    if revision:  # built from a git checkout (make image): the program says which commit it is
        assert f"(commit {revision[:12]})" in proc.stdout


def test_the_image_runs_as_65532_and_never_as_root(container: Container) -> None:
    # the image's configured user: numeric, so Kubernetes' runAsNonRoot can check it
    user = container.inspect("{{.Config.User}}")
    uid = user.partition(":")[0]
    assert uid not in ("", "0", "root"), f"the image runs as root (User={user!r})"
    assert uid == str(UID), user
    # and the user a container actually gets, nothing on the command line saying otherwise
    proc = container.run("-c", "id -u; id -g", entrypoint="/bin/sh")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(UID), str(UID)]


def test_the_dashboard_ships_its_pages_stylesheet_and_script(container: Container) -> None:
    # the package data the dashboard serves, from the installed package (not a checkout)
    code = (
        "from automator.dashboard.pages import asset, problem_page\n"
        "import automator.dashboard.pages as pages\n"
        "print(pages.__file__)\n"
        "assert b'setInterval' in asset('dashboard.js') and b':root' in asset('dashboard.css')\n"
        "assert '<p class=\"empty\" id=\"problem\">shipped</p>' in problem_page('shipped')\n"
    )
    proc = container.run("-c", code, entrypoint="/opt/automator/bin/python")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("/opt/automator/lib/")


def test_the_root_filesystem_is_read_only_and_the_chart_dirs_writable(container: Container) -> None:
    script = "for d in /opt/automator /usr/local/bin /tmp /home/automator /var/cache/automator; do\n"
    script += '  if touch "$d/.probe" 2>/dev/null; then echo "$d writable"; else echo "$d read-only"; fi\ndone\n'
    proc = container.run("-c", script, entrypoint="/bin/sh")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "/opt/automator read-only",
        "/usr/local/bin read-only",
        "/tmp writable",
        "/home/automator writable",
        "/var/cache/automator writable",
    ]


def embedded_kubeconfig(server: KubeServer, path: Path) -> Path:
    """The server's admin kubeconfig with its CA inline, so one file mount carries all of it."""
    ca = base64.b64encode((server.workdir / "certs" / "apiserver.crt").read_bytes()).decode()
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: envtest\n  cluster:\n    server: {server.url}\n    certificate-authority-data: {ca}\n"
        f"users:\n- name: admin\n  user:\n    token: {server.token}\n"
        "contexts:\n- name: envtest\n  context: {cluster: envtest, user: admin}\ncurrent-context: envtest\n"
    )
    path.chmod(0o644)
    return path


SETTINGS = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: info\n"


def test_sync_once_applies_a_kustomization_from_an_http_remote(
    container: Container,
    *,
    kube_apiserver: KubeServer,
    kube: KubeCluster,
    git_server: GitHttpServer,
    token_file: Path,
    tmp_path: Path,
) -> None:
    ns = "t-image-sync"
    kube.apply(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    bare = git_server.create_repo("fleet/cluster.git")
    # a kustomization, so the image's kubectl renders it: the name prefix shows it did
    rev = write_commit(
        bare,
        {
            "apps/kustomization.yaml": "namePrefix: img-\nresources: [settings.yaml]\n",
            "apps/settings.yaml": SETTINGS,
        },
        "settings",
    )
    kubeconfig = embedded_kubeconfig(kube_apiserver, tmp_path / "kubeconfig")
    proc = container.run(
        "sync", "--once", "--output", "json",
        "--git-url", git_server.url("fleet/cluster.git"), "--branch", "main", "--path", "apps",
        "--git-token-file", TOKEN_IN_CONTAINER,
        "--kubeconfig", KUBECONFIG_IN_CONTAINER,
        "--name", "image-sync", "--default-namespace", ns, "--inventory-namespace", ns,
        mounts={token_file: TOKEN_IN_CONTAINER, kubeconfig: KUBECONFIG_IN_CONTAINER},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["revision"] == rev
    assert [(o["kind"], o["name"], o["action"]) for o in out["objects"]] == [("ConfigMap", "img-settings", "created")]
    applied = kube.get(CM, ns, "img-settings")
    assert applied is not None
    assert applied["data"] == {"level": "info"}
    assert git_server.token not in proc.stdout + proc.stderr


POLICY = """apiVersion: automator.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: app
  namespace: apps
spec:
  image: {image}
  insecure: true
  policy:
    semver:
      range: '>=1.0.0'
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: apps
spec:
  template:
    spec:
      containers:
        - name: app
          image: {image}:1.0.0 # {{"$imagepolicy": "apps:app"}}
"""


def test_run_once_opens_a_pull_request_on_github(
    container: Container,
    *,
    registry: RunningRegistry,
    git_server: GitHttpServer,
    token_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for tag in ("1.0.0", "1.1.0"):
        registry.push("image-run/app", tag)
    image = registry.image("image-run/app")
    bare = git_server.create_repo("octo/app.git")
    files: dict[str, str | None] = {
        "apps/policy.yaml": POLICY.format(image=image),
        "apps/deploy.yaml": DEPLOYMENT.format(image=image),
    }
    write_commit(bare, files, "policy")
    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        repo = gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=bare)
        monkeypatch.setenv("FORGE_TOKEN", GITHUB_TOKEN)  # passed by name: the value stays off podman's argv
        proc = container.run(
            "run", "--once", "--output", "json",
            "--git-url", git_server.url("octo/app.git"), "--git-token-file", TOKEN_IN_CONTAINER,
            "--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app",
            "--forge-token-env", "FORGE_TOKEN",
            mounts={token_file: TOKEN_IN_CONTAINER}, env=["FORGE_TOKEN"],
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = json.loads(proc.stdout)
        assert [g["outcome"] for g in out["groups"]] == ["opened"]
        branch = out["groups"][0]["branch"]
        [pull] = repo.pulls.values()
        assert "1.1.0" in pull.title
        assert f"{image}:1.1.0" in (read_file(bare, branch, "apps/deploy.yaml") or "")
        assert f"{image}:1.0.0" in (read_file(bare, "main", "apps/deploy.yaml") or "")  # the base is untouched
        for secret in (GITHUB_TOKEN, git_server.token):
            assert secret not in proc.stdout + proc.stderr
