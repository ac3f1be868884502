"""Flux ImageRepository fields the registry edge acts on, against real registries on loopback.

``provider`` (a cloud's docker credential helper), ``certSecretRef`` (CA and client certificate),
``timeout`` (one repository's scan) and ``suspend``: each policy's field acts on that policy's
repository only, and a policy whose field fails never takes another down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automator.errors import RegistryAuthError, RegistryTLSError, RegistryUnavailable
from automator.plan import make_plan
from automator.policy.loader import PolicySet, load_policies
from automator.refs import parse_reference
from automator.registry import Cycle, RegistryConfig, RetryPolicy, Timeouts
from automator.registry.access import RegistryAccess, open_registry
from automator.scan import ScanResult, scan_all
from tests.servers.faults import BlackholeServer, FaultServer
from tests.servers.registry import REGISTRY_BINARY, RunningRegistry, free_port
from tests.servers.registry_pki import Issued, LocalCA

FAST = RegistryConfig(retry=RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02))
GUARD = 60.0  # a test that hangs past this is broken, whatever the machine's speed


def unique(prefix: str) -> str:
    return f"fields/{prefix}-{uuid.uuid4().hex[:8]}"


def flux(root: Path, name: str, image: str, repo_spec: str = "", policy_spec: str = "") -> None:
    """An ImageRepository + ImagePolicy (v1) pair named ``name`` in ``<root>/<name>.yaml``."""
    (root / f"{name}.yaml").write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
        f"metadata:\n  name: {name}\n  namespace: flux-system\n"
        f"spec:\n  image: {image}\n  interval: 5m\n{repo_spec}"
        "---\n"
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\n"
        f"metadata:\n  name: {name}\n  namespace: flux-system\n"
        f"spec:\n  imageRepositoryRef:\n    name: {name}\n{policy_spec}  policy:\n    semver:\n      range: '>=1.0.0'\n"
    )


def load(root: Path) -> PolicySet:
    policies = load_policies(root)
    assert policies.errors == ()
    return policies


async def scan(root: Path, access: RegistryAccess) -> dict[str, ScanResult]:
    policies = load(root)
    registry, failed = open_registry(policies.policies, access)
    async with registry, asyncio.timeout(GUARD):
        results = await scan_all(registry, policies.policies, failed=failed)
    return {r.policy.short_name: r for r in results}


# --- provider: the cloud's docker credential helper ----------------------------------------------


def install_helper(bin_dir: Path, binary: str, answers: dict[str, tuple[str, str]], log: Path) -> None:
    """A docker credential helper: ``get`` reads a server URL on stdin, prints Username/Secret JSON."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / binary
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "server = sys.stdin.read().strip()\n"
        f"with open({str(log)!r}, 'a') as out:\n"
        "    out.write(sys.argv[1] + ' ' + server + '\\n')\n"
        f"answers = {json.dumps({k: {'Username': u, 'Secret': s} for k, (u, s) in answers.items()})}\n"
        "if sys.argv[1] != 'get' or server not in answers:\n"
        "    print('credentials not found in native keychain')\n"
        "    sys.exit(1)\n"
        "print(json.dumps(dict(answers[server], ServerURL=server)))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


async def test_provider_logs_in_through_the_clouds_helper_for_its_repository_only(
    registry_htpasswd: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert registry_htpasswd.auth is not None
    user, password = registry_htpasswd.auth
    log = tmp_path / "helper.log"
    install_helper(tmp_path / "bin", "docker-credential-ecr-login", {registry_htpasswd.host: (user, password)}, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    cloud, plain = unique("ecr"), unique("plain")
    registry_htpasswd.push(cloud, "1.2.0")
    registry_htpasswd.push(plain, "1.0.0")
    root = tmp_path / "repo"
    root.mkdir()
    # the helper's login wins over a secretRef, as in Flux (this one's password is wrong)
    stale = tmp_path / "creds" / "stale"
    stale.mkdir(parents=True)
    auth = {"auths": {registry_htpasswd.host: {"username": user, "password": "stale-password"}}}
    (stale / ".dockerconfigjson").write_text(json.dumps(auth))
    flux(
        root, "cloud", registry_htpasswd.image(cloud), "  provider: aws\n  secretRef: {name: stale}\n  insecure: true\n"
    )
    flux(root, "plain", registry_htpasswd.image(plain), "  insecure: true\n")

    results = await scan(root, RegistryAccess(credentials_dir=tmp_path / "creds", base=FAST))

    assert results["cloud"].ok, results["cloud"].error
    assert results["cloud"].choice is not None and results["cloud"].choice.tag == "1.2.0"
    # the generic policy on the same registry is not lent the cloud login
    assert isinstance(results["plain"].error, RegistryAuthError)
    assert log.read_text().splitlines() == [f"get {registry_htpasswd.host}"]
    assert password not in str(results["plain"].error)


async def test_provider_helper_that_has_no_login_leaves_the_policy_anonymous(
    registry_htpasswd: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "helper.log"
    install_helper(tmp_path / "bin", "docker-credential-gcr", {}, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    repo = unique("gcr")
    registry_htpasswd.push(repo, "1.0.0")
    root = tmp_path / "repo"
    root.mkdir()
    flux(root, "cloud", registry_htpasswd.image(repo), "  provider: gcp\n  insecure: true\n")
    results = await scan(root, RegistryAccess(base=FAST))
    assert isinstance(results["cloud"].error, RegistryAuthError)
    assert log.read_text().splitlines() == [f"get {registry_htpasswd.host}"]


# --- certSecretRef: CA and client certificate ------------------------------------------------------


@contextlib.contextmanager
def mtls_registry(
    workdir: Path, root: Path, *, server: Issued, server_ca: LocalCA, client_ca: LocalCA, probe: Issued
) -> Iterator[RunningRegistry]:
    """docker-registry over HTTPS that refuses any client without a certificate from ``client_ca``."""
    if not Path(REGISTRY_BINARY).exists():
        pytest.skip(f"{REGISTRY_BINARY} is not installed (apt-get install docker-registry)")
    workdir.mkdir(parents=True)
    port = free_port()
    config: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(root)}, "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {
            "addr": f"127.0.0.1:{port}",
            "secret": "automator-test-secret",
            "tls": {
                "certificate": str(server.cert_path),
                "key": str(server.key_path),
                "clientcas": [str(client_ca.cert_path)],
            },
        },
    }
    (workdir / "config.yml").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    with (workdir / "registry.log").open("wb") as out:
        command = [REGISTRY_BINARY, "serve", str(workdir / "config.yml")]
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    reg = RunningRegistry(f"https://127.0.0.1:{port}", root, process, workdir / "registry.log")
    context = ssl.create_default_context(cafile=str(server_ca.cert_path))
    context.load_cert_chain(str(probe.cert_path), str(probe.key_path))
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, reg.log_tail()
            try:
                with urllib.request.urlopen(f"{reg.base_url}/v2/", timeout=1, context=context):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"mTLS registry not ready:\n{reg.log_tail()}"
                time.sleep(0.02)  # poll interval, bounded by the deadline
        yield reg
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningRegistry, Path, str]]:
    """``(registry, credentials_dir, repository)``: a registry wanting client certificates, tag 1.4.0
    pushed, and mounted Secrets: ``registry-tls`` (ca.crt, tls.crt, tls.key), ``legacy-tls``
    (caFile, certFile, keyFile), ``ca-only`` (ca.crt)."""
    from tests.servers.registry import run_registry

    base = tmp_path_factory.mktemp("mtls")
    server_ca, client_ca = LocalCA.create(base / "server-ca"), LocalCA.create(base / "client-ca", "client CA")
    server = server_ca.issue("mtls-registry", ips=("127.0.0.1",), server=True)
    client = client_ca.issue("automator", client=True)
    repo = unique("mtls")
    with run_registry(base / "seeder", root=base / "storage") as seeder:
        seeder.push(repo, "1.4.0")
    creds = base / "creds"
    files = {"ca.crt": server_ca.cert_path, "tls.crt": client.cert_path, "tls.key": client.key_path}
    legacy = {"caFile": "ca.crt", "certFile": "tls.crt", "keyFile": "tls.key"}
    secrets = {
        "registry-tls": files,
        "legacy-tls": {k: files[v] for k, v in legacy.items()},
        "ca-only": {"ca.crt": files["ca.crt"]},
    }
    for name, keys in secrets.items():
        (creds / name).mkdir(parents=True)
        for key, source in keys.items():
            shutil.copy(source, creds / name / key)
    with mtls_registry(
        base / "registry", base / "storage", server=server, server_ca=server_ca, client_ca=client_ca, probe=client
    ) as reg:
        yield reg, creds, repo


@pytest.mark.parametrize("secret", ["registry-tls", "legacy-tls"])
async def test_cert_secret_trusts_its_ca_and_presents_its_client_certificate(
    mtls: tuple[RunningRegistry, Path, str], tmp_path: Path, secret: str
) -> None:
    reg, creds, repo = mtls
    flux(tmp_path, "tls", reg.image(repo), f"  certSecretRef:\n    name: {secret}\n")
    flux(tmp_path, "plain", reg.image(repo + "-other"))  # same registry, no certSecretRef
    flux(tmp_path, "noclient", reg.image(repo + "-third"), "  certSecretRef:\n    name: ca-only\n")
    results = await scan(tmp_path, RegistryAccess(credentials_dir=creds, base=FAST))
    assert results["tls"].ok, results["tls"].error
    assert results["tls"].choice is not None and results["tls"].choice.tag == "1.4.0"
    # the CA and the client certificate are that policy's alone
    assert isinstance(results["plain"].error, RegistryTLSError)
    # trusting the CA is not enough for a registry that wants a client certificate; TLS 1.3 refuses
    # after the handshake, so the client reads the server's alert or finds the connection closed
    error = results["noclient"].error
    assert isinstance(error, RegistryTLSError | RegistryUnavailable)
    if isinstance(error, RegistryTLSError):
        assert "client certificate" in str(error) and "spec.certSecretRef" in str(error)


# --- timeout: the bound of one repository's scan ---------------------------------------------------

PATIENT = RegistryConfig(
    timeouts=Timeouts(connect=300.0, read=300.0, write=300.0, pool=300.0, request=300.0),
    retry=RetryPolicy(retries=0, max_elapsed=None),
)


@pytest.mark.parametrize("hang", ["blackhole", "trickle"])
async def test_timeout_ends_a_hung_repository_scan_and_only_that_one(
    registry: RunningRegistry, fault_servers: tuple[FaultServer, FaultServer], tmp_path: Path, hang: str
) -> None:
    """The client's own timeouts are 300 s here: only ``spec.timeout`` can end the scan sooner."""
    fine = unique("fine")
    registry.push(fine, "1.1.0")
    with BlackholeServer() as hole:
        host = hole.host if hang == "blackhole" else fault_servers[1].host
        flux(tmp_path, "hung", f"{host}/{hang}/app", "  timeout: 1s\n  insecure: true\n")
        flux(tmp_path, "fine", registry.image(fine), "  timeout: 1m\n  insecure: true\n")
        results = await scan(tmp_path, RegistryAccess(base=PATIENT))
    assert results["fine"].choice is not None and results["fine"].choice.tag == "1.1.0"
    error = results["hung"].error
    assert isinstance(error, RegistryUnavailable)  # transient: tried again next cycle
    assert "spec.timeout" in str(error) and "1s" in str(error)
    assert str(results["hung"].policy.source) in str(error)


async def test_timeout_bounds_listing_and_manifests_together(registry: RunningRegistry, tmp_path: Path) -> None:
    """Measured on the cycle's clock from the repository's first request: a digest asked after it
    passed is not sent."""
    repo = unique("clock")
    registry.push(repo, "1.0.0")
    repo_spec, policy_spec = "  timeout: 30s\n  insecure: true\n", "  digestReflectionPolicy: Always\n  interval: 5m\n"
    flux(tmp_path, "pinned", registry.image(repo), repo_spec, policy_spec)
    policy = load(tmp_path).policies[0]
    now = [1000.0]
    registry_, failed = open_registry([policy], RegistryAccess(base=FAST), cycle=Cycle(clock=lambda: now[0]))
    assert failed == {}
    async with registry_:
        image = parse_reference(registry.image(repo))
        assert (await registry_.list_tags(image)).tags == ("1.0.0",)
        now[0] += 29.0
        await registry_.manifest(image, "1.0.0")  # still within the 30 s
        sent = registry_.requests
        now[0] += 1.0
        with pytest.raises(RegistryUnavailable, match=r"spec\.timeout of 30s") as info:
            await registry_.manifest(image, "1.0.0")
        assert registry_.requests == sent  # not sent
    assert str(policy.source) in str(info.value)


# --- suspend ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["repository", "policy"])
async def test_suspended_policy_is_not_scanned_and_its_markers_are_left_alone(
    registry: RunningRegistry, tmp_path: Path, where: str
) -> None:
    repo, other = unique("suspended"), unique("active")
    registry.push(repo, "2.0.0")
    registry.push(other, "2.0.0")
    repo_spec = "  insecure: true\n" + ("  suspend: true\n" if where == "repository" else "")
    flux(tmp_path, "paused", registry.image(repo), repo_spec, "  suspend: true\n" if where == "policy" else "")
    flux(tmp_path, "active", registry.image(other), "  insecure: true\n")
    deploy = tmp_path / "deploy.yaml"
    text = (
        "containers:\n"
        f'  - image: {registry.image(repo)}:1.0.0 # {{"$imagepolicy": "flux-system:paused"}}\n'
        f'  - image: {registry.image(other)}:1.0.0 # {{"$imagepolicy": "flux-system:active"}}\n'
    )
    deploy.write_text(text)
    policies = load(tmp_path)
    client, failed = open_registry(policies.policies, RegistryAccess(base=FAST))
    async with client, asyncio.timeout(GUARD):
        plan = await make_plan(tmp_path, policies, client, failed=failed, write=True)
    assert [r.policy.short_name for r in plan.scan] == ["active"]
    assert {c.policy for c in plan.update.changes} == {"flux-system:active"}
    lines = deploy.read_text().splitlines()
    assert lines[1] == text.splitlines()[1]  # the suspended policy's marker: untouched
    assert lines[2].endswith(':2.0.0 # {"$imagepolicy": "flux-system:active"}')
