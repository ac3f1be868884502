"""Shards over Leases against the real kube-apiserver (``--shards N``): replicas share the
shards fairly, a replica that joins takes its share from the others, a dead replica's shards
are taken over once their Leases expire, one released on shutdown at once, and no shard ever
has two holders. Short Leases (3 s); nothing asserts a duration: the tests wait for what
happens, with deadlines, and check it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from automator.sync.cluster import KubeCluster
from automator.sync.lease import GROUP_LABEL, KubeLeases, LeaseConfig, ShardLeases
from tests.servers.kube import NS, KubeServer
from tests.servers.tcp_proxy import TcpProxy

DEADLINE = 60.0


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)  # poll interval, bounded by the deadline
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def namespace(kube: KubeCluster, request: pytest.FixtureRequest) -> str:
    name = f"shards-{abs(hash(request.node.name)) % 10**8}"
    kube.apply(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
def replicas(kube_apiserver: KubeServer) -> Iterator[Callable[..., ShardLeases]]:
    made: list[tuple[ShardLeases, KubeCluster]] = []

    def make(namespace: str, identity: str, count: int = 3, kubeconfig: Path | None = None) -> ShardLeases:
        config = LeaseConfig(namespace, "automator", identity, duration=3.0, renew_deadline=2.0, retry=0.3)
        cluster = KubeCluster.connect(str(kubeconfig or kube_apiserver.kubeconfig), pool_size=1, timeout=2.0)
        shards = ShardLeases(KubeLeases(cluster), config, count)
        made.append((shards, cluster))
        return shards

    yield make
    for shards, cluster in made:
        shards.stop()
        cluster.close()


class Overlaps:
    """Watches a set of replicas on a thread: records any moment two held one shard."""

    def __init__(self, replicas: list[ShardLeases]) -> None:
        self.replicas, self.seen = replicas, []  # type: list[ShardLeases], list[tuple[int, ...]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            held = [s for r in self.replicas for s in r.shards()]
            if len(held) != len(set(held)):
                self.seen.append(tuple(sorted(held)))
            time.sleep(0.01)

    def stop(self) -> list[tuple[int, ...]]:
        self._stop.set()
        self._thread.join()
        return self.seen


def covered(replicas: list[ShardLeases], count: int) -> bool:
    held = [s for r in replicas for s in r.shards()]
    return sorted(held) == list(range(count))


def test_three_replicas_share_three_shards_one_each(
    replicas: Callable[..., ShardLeases], namespace: str, kube: KubeCluster
) -> None:
    group = [replicas(namespace, f"replica-{x}") for x in "abc"]
    watch = Overlaps(group)
    for r in group:
        r.start()
    wait_until(lambda: covered(group, 3) and all(len(r.shards()) == 1 for r in group), "one shard each")
    assert watch.stop() == []
    status, data = kube.request(
        "GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases?labelSelector={GROUP_LABEL}%3Dautomator"
    )
    assert status == 200
    names = sorted(i["metadata"]["name"] for i in data["items"])
    assert [n.rsplit("-", 1)[0] for n in names if "-member-" in n] == [f"automator-member-replica-{x}" for x in "abc"]
    assert [n for n in names if "-shard-" in n] == ["automator-shard-0", "automator-shard-1", "automator-shard-2"]


def test_one_replica_holds_every_shard_until_another_joins(
    replicas: Callable[..., ShardLeases], namespace: str
) -> None:
    a = replicas(namespace, "replica-a")
    a.start()
    wait_until(lambda: a.shards() == {0, 1, 2}, "a to hold all three")
    b = replicas(namespace, "replica-b")
    watch = Overlaps([a, b])
    b.start()
    # a fair share of 3 over 2 is 2: a gives one up, b takes it
    wait_until(lambda: covered([a, b], 3) and len(b.shards()) == 1 and len(a.shards()) == 2, "b to take its share")
    assert watch.stop() == []


def test_a_dead_replicas_shards_are_taken_over_and_a_stopped_one_hands_over(
    replicas: Callable[..., ShardLeases], namespace: str
) -> None:
    a, b, c = (replicas(namespace, f"replica-{x}") for x in "abc")
    for r in (a, b, c):
        r.start()
    wait_until(lambda: covered([a, b, c], 3) and all(r.shards() for r in (a, b, c)), "one shard each")
    watch = Overlaps([a, b, c])
    lost = a.shards()
    a._stop.set()  # dies: no release, no more renewals (its thread ends)
    wait_until(lambda: not a.shards(), "a to stop calling its shard its own (renew deadline)")
    wait_until(lambda: covered([b, c], 3), "b and c to take a's shard over once its Lease expires")
    assert lost <= b.shards() | c.shards()
    moved = c.shards()
    c.stop()  # released: b takes c's shards without waiting for them to expire
    wait_until(lambda: b.shards() == {0, 1, 2}, "b to hold every shard")
    assert moved <= b.shards()
    assert watch.stop() == []


def test_a_partitioned_replica_gives_its_shards_up_before_others_take_them(
    replicas: Callable[..., ShardLeases], namespace: str, kube_apiserver: KubeServer, tmp_path: Path
) -> None:
    url = urlsplit(kube_apiserver.url)
    with TcpProxy(url.hostname or "127.0.0.1", url.port or 443) as proxy:
        behind = tmp_path / "behind-proxy.kubeconfig"
        behind.write_text(
            kube_apiserver.kubeconfig.read_text().replace(kube_apiserver.url, f"https://127.0.0.1:{proxy.port}")
        )
        a = replicas(namespace, "replica-a", kubeconfig=behind)
        b, c = replicas(namespace, "replica-b"), replicas(namespace, "replica-c")
        for r in (a, b, c):
            r.start()
        wait_until(lambda: covered([a, b, c], 3) and all(r.shards() for r in (a, b, c)), "one shard each")
        watch = Overlaps([a, b, c])
        lost = a.shards()
        proxy.cut()  # a can no longer reach the API server; b and c still can
        wait_until(lambda: covered([b, c], 3), "b and c to take a's shard over")
        assert not a.shards()
        assert lost <= b.shards() | c.shards()
        proxy.mend()  # a is back: it sees its shard held by another, and takes a fair share again
        wait_until(lambda: covered([a, b, c], 3) and all(r.shards() for r in (a, b, c)), "one shard each again")
        assert watch.stop() == []
