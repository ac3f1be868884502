"""Fixtures that start the envtest kube-apiserver + etcd on loopback.

``kube_apiserver`` (session scoped) starts etcd and kube-apiserver v1.20.2 from
``../shared/envtest`` with ports chosen at runtime, waits for ``/readyz`` with a deadline and
yields a :class:`KubeServer` whose ``kubeconfig`` file grants cluster-admin by token.

The shared binary is built with the vendored reflect2 at 1.0.2, so it stores custom resources
too: one API server serves every test, CRDs included.

Where the assets come from: ``$ENVTEST_ASSETS`` (a directory with ``etcd`` and
``kube-apiserver``), else the workplace's ``../shared/envtest/setup.sh`` (beside the checkout, or
at ``/work/shared``). When neither is there, the tests that need a control plane are skipped
with the reason and how to get one; assets that are there but broken fail loudly.

:func:`service_account_kubeconfig` mints a token for a ServiceAccount through the TokenRequest
API and writes a kubeconfig for it, so a test can act with nothing but that account's RBAC.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from automator.sync.__main__ import main
from automator.sync.cluster import KubeCluster, Resource

REPO_ROOT = Path(__file__).resolve().parents[2]
# the workplace's shared envtest: beside the checkout, or at /work/shared for a clone elsewhere
SETUP_CANDIDATES = (REPO_ROOT.parent / "shared" / "envtest" / "setup.sh", Path("/work/shared/envtest/setup.sh"))
SETUP = next((p for p in SETUP_CANDIDATES if p.is_file()), SETUP_CANDIDATES[0])
READY_DEADLINE = 60.0
TOKEN_TTL = 3600


@dataclass(frozen=True)
class KubeServer:
    url: str
    token: str
    kubeconfig: Path
    workdir: Path
    limited_kubeconfig: Path  # user "limited": no permissions until a test binds a Role to it


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assets(env: str = "ENVTEST_ASSETS", setup: Path = SETUP) -> Path:
    """The directory with ``etcd`` and ``kube-apiserver``: from ``$env``, else from running ``setup``."""
    assets = os.environ.get(env)
    if not assets:
        if not setup.is_file():
            looked = ", ".join(str(p) for p in dict.fromkeys((setup, *SETUP_CANDIDATES)))
            pytest.skip(
                f"no Kubernetes control plane: {env} is unset and there is no envtest setup script ({looked}). "
                f'Run `eval "$(<workplace>/shared/envtest/setup.sh)"`, or set {env} to a directory holding '
                "`etcd` and `kube-apiserver` (e.g. from controller-runtime's setup-envtest)"
            )
        proc = subprocess.run(["bash", str(setup)], capture_output=True, text=True, check=False)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(f"export {env}=")), "")
        if proc.returncode != 0 or not line:
            pytest.fail(f"{setup} failed (exit {proc.returncode}): {proc.stderr.strip()[-3000:]}", pytrace=False)
        assets = shlex.split(line.removeprefix(f"export {env}="))[0]
    path = Path(assets)
    for binary in ("etcd", "kube-apiserver"):
        if not os.access(path / binary, os.X_OK):
            pytest.fail(f"envtest asset {path / binary} is missing or not executable", pytrace=False)
    return path


def _write_sa_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    path.write_bytes(pem)


def _wait_ready(url: str, token: str, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + READY_DEADLINE
    last = "no answer"
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"{proc.args!r} exited with {proc.returncode}:\n{tail}", pytrace=False)
        req = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        # Poll: the server answers within the deadline or the loop gives up; no fixed sleep.
        time.sleep(0.1)
    pytest.fail(f"kube-apiserver at {url} not ready after {READY_DEADLINE}s: {last}", pytrace=False)


def _kubeconfig(url: str, token: str, ca: Path) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: envtest
  cluster:
    server: {url}
    certificate-authority: {ca}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: envtest
  context:
    cluster: envtest
    user: admin
current-context: envtest
"""


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeServer]:
    """The session's control plane, shared by every test (each test uses its own names)."""
    with start_apiserver(tmp_path_factory.mktemp("envtest")) as server:
        yield server


@contextlib.contextmanager
def start_apiserver(work: Path, assets: Path | None = None) -> Iterator[KubeServer]:
    assets = assets or _assets()
    work.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    limited_token = secrets.token_hex(16)
    (work / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n{limited_token},limited,limited\n")
    _write_sa_key(work / "sa.key")
    etcd_client, etcd_peer, secure = _free_port(), _free_port(), _free_port()
    etcd_url = f"http://127.0.0.1:{etcd_client}"
    etcd_log, api_log = work / "etcd.log", work / "apiserver.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with etcd_log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        str(assets / "etcd"),
                        "--data-dir", str(work / "etcd"),
                        "--listen-client-urls", etcd_url,
                        "--advertise-client-urls", etcd_url,
                        "--listen-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                        "--initial-advertise-peer-urls", f"http://127.0.0.1:{etcd_peer}",
                        "--initial-cluster", f"default=http://127.0.0.1:{etcd_peer}",
                        "--unsafe-no-fsync",
                    ],
                    stdout=out, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        with api_log.open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [
                        str(assets / "kube-apiserver"),
                        "--etcd-servers", etcd_url,
                        "--bind-address", "127.0.0.1",
                        "--secure-port", str(secure),
                        "--cert-dir", str(work / "certs"),
                        "--token-auth-file", str(work / "tokens.csv"),
                        "--authorization-mode", "RBAC",
                        "--service-account-issuer", "https://kubernetes.default.svc",
                        "--service-account-key-file", str(work / "sa.key"),
                        "--service-account-signing-key-file", str(work / "sa.key"),
                        "--service-cluster-ip-range", "10.96.0.0/16",
                        "--disable-admission-plugins", "ServiceAccount",
                        "--max-requests-inflight", "2000",
                        "--max-mutating-requests-inflight", "1000",
                    ],
                    stdout=out, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        url = f"https://127.0.0.1:{secure}"
        _wait_ready(url, token, procs, [etcd_log, api_log])
        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(_kubeconfig(url, token, work / "certs" / "apiserver.crt"))
        limited = work / "limited.kubeconfig"
        limited.write_text(_kubeconfig(url, limited_token, work / "certs" / "apiserver.crt"))
        yield KubeServer(url=url, token=token, kubeconfig=kubeconfig, workdir=work, limited_kubeconfig=limited)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _api_request(server: KubeServer, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One JSON request to the API server as cluster-admin, verified against its certificate."""
    ctx = ssl.create_default_context(cafile=str(server.workdir / "certs" / "apiserver.crt"))
    req = urllib.request.Request(
        f"{server.url}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            answer: dict[str, Any] = json.load(resp)
            return answer
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')}") from exc


def mint_token(server: KubeServer, namespace: str, name: str, *, ttl: int = TOKEN_TTL) -> str:
    """A bound token for ServiceAccount ``namespace/name``, from the TokenRequest API (as the kubelet
    gets one for a pod), valid for the API server's own audience."""
    review = _api_request(
        server,
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": ttl}},
    )
    token: str = review["status"]["token"]
    return token


def service_account_kubeconfig(server: KubeServer, namespace: str, name: str, path: Path) -> Path:
    """Write a kubeconfig at ``path`` that authenticates as ServiceAccount ``namespace/name`` and nothing else."""
    token = mint_token(server, namespace, name)
    path.write_text(_kubeconfig(server.url, token, server.workdir / "certs" / "apiserver.crt"))
    path.chmod(0o600)
    return path


class ConfigRepo:
    """A real git repository served from a local bare repo: the synchronizer's source in tests."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "remote.git"
        self.work = root / "work"
        self.url = str(self.bare)
        self._git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=root)
        self._git("init", "-q", "-b", "main", str(self.work), cwd=root)
        self._git("config", "user.email", "test@example.com")
        self._git("config", "user.name", "Test")
        self._git("config", "commit.gpgsign", "false")

    def _git(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=cwd or self.work, capture_output=True, text=True, check=False,
            env={**os.environ, **env} if env else None,
        )  # fmt: skip
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def write(self, path: str, text: str) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def remove(self, path: str) -> None:
        self._git("rm", "-q", "-r", path)

    def commit(
        self,
        message: str = "change",
        *,
        sign_with: Path | None = None,
        gpg_key: tuple[str, Path] | None = None,
        branch: str = "main",
    ) -> str:
        """Commit everything and push, signed with an SSH private key (``sign_with``) or with a
        GPG key (``gpg_key``: key id and the GNUPGHOME holding it)."""
        self._git("add", "-A")
        args = ["commit", "-q", "--allow-empty", "-m", message]
        env = None
        if sign_with is not None:
            args = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign_with}", *args, "-S"]
        elif gpg_key is not None:
            args = ["-c", "gpg.format=openpgp", "-c", f"user.signingkey={gpg_key[0]}", *args, "-S"]
            env = {"GNUPGHOME": str(gpg_key[1])}
        self._git(*args, env=env)
        self._git("push", "-q", "--force", self.url, f"HEAD:refs/heads/{branch}")
        return self._git("rev-parse", "HEAD")


@pytest.fixture
def config_repo(tmp_path: Path) -> ConfigRepo:
    return ConfigRepo(tmp_path)


# -- running `automator sync --once` against the session's control plane ----------------------

CM = Resource("", "v1", "ConfigMap", "configmaps", True)
SVC = Resource("", "v1", "Service", "services", True)
NS = Resource("", "v1", "Namespace", "namespaces", False)
DEPLOY = Resource("apps", "v1", "Deployment", "deployments", True)
JOB = Resource("batch", "v1", "Job", "jobs", True)
STS = Resource("apps", "v1", "StatefulSet", "statefulsets", True)
DS = Resource("apps", "v1", "DaemonSet", "daemonsets", True)
POD = Resource("", "v1", "Pod", "pods", True)


def deployment_ready(generation: int) -> dict[str, Any]:
    """What the Deployment controller writes once ``generation`` is rolled out, one replica available."""
    return {
        "observedGeneration": generation,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }


def running_pod(
    kube: KubeCluster, namespace: str, name: str, *, labels: dict[str, str], image: str, image_id: str
) -> None:
    """What the ReplicaSet controller and the kubelet would leave: a Pod of one container
    ``app`` running ``image``, its status naming the digest pulled (``image_id``)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    kube.apply(POD, pod)
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "app",
                "image": image,
                "imageID": image_id,
                "ready": True,
                "restartCount": 0,
                "state": {"running": {}},
            }
        ],
    }
    kube.patch_status(POD, namespace, name, status)


def configmap(name: str, ns: str | None, data: dict[str, str], annotations: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if annotations:
        meta["annotations"] = annotations
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})


def deployment(name: str, ns: str, image: str = "nginx:1.25", replicas: int = 1, annotations: str = "") -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
{annotations}spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
        ports:
        - containerPort: 80
"""


def statefulset(name: str, ns: str, image: str = "postgres:16", replicas: int = 2) -> str:
    return f"""apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {name}
  namespace: {ns}
spec:
  serviceName: {name}
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: db
        image: {image}
"""


def daemonset(name: str, ns: str, image: str = "fluent-bit:3.0") -> str:
    return f"""apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: agent
        image: {image}
"""


@dataclass
class Sync:
    name: str
    ns: str
    repo: ConfigRepo
    kube: KubeCluster
    server: KubeServer
    run: Callable[..., tuple[int, dict[str, Any]]]
    argv: Callable[..., list[str]]

    def actions(self, out: dict[str, Any]) -> dict[str, str]:
        return {f"{o['kind']}/{o['name']}": o["action"] for o in out["objects"]}

    def kubectl(self, *args: str) -> str:
        proc = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.server.kubeconfig), *args], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def get(self, res: Resource, name: str, ns: str | None = None) -> dict[str, Any] | None:
        return self.kube.get(res, self.ns if ns is None else ns, name)


@pytest.fixture(scope="session")
def kube(kube_apiserver: KubeServer) -> Iterator[KubeCluster]:
    cluster = KubeCluster.connect(str(kube_apiserver.kubeconfig))
    yield cluster
    cluster.close()


@pytest.fixture
def sync(
    kube_apiserver: KubeServer,
    kube: KubeCluster,
    config_repo: ConfigRepo,
    tmp_path: Path,
    *,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> Sync:
    return make_sync(kube_apiserver, kube, config_repo, tmp_path, request=request, capsys=capsys)


def make_sync(
    kube_apiserver: KubeServer,
    kube: KubeCluster,
    config_repo: ConfigRepo,
    tmp_path: Path,
    *,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> Sync:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[-40:].strip("-")
    ns = f"t-{name}"[:63].rstrip("-")
    kube.apply(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def argv(*extra: str) -> list[str]:
        return [
            "--git-url", config_repo.url, "--branch", "main",
            "--kubeconfig", str(kube_apiserver.kubeconfig),
            "--name", name, "--default-namespace", ns, "--inventory-namespace", ns,
            "--cache-dir", str(tmp_path / "cache"), *extra,
        ]  # fmt: skip

    def run(*extra: str, output: str = "json") -> tuple[int, dict[str, Any]]:
        code = main(argv("--once", "--output", output, *extra))
        out = capsys.readouterr().out
        return code, (json.loads(out) if output == "json" else {"text": out})

    return Sync(name, ns, config_repo, kube, kube_apiserver, run, argv)
