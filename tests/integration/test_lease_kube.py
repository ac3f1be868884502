"""Leader election against the real kube-apiserver: a Lease taken, held, released and taken over;
the Lease RBAC a ServiceAccount needs (minted with the TokenRequest API); and a partition,
through a TCP proxy the test cuts, that never leaves two holders at once.

Timings are short (a 3 s Lease) but nothing asserts a duration: the tests wait for what happens,
with deadlines, and check the order of events and that two replicas never hold it together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from automator.errors import AutomatorError
from automator.sync.cluster import KubeCluster, Resource
from automator.sync.lease import KubeLeases, LeaseConfig, LeaseHolder
from tests.servers.kube import NS, KubeServer, service_account_kubeconfig
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
    name = f"lease-{abs(hash(request.node.name)) % 10**8}"
    kube.apply(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
def holders(kube_apiserver: KubeServer) -> Iterator[Callable[..., LeaseHolder]]:
    made: list[tuple[LeaseHolder, KubeCluster]] = []

    def make(namespace: str, identity: str, kubeconfig: Path | None = None) -> LeaseHolder:
        config = LeaseConfig(namespace, "automator", identity, duration=3.0, renew_deadline=2.0, retry=0.3)
        cluster = KubeCluster.connect(str(kubeconfig or kube_apiserver.kubeconfig), pool_size=1, timeout=2.0)
        holder = LeaseHolder(KubeLeases(cluster), config)
        made.append((holder, cluster))
        return holder

    yield make
    for holder, cluster in made:
        holder.stop()
        cluster.close()


def test_one_replica_holds_the_lease_and_another_takes_it_when_released(
    holders: Callable[..., LeaseHolder], namespace: str, kube: KubeCluster
) -> None:
    a, b = holders(namespace, "replica-a"), holders(namespace, "replica-b")
    a.start()
    wait_until(a.held, "a to hold the lease")
    b.start()
    wait_until(lambda: b.holder == "replica-a", "b to see a holding it")
    assert not b.held()
    lease = kube.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/automator")[1]
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseDurationSeconds"]) == ("replica-a", 3)
    a.stop()  # released on shutdown: b need not wait for it to expire
    wait_until(b.held, "b to take the released lease")
    assert not a.held()


def test_a_dead_replicas_lease_is_taken_over(holders: Callable[..., LeaseHolder], namespace: str) -> None:
    a, b = holders(namespace, "replica-a"), holders(namespace, "replica-b")
    assert a.step()
    b.start()
    wait_until(lambda: b.holder == "replica-a", "b to see a holding it")
    # a dies without releasing: nothing renews; b takes over once the record stood still for 3 s
    wait_until(b.held, "b to take over the expired lease")


def test_the_lease_rbac_is_all_a_service_account_needs(
    holders: Callable[..., LeaseHolder], namespace: str, kube: KubeCluster, kube_apiserver: KubeServer, tmp_path: Path
) -> None:
    sa = Resource("", "v1", "ServiceAccount", "serviceaccounts", True)
    kube.apply(sa, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sync", "namespace": namespace}})
    kubeconfig = service_account_kubeconfig(kube_apiserver, namespace, "sync", tmp_path / "sa.kubeconfig")
    refused = holders(namespace, "replica-a", kubeconfig)
    with pytest.raises(AutomatorError, match="403"):
        refused.step()
    role = Resource("rbac.authorization.k8s.io", "v1", "Role", "roles", True)
    binding = Resource("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True)
    meta = {"name": "leases", "namespace": namespace}
    rules = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]
    kube.apply(role, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta, "rules": rules})
    kube.apply(
        binding,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "leases"},
            "subjects": [{"kind": "ServiceAccount", "name": "sync", "namespace": namespace}],
        },
    )  # fmt: skip
    wait_until(lambda: _step(refused), "the bound ServiceAccount to take the lease")


def _step(holder: LeaseHolder) -> bool:
    try:
        return holder.step()
    except AutomatorError:
        return False  # the RoleBinding not in force yet


def test_a_partitioned_holder_stops_before_another_starts(
    holders: Callable[..., LeaseHolder], namespace: str, kube_apiserver: KubeServer, tmp_path: Path
) -> None:
    url = urlsplit(kube_apiserver.url)
    with TcpProxy(url.hostname or "127.0.0.1", url.port or 443) as proxy:
        behind = tmp_path / "behind-proxy.kubeconfig"
        behind.write_text(
            kube_apiserver.kubeconfig.read_text().replace(kube_apiserver.url, f"https://127.0.0.1:{proxy.port}")
        )
        a, b = holders(namespace, "replica-a", behind), holders(namespace, "replica-b")
        a.start()
        wait_until(a.held, "a to hold the lease")
        b.start()
        wait_until(lambda: b.holder == "replica-a", "b to see a holding it")
        seen: list[tuple[bool, bool]] = []
        proxy.cut()  # a can no longer reach the API server; b still can
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and not b.held():
            seen.append((a.held(), b.held()))
            time.sleep(0.02)
        seen.append((a.held(), b.held()))
        assert b.held(), "b never took over"
        assert not any(ha and hb for ha, hb in seen), "two replicas held the lease at once"
        assert not a.held()
        proxy.mend()  # a is back: it sees b holding it and stays a standby
        wait_until(lambda: a.holder == "replica-b", "a to see b holding it")
        assert not a.held() and b.held()
