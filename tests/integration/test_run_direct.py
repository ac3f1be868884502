"""run_once in direct mode racing another pusher, and in-repo config rules (real git, real registry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from automator.config import DEFAULT, with_overrides
from automator.errors import ConfigError
from automator.forge import NoneForge
from automator.run import RunOptions, run_once
from tests.e2e.test_run_forges import git, make_remote, seeded_remote
from tests.servers.git_http import read_file, write_commit
from tests.servers.registry import RunningRegistry

pytestmark = pytest.mark.usefixtures("isolated_git")


def bump_on_base(remote: Path, old: str, new: str) -> str:
    deploy = read_file(remote, "main", "apps/deploy.yaml") or ""
    return write_commit(remote, {"apps/deploy.yaml": deploy.replace(old, new)}, f"bump to {new}")


def test_direct_retry_never_overwrites_a_concurrent_upgrade(registry: RunningRegistry, tmp_path: Path) -> None:
    repo_name = "race/app"
    image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "1.1.0"))
    config = with_overrides(DEFAULT, {"spec.git.url": str(remote), "spec.mode": "direct"})
    pushed: list[str] = []

    def race(_: object) -> None:  # called while we scan: someone else moves base to a newer version
        if not pushed:
            pushed.append(bump_on_base(remote, ":1.0.0", ":7.0.0"))

    forge = NoneForge()
    summary = run_once(config, lambda _: forge, RunOptions(tmp_path / "cache", progress=race))
    assert [g.outcome for g in summary.groups] == ["unchanged"]
    assert git("rev-parse", "main", cwd=remote).strip() == pushed[0]  # their commit stands, alone
    assert f"{image}:7.0.0" in git("show", "main:apps/deploy.yaml", cwd=remote)


def test_direct_retry_keeps_both_when_changes_do_not_overlap(registry: RunningRegistry, tmp_path: Path) -> None:
    repo_name = "race/other"
    image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "1.2.0"))
    config = with_overrides(DEFAULT, {"spec.git.url": str(remote), "spec.mode": "direct"})
    pushed: list[str] = []

    def race(_: object) -> None:  # someone else edits an unrelated line on base meanwhile
        if not pushed:
            pushed.append(bump_on_base(remote, "name: app\n", "name: app  # renamed\n"))

    summary = run_once(config, lambda _: NoneForge(), RunOptions(tmp_path / "cache", progress=race))
    assert [g.outcome for g in summary.groups] == ["committed"]
    log = git("log", "--format=%s", "main", cwd=remote).splitlines()
    assert len(log) == 3  # ours, theirs, init: nothing lost, nothing twice
    assert "1.2.0" in log[0]
    assert log[1].startswith("bump to")
    text = git("show", "main:apps/deploy.yaml", cwd=remote)
    assert f"{image}:1.2.0" in text
    assert "# renamed" in text


def push_config(remote: Path, text: str) -> None:
    write_commit(remote, {"automator.yaml": text}, "configure")


def test_in_repo_config_cannot_redirect_credentials(registry: RunningRegistry, tmp_path: Path) -> None:
    remote = make_remote(tmp_path, registry.image("cfg/app"))
    push_config(
        remote,
        "apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n"
        "  forge: {provider: github, url: 'https://evil.example/api/v3', repository: a/b}\n",
    )
    config = with_overrides(DEFAULT, {"spec.git.url": str(remote)})
    options = RunOptions(tmp_path / "cache", repo_config=True)
    with pytest.raises(ConfigError, match=r"automator.yaml: spec.forge cannot be set in the config repo"):
        run_once(config, lambda _: NoneForge(), options)


def test_in_repo_branch_prefix_and_templates_apply(registry: RunningRegistry, tmp_path: Path) -> None:
    repo_name = "cfg/prefix"
    _image, remote = seeded_remote(registry, tmp_path, repo_name, ("1.0.0", "1.0.1"))
    push_config(
        remote,
        "apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  pullRequest:\n    branchPrefix: bot/\n"
        "    titleTemplate: 'deps: {{ updates[0].tag }}'\n",
    )
    config = with_overrides(DEFAULT, {"spec.git.url": str(remote)})
    forge = NoneForge()
    summary = run_once(config, lambda _: forge, RunOptions(tmp_path / "cache", repo_config=True))
    [group] = summary.groups
    assert group.outcome == "opened", group.reason
    assert group.branch == "bot/apps-app"
    assert group.pull_request is not None and group.pull_request.title == "deps: 1.0.1"
    assert "bot/apps-app" in git("branch", "--list", "bot/*", cwd=remote)


def test_same_branch_for_two_groups_is_refused_before_any_push(registry: RunningRegistry, tmp_path: Path) -> None:
    image = registry.image("cfg/two")
    for tag in ("1.0.0", "1.0.1"):
        registry.push("cfg/two", tag)
    remote = make_remote(tmp_path, image)
    second = {}
    for name in ("policy.yaml", "deploy.yaml"):
        text = read_file(remote, "main", f"apps/{name}") or ""
        second[f"apps/2-{name}"] = text.replace("name: app", "name: app2").replace("apps:app", "apps:app2")
    write_commit(remote, second, "second app")
    config = with_overrides(
        DEFAULT, {"spec.git.url": str(remote), "spec.pullRequest.branchTemplate": "{{ prefix }}all"}
    )
    with pytest.raises(ConfigError, match="same branch 'automator/all'"):
        run_once(config, lambda _: NoneForge(), RunOptions(tmp_path / "cache"))
    assert git("branch", "--list", "automator/*", cwd=remote).strip() == ""


@pytest.mark.parametrize(
    "refusal",
    [
        "  policy:\n    semver:\n      range: '<6 oops'\n",  # an invalid range: the policy is refused
        "  policy:\n    semver:\n      range: '<6'\n---\n"  # defined twice: neither loads
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app\n  namespace: apps\n"
        "spec:\n  image: IMAGE\n  insecure: true\n  policy:\n    semver:\n      range: '<6'\n",
    ],
    ids=["invalid", "duplicate"],
)
def test_a_refused_policy_s_marker_is_never_rewritten_by_a_look_alike(
    registry: RunningRegistry, tmp_path: Path, refusal: str
) -> None:
    """The adversarial run: ``apps:app`` (only <6) was refused, its marker fell back to the
    namespace-less policy ``app`` (any version), and 5.9.0 -> 7.0.0 was pushed to main."""
    image, remote = seeded_remote(registry, tmp_path, "guard/app", ("5.9.0", "7.0.0"))
    head = "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n"
    write_commit(
        remote,
        {
            "apps/policy.yaml": f"{head}  name: app\n  namespace: apps\nspec:\n  image: {image}\n  insecure: true\n"
            + refusal.replace("IMAGE", image),
            "other/policy.yaml": f"{head}  name: app\nspec:\n  image: {image}\n  insecure: true\n"
            "  policy:\n    semver:\n      range: '>=1.0.0'\n",
            "apps/deploy.yaml": (read_file(remote, "main", "apps/deploy.yaml") or "").replace(":1.0.0", ":5.9.0"),
        },
    )
    base = git("rev-parse", "main", cwd=remote).strip()
    config = with_overrides(DEFAULT, {"spec.git.url": str(remote), "spec.mode": "direct"})
    summary = run_once(config, lambda _: NoneForge(), RunOptions(tmp_path / "cache"))
    assert git("rev-parse", "main", cwd=remote).strip() == base  # nothing pushed
    assert f"{image}:5.9.0" in git("show", "main:apps/deploy.yaml", cwd=remote)
    warnings = [w.message for w in summary.plan.update.warnings]
    assert any(m.startswith("policy 'apps:app' ") and "the marker is left as it is" in m for m in warnings), warnings


def test_a_policy_behind_in_one_of_its_files_is_committed(registry: RunningRegistry, tmp_path: Path) -> None:
    """Only the file that is behind changes; the check for concurrent edits must not mistake the
    file already up to date for someone else's change."""
    image, remote = seeded_remote(registry, tmp_path, "split/app", ("1.0.0", "1.1.0"))
    deploy = read_file(remote, "main", "apps/deploy.yaml") or ""
    write_commit(
        remote, {"apps/other.yaml": deploy.replace(":1.0.0", ":1.1.0").replace("name: app\n", "name: other\n")}
    )
    config = with_overrides(DEFAULT, {"spec.git.url": str(remote), "spec.mode": "direct"})
    summary = run_once(config, lambda _: NoneForge(), RunOptions(tmp_path / "cache"))
    assert [g.outcome for g in summary.groups] == ["committed"], summary.groups
    assert f"{image}:1.1.0" in (read_file(remote, "main", "apps/deploy.yaml") or "")
