"""Fixtures that start Debian's docker-registry (distribution 2.8) on loopback.

Variants (session-scoped; tests use their own repository names):

* ``registry``           no auth, plain HTTP
* ``registry_htpasswd``  htpasswd Basic auth (user ``alice`` / ``wonderland``)
* ``registry_token``     ``auth: token`` against :class:`TokenServer`, whose JWTs are signed
                         by a key certified by a test CA the registry trusts (``rootcertbundle``)
* ``registry_tls``       no auth, HTTPS with a certificate from the test CA (``ca_file`` to trust it)

``paging_server`` (:mod:`tests.servers.paging`) and ``fault_servers``
(:mod:`tests.servers.faults`) are small registries of our own for paging and faults.

``registry_launcher`` starts a fresh registry over a given storage directory (for
seeding the storage before the registry starts).  Each yields a :class:`RunningRegistry`;
``RunningRegistry.push(...)`` pushes a real image with :func:`push_image`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers.faults import fault_servers
from tests.servers.paging import paging_server
from tests.servers.registry_pki import Issued, LocalCA
from tests.servers.registry_push import PushedImage, push_image
from tests.servers.token_server import TokenServer

__all__ = ["fault_servers", "paging_server"]  # fixtures of the sibling servers, registered through this plugin

REGISTRY_BINARY = os.environ.get("AUTOMATOR_TEST_REGISTRY", "/usr/bin/docker-registry")
HTPASSWD_USERS = {"alice": "wonderland", "bob": "builder"}
READY_DEADLINE = 30.0


@dataclass
class RunningRegistry:
    """A registry process on loopback and how to reach it."""

    base_url: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    auth: tuple[str, str] | None = None
    token_server: TokenServer | None = None
    ca_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: the registry part of image references."""
        return self.base_url.split("://", 1)[1]

    @property
    def insecure(self) -> bool:
        return self.base_url.startswith("http://")

    @property
    def storage(self) -> Path:
        """distribution's ``docker/registry/v2`` directory inside the storage root."""
        return self.root / "docker" / "registry" / "v2"

    def image(self, repo: str, tag: str | None = None) -> str:
        """An image reference string for ``repo[:tag]`` on this registry."""
        return f"{self.host}/{repo}" + (f":{tag}" if tag else "")

    def push(self, repo: str, tag: str, **kwargs: Any) -> PushedImage:
        """Push a real image (see :func:`push_image`), with this registry's credentials."""
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("ca_file", self.ca_file)
        return push_image(self.base_url, repo, tag, **kwargs)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def free_port() -> int:
    """A loopback port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(reg: RunningRegistry, deadline: float) -> None:
    context = ssl.create_default_context(cafile=reg.ca_file) if reg.ca_file else None
    last: object = None
    while time.monotonic() < deadline:
        if reg.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {reg.process.returncode}:\n{reg.log_tail()}")
        try:
            with urllib.request.urlopen(f"{reg.base_url}/v2/", timeout=1, context=context) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as err:
            if err.code == 401:
                return
            last = err
        except OSError as err:
            last = err
        time.sleep(0.02)  # poll interval, bounded by the deadline
    raise RuntimeError(f"docker-registry not ready within {READY_DEADLINE}s ({last}):\n{reg.log_tail()}")


@contextlib.contextmanager
def run_registry(
    workdir: Path,
    *,
    root: Path | None = None,
    htpasswd: dict[str, str] | None = None,
    token: TokenServer | None = None,
    ca: LocalCA | None = None,
    tls: Issued | None = None,
    notify: tuple[str, dict[str, str]] | None = None,
) -> Iterator[RunningRegistry]:
    """Start docker-registry with a generated config; stop it on exit.

    ``notify=(url, headers)`` makes the registry POST its push notifications there.
    """
    if not Path(REGISTRY_BINARY).exists():
        pytest.skip(f"{REGISTRY_BINARY} is not installed (apt-get install docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    root = root or workdir / "storage"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    http: dict[str, Any] = {"addr": f"127.0.0.1:{port}", "secret": "automator-test-secret"}
    if tls is not None:
        http["tls"] = {"certificate": str(tls.cert_path), "key": str(tls.key_path)}
    config: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    auth: tuple[str, str] | None = None
    if htpasswd is not None:
        lines = []
        for user, password in htpasswd.items():
            out = subprocess.run(
                ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
            ).stdout.strip()
            lines.append(out)
        (workdir / "htpasswd").write_text("\n".join(lines) + "\n")
        config["auth"] = {"htpasswd": {"realm": "automator-test", "path": str(workdir / "htpasswd")}}
        auth = next(iter(htpasswd.items()))
    if token is not None:
        assert ca is not None, "token auth needs the CA that certifies the token signer"
        config["auth"] = {
            "token": {
                "realm": token.url,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(ca.cert_path),
            }
        }
        auth = next(iter(token.users.items()))
    if notify is not None:
        url, headers = notify
        config["notifications"] = {
            "endpoints": [
                {
                    "name": "automator",
                    "url": url,
                    "headers": {k: [v] for k, v in headers.items()},
                    "timeout": "5s",
                    "threshold": 3,
                    "backoff": "1s",
                }
            ]
        }
    config_path = workdir / "config.yml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    scheme = "https" if tls is not None else "http"
    reg = RunningRegistry(
        base_url=f"{scheme}://127.0.0.1:{port}",
        root=root,
        process=process,
        log_path=log_path,
        auth=auth,
        token_server=token,
        ca_file=str(ca.cert_path) if ca is not None and tls is not None else None,
    )
    try:
        _wait_ready(reg, time.monotonic() + READY_DEADLINE)
        yield reg
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def registry_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    """The test CA: signs the token signer and the TLS registry's certificate."""
    return LocalCA.create(tmp_path_factory.mktemp("registry-ca"))


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """docker-registry without auth, plain HTTP on 127.0.0.1."""
    with run_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="session")
def registry_htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """docker-registry with htpasswd Basic auth; ``.auth`` is a valid (user, password)."""
    with run_registry(tmp_path_factory.mktemp("registry-htpasswd"), htpasswd=dict(HTPASSWD_USERS)) as reg:
        reg.extra["users"] = dict(HTPASSWD_USERS)
        yield reg


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory, registry_ca: LocalCA) -> Iterator[RunningRegistry]:
    """docker-registry with ``auth: token``; ``.token_server`` issues the JWTs (users, refresh tokens, log)."""
    signer = registry_ca.issue("token-signer")
    server = TokenServer(signer).start()
    try:
        with run_registry(tmp_path_factory.mktemp("registry-token"), token=server, ca=registry_ca) as reg:
            yield reg
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry_tls(tmp_path_factory: pytest.TempPathFactory, registry_ca: LocalCA) -> Iterator[RunningRegistry]:
    """docker-registry over HTTPS (HTTP/2 capable); ``.ca_file`` is the CA to trust."""
    cert = registry_ca.issue("registry-tls", ips=("127.0.0.1",), dns=("localhost",), server=True)
    with run_registry(tmp_path_factory.mktemp("registry-tls"), ca=registry_ca, tls=cert) as reg:
        yield reg


@pytest.fixture
def registry_launcher(tmp_path: Path) -> Iterator[Callable[..., RunningRegistry]]:
    """Start extra registries (e.g. over a pre-seeded storage root); all stop at test end."""
    counter = iter(range(1_000))
    with contextlib.ExitStack() as stack:

        def launch(root: Path | None = None, **kwargs: Any) -> RunningRegistry:
            workdir = tmp_path / f"registry-{next(counter)}"
            return stack.enter_context(run_registry(workdir, root=root, **kwargs))

        yield launch
