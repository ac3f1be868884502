"""Two replicas of ``automator run --leader-elect`` (real processes, the Lease on the envtest
kube-apiserver): one opens the pull request; the standby runs no cycle and passes webhooks on to
the holder (where its Lease says it takes them), or answers 503 so registries retry; killed, the
leader's Lease expires, the standby takes over at once with a full cycle and updates the same
pull request, never opening a second one."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
from collections.abc import Callable
from pathlib import Path

from automator.sync.cluster import KubeCluster
from tests.e2e.test_run_forges import forge, seeded_remote
from tests.e2e.test_run_service import SECRET, Service, http, start  # noqa: F401 (start: the fixture)
from tests.servers.kube import NS, KubeServer
from tests.servers.registry import RunningRegistry, free_port


def leader(svc: Service) -> dict[str, object]:
    found: dict[str, object] = svc.status()["leader"]
    return found


def test_one_replica_works_and_a_standby_takes_over(
    registry: RunningRegistry,
    start: Callable[..., Service],  # noqa: F811 (the fixture, imported)
    kube_apiserver: KubeServer,
    kube: KubeCluster,
    tmp_path: Path,
) -> None:
    image, remote = seeded_remote(registry, tmp_path, "leader/app", ["1.0.0", "1.1.0"])
    ns = "automator-leader-e2e"
    kube.apply(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def lease(name: str, port: int) -> list[str]:
        return [
            "--lease-advertise", "127.0.0.1", "--state-dir", str(tmp_path / f"state-{name}"),
            "--leader-elect", "--lease-namespace", ns, "--lease-duration", "3s", "--lease-identity", name,
            "--lease-kubeconfig", str(kube_apiserver.kubeconfig), "--cache-dir", str(tmp_path / f"cache-{name}"),
            "--interval", "1h",
        ]  # fmt: skip

    with forge("github", remote) as f:
        port_a, port_b = free_port(), free_port()
        a = start(remote, f, port_a, *lease("replica-a", port_a))
        a.wait(lambda: leader(a)["held"] is True, "a to hold the lease")
        a.wait(lambda: a.status()["lastCycle"] and a.status()["lastCycle"]["finished"], "a's first cycle")
        [(number, _, title)] = f.prs()
        assert "1.1.0" in title
        b = start(remote, f, port_b, *lease("replica-b", port_b))
        b.wait(lambda: leader(b)["holder"] == "replica-a", "b to see a holding the lease")
        assert leader(b)["held"] is False and b.status()["lastCycle"] is None  # a standby runs no cycle
        payload = json.dumps({"image": f"{image}:1.1.0"}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
        cycles = a.cycles()
        code, text = http("POST", f"{b.base}/hooks/generic", payload, {"X-Signature-256": signature})
        assert code == 202 and "cycle queued" in text  # passed on to the holder, which queued it
        a.wait(lambda: a.cycles() > cycles, "the holder's cycle for the passed-on delivery")
        assert b.status()["lastCycle"] is None  # still none on the standby
        # a delivery a standby already passed on is never passed on again: no loops
        forwarded = {"X-Signature-256": signature, "X-Automator-Forwarded": "replica-c"}
        code, text = http("POST", f"{b.base}/hooks/generic", payload, forwarded)
        assert code == 503 and "replica-a" in text  # the registry retries
        # the dashboard: a standby has no current state of its own, so it serves the holder's pages
        code, page = http("GET", f"{b.base}/")
        assert code == 200 and "apps:app" in page and "last cycle: ok" in page, (code, page[:300])
        code, page = http("GET", f"{b.base}/policies/apps%3Aapp")
        assert code == 200 and "<h2>timeline</h2>" in page
        assert http("GET", f"{b.base}/", headers={"X-Automator-Forwarded": "replica-c"})[0] == 503  # no loops

        a.proc.send_signal(signal.SIGKILL)  # no release: b waits for the Lease to expire
        a.proc.wait(timeout=30)
        registry.push("leader/app", "1.2.0")
        b.wait(lambda: leader(b)["held"] is True, "b to take over the lease")
        b.wait(lambda: "1.2.0" in f.prs()[0][2], "b to move the pull request to 1.2.0")
        assert [n for n, _, _ in f.prs()] == [number]  # the same pull request, never a second one
        b.proc.send_signal(signal.SIGTERM)
        assert b.proc.wait(timeout=30) == 0
    lease_obj = kube.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/automator")[1]
    assert lease_obj["spec"].get("holderIdentity") is None  # released on a clean stop
