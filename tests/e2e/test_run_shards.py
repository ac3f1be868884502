"""Three replicas of ``automator run --leader-elect --shards 3`` (real processes, the Leases on the
envtest kube-apiserver, Debian's docker-registry behind a counting proxy of our own, the fake
GitHub): each holds one shard; every repository is listed by exactly one replica per cycle; a
webhook delivered to any replica reaches the shard's holder; killed, a replica's shard is taken
over once its Lease expires and its pull requests move on, none ever opened twice."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from automator.sync.cluster import KubeCluster
from tests.e2e.test_run_forges import GITHUB_TOKEN, ForgeUnderTest, bare_remote
from tests.e2e.test_run_service import SECRET, Service, http, start  # noqa: F401 (start: the fixture)
from tests.servers.counting_proxy import CountingProxy
from tests.servers.fake_github import github_server
from tests.servers.kube import NS, KubeServer
from tests.servers.registry import RunningRegistry, free_port

APPS = 12


def config_repo(tmp: Path, images: list[str]) -> Path:
    """A bare config repo: one policy and one Deployment per image."""
    top = tmp / "seed"
    (top / "apps").mkdir(parents=True)
    for i, image in enumerate(images):
        (top / "apps" / f"policy{i}.yaml").write_text(
            f"apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app{i}\n  namespace: apps\n"
            f"spec:\n  image: {image}\n  insecure: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
        )
        (top / "apps" / f"deploy{i}.yaml").write_text(
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app{i}\n  namespace: apps\n"
            "spec:\n  template:\n    spec:\n      containers:\n        - name: app\n"
            f'          image: {image}:1.0.0 # {{"$imagepolicy": "apps:app{i}"}}\n'
        )
    return bare_remote(top, tmp)


def shards_of(svc: Service) -> set[int]:
    leader: dict[str, Any] = svc.status()["leader"]
    return {s["shard"] for s in leader["shards"] if s["held"]}


def test_three_replicas_split_the_work_by_shard(
    registry: RunningRegistry,
    start: Callable[..., Service],  # noqa: F811 (the fixture, imported)
    kube_apiserver: KubeServer,
    kube: KubeCluster,
    tmp_path: Path,
) -> None:
    ns = "automator-shards-e2e"
    kube.apply(NS, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    host, _, port = registry.host.partition(":")
    with CountingProxy(host, int(port)) as proxy, github_server() as gh:
        names = [f"shards/app{i}" for i in range(APPS)]
        for name in names:
            for tag in ("1.0.0", "1.1.0"):
                registry.push(name, tag)
        remote = config_repo(tmp_path, [f"{proxy.host}/{name}" for name in names])
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        repo = gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
        f = ForgeUnderTest(
            ["--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app"],
            {"FORGE_TOKEN": GITHUB_TOKEN},
            gh.writes,
            lambda: [(n, p.state, p.title) for n, p in sorted(repo.pulls.items())],
            lambda n: None,
            lambda n: None,
            lambda n: "",
        )

        def replica(name: str) -> Service:
            port = free_port()
            return start(
                remote, f, port,
                "--lease-advertise", "127.0.0.1", "--leader-elect", "--shards", "3",
                "--lease-namespace", ns, "--lease-duration", "3s", "--lease-identity", name,
                "--lease-kubeconfig", str(kube_apiserver.kubeconfig),
                "--cache-dir", str(tmp_path / f"cache-{name}"), "--interval", "2s",
            )  # fmt: skip

        a, b, c = (replica(f"replica-{x}") for x in "abc")
        group = {"replica-a": a, "replica-b": b, "replica-c": c}
        a.wait(lambda: all(len(shards_of(s)) == 1 for s in group.values()), "one shard each")
        a.wait(lambda: len([p for p in repo.pulls.values() if p.state == "open"]) == APPS, "a pull request per app")

        # each replica's next two full cycles: every repository listed by exactly one replica
        proxy.clear()
        marks = {n: s.cycles() for n, s in group.items()}
        a.wait(lambda: all(s.cycles() >= marks[n] + 2 for n, s in group.items()), "two more cycles each")
        listed = proxy.listings()
        by_repo: dict[str, set[str]] = {}
        for who, name in listed:
            by_repo.setdefault(name, set()).add(who)
        assert sorted(by_repo) == sorted(names), listed
        assert all(len(who) == 1 for who in by_repo.values()), by_repo
        assert set().union(*by_repo.values()) <= set(group)

        # a webhook on a replica that does not hold the repository's shard reaches its holder
        owner = {name: next(iter(who)) for name, who in by_repo.items()}
        target = names[0]
        other = next(n for n in group if n != owner[target])
        payload = json.dumps({"image": f"{proxy.host}/{target}:1.1.0"}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
        proxy.clear()
        before = group[owner[target]].cycles()
        code, text = http("POST", f"{group[other].base}/hooks/generic", payload, {"X-Signature-256": signature})
        assert code == 202 and owner[target] in text, text
        group[owner[target]].wait(lambda: group[owner[target]].cycles() > before, "the holder's webhook cycle")

        # kill the replica holding the first app's shard: the others take its shard over
        victim = owner[target]
        its_apps = [name for name in names if owner[name] == victim]
        group[victim].proc.send_signal(signal.SIGKILL)
        group[victim].proc.wait(timeout=30)
        alive = [s for n, s in group.items() if n != victim]
        for name in its_apps:
            registry.push(name, "1.2.0")
        alive[0].wait(lambda: set().union(*(shards_of(s) for s in alive)) == {0, 1, 2}, "the shard taken over")
        moved = [f"app{names.index(name)}" for name in its_apps]
        alive[0].wait(
            lambda: all(
                any(p.state == "open" and "1.2.0" in p.title and p.head.endswith(app) for p in repo.pulls.values())
                for app in moved
            ),
            "the dead replica's pull requests moved to 1.2.0",
        )
        opened = Counter(p.head for p in repo.pulls.values())
        assert len(opened) == APPS and set(opened.values()) == {1}, opened  # never a second pull request
