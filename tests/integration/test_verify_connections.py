"""The requests a verifying scan adds ride the connections already open to the registry.

A policy with ``spec.verify`` asks, per chosen tag, a HEAD for its digest and a GET of its
``sha256-<hex>.sig`` manifest besides the tag listing. Each of those opening a connection of its
own costs a handshake per request (TCP, and TLS on an HTTPS registry speaking HTTP/1.1); here a
relay in front of Debian's docker-registry counts the connections accepted.
The client's lighter connection bookkeeping (automator.registry.client) is held to what httpx's
own does: a connection the registry closed is not used again, a host's connections stay within
``max_concurrency``, and a proxy named by the environment still carries every request.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from automator.policy import load_policies
from automator.refs import parse_reference
from automator.registry import RegistryClient, RegistryConfig, RegistrySettings, RetryPolicy, StaticCredentials
from automator.scan import scan_all
from automator.verify import Verifier
from tests.servers import cosign
from tests.servers.cosign import Key
from tests.servers.counting_proxy import CountingProxy as LoggingProxy
from tests.servers.registry import RunningRegistry
from tests.servers.registry_push import RegistryHTTP
from tests.servers.tcp_proxy import TcpProxy

FAST = RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02)


class _CountingSocket:
    """The relay's listening socket, counting the connections it accepts."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.accepted = 0

    def accept(self) -> tuple[socket.socket, Any]:
        pair = self._sock.accept()
        self.accepted += 1
        return pair

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class CountingProxy(TcpProxy):
    """A :class:`TcpProxy` that counts the TCP connections clients open through it."""

    def _accept(self) -> None:
        self._counter = _CountingSocket(self._server)
        self._server = self._counter  # type: ignore[assignment]
        super()._accept()

    @property
    def accepted(self) -> int:
        return self._counter.accepted


def proxied(registry: RunningRegistry) -> CountingProxy:
    host, port = registry.host.rsplit(":", 1)
    return CountingProxy(host, int(port))


def settings(host: str, **config: object) -> RegistrySettings:
    return RegistrySettings(registries={host: RegistryConfig(insecure=True, retry=FAST, **config)})  # type: ignore[arg-type]


async def test_manifest_heads_reuse_one_connection(registry: RunningRegistry) -> None:
    repo = f"verify/heads-{uuid.uuid4().hex[:8]}"
    pushed = {tag: registry.push(repo, tag).digest for tag in ("1.0.0", "1.1.0", "1.2.0")}
    with proxied(registry) as proxy:
        host = f"127.0.0.1:{proxy.port}"
        image = parse_reference(f"{host}/{repo}")
        async with RegistryClient(settings(host), StaticCredentials({})) as client:
            for _ in range(2):
                for tag, digest in pushed.items():
                    assert (await client.manifest(image, tag)).digest == digest
            assert client.requests == 7  # the /v2/ ping and six HEADs, one after another
        assert proxy.accepted == 1


async def test_a_verifying_scan_opens_no_connection_per_request(registry: RunningRegistry, tmp_path: Path) -> None:
    key = Key.generate()
    http = RegistryHTTP(registry.base_url)
    with proxied(registry) as proxy:
        host = f"127.0.0.1:{proxy.port}"
        docs = []
        for i in range(3):
            repo = f"verify/conn{i}-{uuid.uuid4().hex[:8]}"
            registry.push(repo, "1.0.0")
            digest = registry.push(repo, "1.1.0").digest
            cosign.sign_legacy(http, repo, digest, key, reference=f"{host}/{repo}")  # as cosign names it
            docs.append(
                "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\n"
                f"metadata:\n  name: app-{i}\nspec:\n  image: {host}/{repo}\n  insecure: true\n"
                "  policy: {semver: {range: '*'}}\n  verify:\n    publicKeys: [{file: keys/k.pub}]\n"
            )
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / "k.pub").write_text(key.pem, encoding="utf-8")
        (tmp_path / "policies.yaml").write_text("---\n".join(docs), encoding="utf-8")
        policies = load_policies(tmp_path)
        assert policies.ok, [str(e) for e in policies.errors]
        async with RegistryClient(settings(host), StaticCredentials({})) as client:
            for policy in policies.policies:  # one at a time: each needs no more than the one connection
                (result,) = await scan_all(client, [policy], verifier=Verifier())
                assert result.choice is not None and result.choice.tag == "1.1.0", result.error
                assert result.choice.verified
            assert client.requests == 1 + 3 * 3  # the ping; per policy its listing, a HEAD, the .sig manifest
        assert proxy.accepted == 1


async def test_a_connection_the_registry_closed_is_not_used_again(registry: RunningRegistry) -> None:
    repo = f"verify/closed-{uuid.uuid4().hex[:8]}"
    digest = registry.push(repo, "1.0.0").digest
    with proxied(registry) as proxy:
        host = f"127.0.0.1:{proxy.port}"
        image = parse_reference(f"{host}/{repo}")
        async with RegistryClient(settings(host), StaticCredentials({})) as client:
            assert (await client.manifest(image, "1.0.0")).digest == digest
            proxy.cut()  # the registry's side of the idle keep-alive connection goes away
            proxy.mend()
            assert (await client.manifest(image, "1.0.0")).digest == digest
            assert client.requests == 3  # the ping and two HEADs: none sent into the closed connection, retried
        assert proxy.accepted == 2


async def test_connections_stay_within_max_concurrency_and_are_used_again(registry: RunningRegistry) -> None:
    repo = f"verify/bounded-{uuid.uuid4().hex[:8]}"
    digest = registry.push(repo, "1.0.0").digest
    with proxied(registry) as proxy:
        host = f"127.0.0.1:{proxy.port}"
        image = parse_reference(f"{host}/{repo}")
        async with RegistryClient(settings(host, max_concurrency=2), StaticCredentials({})) as client:
            for _ in range(3):
                found = await asyncio.gather(*(client.manifest(image, "1.0.0") for _ in range(12)))
                assert {info.digest for info in found} == {digest}
            assert client.requests == 1 + 36
        assert proxy.accepted == 2


async def test_a_proxy_from_the_environment_carries_every_request(
    registry: RunningRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = f"verify/proxied-{uuid.uuid4().hex[:8]}"
    digest = registry.push(repo, "1.0.0").digest
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    host, port = registry.host.rsplit(":", 1)
    with LoggingProxy(host, int(port)) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
        image = parse_reference(f"{registry.host}/{repo}")
        async with RegistryClient(settings(registry.host), StaticCredentials({})) as client:
            assert (await client.list_tags(image)).tags == ("1.0.0",)
            assert (await client.manifest(image, "1.0.0")).digest == digest
        agent = RegistryConfig().user_agent
        base = f"http://{registry.host}/v2/"
        assert proxy.log == [
            (agent, "GET", base),
            (agent, "GET", f"{base}{repo}/tags/list?n=1000"),
            (agent, "HEAD", f"{base}{repo}/manifests/1.0.0"),
        ]
