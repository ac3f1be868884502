"""Fixtures that start the envtest kube-apiserver + etcd on loopback.

``kube_apiserver`` (session scoped) starts etcd and kube-apiserver v1.20.2 from
``../shared/envtest`` with ports chosen at runtime, waits for ``/readyz`` with a deadline and
yields a :class:`KubeServer` whose ``kubeconfig`` file grants cluster-admin by token.
Missing assets are a failure, never a skip: the synchronizer's tests are meaningless without a
real control plane.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP = REPO_ROOT.parent / "shared" / "envtest" / "setup.sh"
READY_DEADLINE = 60.0


@dataclass(frozen=True)
class KubeServer:
    url: str
    token: str
    kubeconfig: Path
    workdir: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assets() -> Path:
    assets = os.environ.get("ENVTEST_ASSETS")
    if not assets:
        if not SETUP.is_file():
            pytest.fail(f"envtest assets missing: ENVTEST_ASSETS is unset and {SETUP} does not exist", pytrace=False)
        proc = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, check=False)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("export ENVTEST_ASSETS=")), "")
        if proc.returncode != 0 or not line:
            pytest.fail(f"{SETUP} failed (exit {proc.returncode}): {proc.stderr.strip()}", pytrace=False)
        assets = shlex.split(line.removeprefix("export ENVTEST_ASSETS="))[0]
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


@pytest.fixture
def private_kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeServer]:
    """A control plane of the test's own, for tests that may bring the API server down."""
    with start_apiserver(tmp_path_factory.mktemp("envtest-private")) as server:
        yield server


@contextlib.contextmanager
def start_apiserver(work: Path) -> Iterator[KubeServer]:
    assets = _assets()
    token = secrets.token_hex(16)
    (work / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n")
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
        yield KubeServer(url=url, token=token, kubeconfig=kubeconfig, workdir=work)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


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

    def _git(self, *args: str, cwd: Path | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd or self.work, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout.strip()

    def write(self, path: str, text: str) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def remove(self, path: str) -> None:
        self._git("rm", "-q", "-r", path)

    def commit(self, message: str = "change", *, sign_with: Path | None = None, branch: str = "main") -> str:
        """Commit everything and push; ``sign_with`` an SSH private key signs the commit."""
        self._git("add", "-A")
        args = ["commit", "-q", "--allow-empty", "-m", message]
        if sign_with is not None:
            args = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={sign_with}", *args, "-S"]
        self._git(*args)
        self._git("push", "-q", "--force", self.url, f"HEAD:refs/heads/{branch}")
        return self._git("rev-parse", "HEAD")


@pytest.fixture
def config_repo(tmp_path: Path) -> ConfigRepo:
    return ConfigRepo(tmp_path)
