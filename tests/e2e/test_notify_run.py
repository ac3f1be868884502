"""End to end: `automator run --once --notifications FILE` against the real registry, a real git
remote and the fake GitHub, with receivers of our own on loopback.

What a team watching the channel lives through, one process per cycle (each a restart, so what
crosses cycles comes from --state-dir): a PR opened (a webhook, a Slack message and a comment on
the PR), a policy failing its second cycle in a row, the PR updated, merged, the policy
recovered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_run_forges import automator_run, git
from tests.servers.fake_github import GITHUB_TOKEN, GitHubState, github_server
from tests.servers.receivers import Receiver, receiver_server
from tests.servers.registry import RunningRegistry

SECRET = "whsec-notify-e2e"


def remote_with_two_policies(tmp: Path, image: str, ghost: str) -> Path:
    """A config repo: ``app`` (its tags are in the registry) and ``ghost`` (its repository is not, yet)."""
    top = tmp / "seed"
    (top / "apps").mkdir(parents=True)
    for name, img in (("app", image), ("ghost", ghost)):
        (top / "apps" / f"{name}-policy.yaml").write_text(
            f"apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: {name}\n  namespace: apps\n"
            f"spec:\n  image: {img}\n  insecure: true\n  policy:\n    semver:\n      range: '>=1.0.0'\n"
        )
        (top / "apps" / f"{name}.yaml").write_text(
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: apps\n"
            f"spec:\n  template:\n    spec:\n      containers:\n        - name: {name}\n"
            f'          image: {img}:1.0.0 # {{"$imagepolicy": "apps:{name}"}}\n'
        )
    git("init", "-q", "-b", "main", cwd=top)
    git("add", "-A", cwd=top)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init", cwd=top)
    remote = tmp / "remote.git"
    git("clone", "-q", "--bare", str(top), str(remote))
    return remote


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiver_server(SECRET.encode()) as r:
        yield r


def notifications(tmp: Path, receiver: Receiver) -> Path:
    (tmp / "hmac").write_text(SECRET + "\n")
    (tmp / "slack-url").write_text(receiver.url("/slack/T0/B0/secret-part") + "\n")
    path = tmp / "notifications.yaml"
    path.write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: Notifications\nspec:\n  failingCycles: 2\n  notifiers:\n"
        f"    - name: hook\n      type: webhook\n      url: {receiver.url('/webhook')}\n"
        f"      secretFile: {tmp / 'hmac'}\n"
        f"    - name: chat\n      type: slack\n      urlFile: {tmp / 'slack-url'}\n"
        "      events: [pullRequestOpened, pullRequestMerged]\n"
        "    - name: on-the-pr\n      type: pullRequestComment\n      events: [pullRequestOpened, pullRequestMerged]\n"
    )
    return path


def test_a_pull_requests_life_and_a_failing_policy_are_announced(
    registry: RunningRegistry, tmp_path: Path, receiver: Receiver
) -> None:
    registry.push("notify-e2e/app", "1.0.0")
    registry.push("notify-e2e/app", "1.1.0")
    image, ghost = registry.image("notify-e2e/app"), registry.image("notify-e2e/ghost")
    remote = remote_with_two_policies(tmp_path, image, ghost)
    config = notifications(tmp_path, receiver)
    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        repo = gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)

        def cycle(*extra: str) -> list[str]:
            before = len(receiver.of("/webhook"))
            proc = automator_run(
                remote,
                tmp_path / "cache",
                "--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app",
                "--forge-token-env", "FORGE_TOKEN", "--state-dir", str(tmp_path / "state"),
                "--notifications", str(config), *extra,
                env={"FORGE_TOKEN": GITHUB_TOKEN},
            )  # fmt: skip
            assert proc.returncode in (0, 1), proc.stderr  # 1: ghost fails, as it should
            assert "secret-part" not in proc.stderr and SECRET not in proc.stderr
            return [d["kind"] for d in receiver.of("/webhook")[before:]]

        assert cycle() == ["pullRequestOpened"]
        [number] = repo.pulls
        assert cycle() == ["policyFailing"]  # ghost's second failed cycle, across two processes
        registry.push("notify-e2e/app", "1.2.0")
        assert cycle() == ["pullRequestUpdated"]
        gh.merge("octo/app", number)
        assert cycle() == ["pullRequestMerged"]
        registry.push("notify-e2e/ghost", "1.0.0")
        assert cycle() == ["policyRecovered"]

    assert receiver.refused == []  # every signature verified, every body of the documented shape
    docs = receiver.of("/webhook")
    failing = docs[1]
    assert (failing["subject"], failing["policies"], failing["severity"]) == ("apps:ghost", ["apps:ghost"], "error")
    assert docs[0]["pullRequest"]["number"] == docs[3]["pullRequest"]["number"] == number
    assert docs[0]["versions"] == {"apps:app": f"{image}:1.1.0"}
    assert [d["text"].split(":")[0] for d in receiver.of("/slack")] == ["Pull request opened", "Pull request merged"]
    comments = repo.pulls[number].comments
    assert [c.splitlines()[0] for c in comments] == [
        "**Pull request opened: apps:app**",
        "**Pull request merged: apps:app**",
    ]


def test_without_a_state_dir_a_once_process_knows_only_its_own_cycle(
    registry: RunningRegistry, tmp_path: Path, receiver: Receiver
) -> None:
    registry.push("notify-e2e2/app", "1.0.0")
    registry.push("notify-e2e2/app", "1.1.0")
    image, ghost = registry.image("notify-e2e2/app"), registry.image("notify-e2e2/ghost")
    remote = remote_with_two_policies(tmp_path, image, ghost)
    config = notifications(tmp_path, receiver)
    gh: GitHubState
    with github_server() as gh:
        gh.tokens[GITHUB_TOKEN] = "automator-bot"
        gh.add_repo("octo/app", collaborators=("automator-bot",), git_dir=remote)
        args = ["--forge", "github", "--forge-url", gh.base_url, "--forge-repository", "octo/app"]
        for _ in range(3):  # ghost fails every cycle, but no process sees two of them
            proc = automator_run(
                remote,
                tmp_path / "cache",
                *args,
                "--forge-token-env",
                "FORGE_TOKEN",
                "--notifications",
                str(config),
                env={"FORGE_TOKEN": GITHUB_TOKEN},
            )
            assert proc.returncode in (0, 1), proc.stderr
    assert [d["kind"] for d in receiver.of("/webhook")] == ["pullRequestOpened"]
