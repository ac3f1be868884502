"""Flux ImageUpdateAutomations run for real: scope, branches, refspec, push options, author,
message and signing, against a real registry and real git (and the fake GitHub for pull requests).

The repository is shaped like fluxcd/flux2-kustomize-helm-example: ``apps/base`` is shared,
``apps/staging`` and ``apps/production`` are overlays, each with its own automation.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from automator.automations import AutomationClock
from automator.config import DEFAULT, with_overrides
from automator.forge import NoneForge
from automator.run import RunOptions, RunSummary, run_once
from tests.e2e.test_run_forges import GIT_ENV, forge, git
from tests.e2e.test_run_forges import run_once as cli_run_once
from tests.servers.git_http import read_file, write_commit
from tests.servers.registry import RunningRegistry

pytestmark = pytest.mark.usefixtures("isolated_git")

STAGING_TEMPLATE = """\
      messageTemplate: |
        Automated image update

        Automation name: {{ .AutomationObject }}

        Files:
        {{ range $filename, $_ := .Changed.FileChanges -}}
        - {{ $filename }}
        {{ end -}}

        Objects:
        {{ range $resource, $changes := .Changed.Objects -}}
        - {{ $resource.Kind }} {{ $resource.Name }}
          Changes:
        {{- range $_, $change := $changes }}
            - {{ $change.OldValue }} -> {{ $change.NewValue }}
        {{ end -}}
        {{ end -}}
        Cluster: {{ .Values.cluster }}
      messageTemplateValues:
        cluster: staging-1
"""


def automation(name: str, path: str, env: str, extra_git: str = "", extra_spec: str = "") -> str:
    return (
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageUpdateAutomation\n"
        f"metadata:\n  name: {name}\n  namespace: flux-system\n"
        "spec:\n  interval: 30m\n  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
        "  git:\n    checkout:\n      ref:\n        branch: main\n"
        f"    commit:\n      author:\n        email: {name}-bot@example.com\n        name: {name} bot\n"
        f"{extra_git}"
        f"  update:\n    path: {path}\n    strategy: Setters\n"
        f"  policySelector:\n    matchLabels:\n      env: {env}\n{extra_spec}"
    )


def deployment(name: str, image: str) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: podinfo\n"
        "spec:\n  template:\n    spec:\n      containers:\n        - name: podinfo\n"
        f"          image: {image}\n"
    )


def fleet(tmp: Path, registry: RunningRegistry, staging: str, production: str) -> tuple[Path, str]:
    """The example fleet as a bare repository; returns it and the image."""
    for tag in ("1.0.0", "1.0.1", "1.1.0"):
        registry.push("fleet/podinfo", tag)
    image = registry.image("fleet/podinfo")
    remote = tmp / "fleet.git"
    files = {
        "clusters/flux-system/gotk-sync.yaml": (
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: flux-system\n"
            f"  namespace: flux-system\nspec:\n  interval: 1m\n  url: file://{remote}\n  ref:\n    branch: main\n"
        ),
        "clusters/staging/image-automation.yaml": staging,
        "clusters/production/image-automation.yaml": production,
        "clusters/image-policies.yaml": (
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: podinfo\n"
            f"  namespace: flux-system\nspec:\n  image: {image}\n  interval: 5m\n  insecure: true\n---\n"
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo-staging\n"
            "  namespace: flux-system\n  labels:\n    env: staging\nspec:\n  imageRepositoryRef:\n    name: podinfo\n"
            "  policy:\n    semver:\n      range: '>=1.0.0'\n---\n"
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo-production\n"
            "  namespace: flux-system\n  labels:\n    env: production\nspec:\n  imageRepositoryRef:\n"
            "    name: podinfo\n  policy:\n    semver:\n      range: '~1.0.0'\n"
        ),
        # the base is shared with production: a staging marker here must not be touched
        "apps/base/podinfo/deployment.yaml": deployment(
            "podinfo-base", f'{image}:1.0.0 # {{"$imagepolicy": "flux-system:podinfo-staging"}}'
        ),
        "apps/staging/podinfo-deploy.yaml": deployment(
            "podinfo", f'{image}:1.0.0 # {{"$imagepolicy": "flux-system:podinfo-staging"}}'
        ),
        "apps/staging/podinfo-values.yaml": deployment(
            "podinfo-canary", '"1.0.0" # {"$imagepolicy": "flux-system:podinfo-staging:tag"}'
        ),
        "apps/production/podinfo-deploy.yaml": deployment(
            "podinfo", f'{image}:1.0.0 # {{"$imagepolicy": "flux-system:podinfo-production"}}'
        ),
    }
    git("init", "-q", "--bare", "-b", "main", str(remote))
    write_commit(remote, files, "init")
    return remote, image


def commit_message(remote: Path, rev: str) -> str:
    raw = git("cat-file", "commit", rev, cwd=remote)
    return raw.split("\n\n", 1)[1]


def author(remote: Path, rev: str) -> str:
    return git("log", "-1", "--format=%an <%ae>", rev, cwd=remote).strip()


def run(
    remote: Path, tmp: Path, *, mode: str = "direct", clock: AutomationClock | None = None, **kw: object
) -> RunSummary:
    config = with_overrides(DEFAULT, {"spec.git.url": f"file://{remote}", "spec.mode": mode})
    return run_once(config, lambda _: NoneForge(), RunOptions(tmp / "cache", clock=clock, **kw))  # type: ignore[arg-type]


PRODUCTION_PUSH = "    push:\n      branch: image-updates/production\n"


def test_two_automations_each_change_only_their_files(registry: RunningRegistry, tmp_path: Path) -> None:
    staging = automation("staging", "./apps/staging", "staging", STAGING_TEMPLATE)
    production = automation("production", "./apps/production", "production", PRODUCTION_PUSH)
    remote, image = fleet(tmp_path, registry, staging, production)
    before = git("rev-parse", "main", cwd=remote).strip()

    summary = run(remote, tmp_path)

    assert sorted((g.group, g.outcome, g.branch) for g in summary.groups) == [
        ("flux-system/production", "committed", "image-updates/production"),
        ("flux-system/staging", "committed", "main"),
    ], summary.groups
    changed_on_main = git("diff", "--name-only", before, "main", cwd=remote).split()
    assert changed_on_main == ["apps/staging/podinfo-deploy.yaml", "apps/staging/podinfo-values.yaml"]
    # byte for byte: only the values change, markers, quotes and layout stay
    assert read_file(remote, "main", "apps/base/podinfo/deployment.yaml") == deployment(
        "podinfo-base", f'{image}:1.0.0 # {{"$imagepolicy": "flux-system:podinfo-staging"}}'
    )
    assert read_file(remote, "main", "apps/staging/podinfo-deploy.yaml") == deployment(
        "podinfo", f'{image}:1.1.0 # {{"$imagepolicy": "flux-system:podinfo-staging"}}'
    )
    assert read_file(remote, "main", "apps/staging/podinfo-values.yaml") == deployment(
        "podinfo-canary", '"1.1.0" # {"$imagepolicy": "flux-system:podinfo-staging:tag"}'
    )
    assert f"{image}:1.0.0 #" in (read_file(remote, "main", "apps/production/podinfo-deploy.yaml") or "")

    # Flux's push branch: the checkout branch plus the change; the change touches production only
    prod = "image-updates/production"
    assert git("rev-parse", f"{prod}~1", cwd=remote).strip() in (before, git("rev-parse", "main", cwd=remote).strip())
    assert git("diff", "--name-only", f"{prod}~1", prod, cwd=remote).split() == ["apps/production/podinfo-deploy.yaml"]
    assert read_file(remote, prod, "apps/production/podinfo-deploy.yaml") == deployment(
        "podinfo", f'{image}:1.0.1 # {{"$imagepolicy": "flux-system:podinfo-production"}}'
    )

    assert author(remote, "main") == "staging bot <staging-bot@example.com>"
    assert author(remote, prod) == "production bot <production-bot@example.com>"
    assert commit_message(remote, prod) == "Update from image update automation"
    assert commit_message(remote, "main") == (
        "Automated image update\n\n"
        "Automation name: flux-system/staging\n\n"
        "Files:\n"
        "- podinfo-deploy.yaml\n"
        "- podinfo-values.yaml\n"
        "Objects:\n"
        "- Deployment podinfo\n"
        "  Changes:\n"
        f"    - {image}:1.0.0 -> {image}:1.1.0\n"
        "- Deployment podinfo-canary\n"
        "  Changes:\n"
        "    - 1.0.0 -> 1.1.0\n"
        "Cluster: staging-1\n"
    )

    # The next cycle: main moved on (staging's commit), so the push branch is rebuilt on it, as Flux
    # overwrites its push branch with the checkout plus the change; after that, nothing is pushed.
    again = {g.group: g.outcome for g in run(remote, tmp_path).groups}
    assert again in (
        {"flux-system/staging": "unchanged", "flux-system/production": "committed"},
        {"flux-system/staging": "unchanged", "flux-system/production": "unchanged"},
    )
    assert git("rev-parse", f"{prod}~1", cwd=remote).strip() == git("rev-parse", "main", cwd=remote).strip()
    idle = run(remote, tmp_path)
    assert sorted(g.outcome for g in idle.groups) == ["unchanged", "unchanged"], idle.groups


def test_a_suspended_automation_changes_nothing(registry: RunningRegistry, tmp_path: Path) -> None:
    staging = automation("staging", "./apps/staging", "staging", extra_spec="  suspend: true\n")
    production = automation("production", "./apps/production", "production")
    remote, _ = fleet(tmp_path, registry, staging, production)
    summary = run(remote, tmp_path)
    by = {g.group: g for g in summary.groups}
    assert by["flux-system/staging"].outcome == "skipped"
    assert by["flux-system/staging"].reason == "spec.suspend is true"
    assert by["flux-system/production"].outcome == "committed"
    assert "apps/staging" not in git("show", "--stat", "main", cwd=remote)


def test_interval_is_honoured_unless_a_policy_changes_its_choice(registry: RunningRegistry, tmp_path: Path) -> None:
    staging = automation("staging", "./apps/staging", "staging")
    production = automation("production", "./apps/production", "production")
    remote, image = fleet(tmp_path, registry, staging, production)
    now = [1000.0]
    clock = AutomationClock(now=lambda: now[0])
    assert sorted(g.outcome for g in run(remote, tmp_path, clock=clock).groups) == ["committed", "committed"]

    # someone puts staging back by hand; Flux would restore it only after spec.interval (30m)
    deploy = read_file(remote, "main", "apps/staging/podinfo-deploy.yaml") or ""
    write_commit(remote, {"apps/staging/podinfo-deploy.yaml": deploy.replace(":1.1.0", ":1.0.0")}, "revert")
    now[0] += 60
    waiting = {g.group: g for g in run(remote, tmp_path, clock=clock).groups}
    assert waiting["flux-system/staging"].outcome == "skipped"
    assert "spec.interval runs it again in 1740s" in waiting["flux-system/staging"].reason
    now[0] += 1800
    restored = {g.group: g for g in run(remote, tmp_path, clock=clock).groups}
    assert restored["flux-system/staging"].outcome == "committed", restored

    # a new tag changes the staging policy's choice: it runs at once, whatever the interval
    registry.push("fleet/podinfo", "1.2.0")
    now[0] += 1
    after = {g.group: g.outcome for g in run(remote, tmp_path, clock=clock).groups}
    assert after == {"flux-system/staging": "committed", "flux-system/production": "skipped"}
    assert f"{image}:1.2.0 #" in (read_file(remote, "main", "apps/staging/podinfo-deploy.yaml") or "")


def test_refspec_and_push_options_reach_the_remote(registry: RunningRegistry, tmp_path: Path) -> None:
    push = (
        "    push:\n      refspec: refs/heads/main:refs/heads/review/staging\n"
        "      options:\n        ci.skip: ''\n        merge_request.target: release\n"
    )
    staging = automation("staging", "./apps/staging", "staging", push)
    production = automation("production", "./apps/production", "production", extra_spec="  suspend: true\n")
    remote, _ = fleet(tmp_path, registry, staging, production)
    git("config", "receive.advertisePushOptions", "true", cwd=remote)
    hook = remote / "hooks" / "pre-receive"
    seen = tmp_path / "push-options"
    hook.write_text(
        '#!/bin/sh\ni=0\nwhile [ $i -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do\n'
        f'  eval "echo \\$GIT_PUSH_OPTION_$i" >> {seen}\n  i=$((i+1))\ndone\n'
    )
    hook.chmod(0o755)
    summary = run(remote, tmp_path)
    assert [g.outcome for g in summary.groups if g.group == "flux-system/staging"] == ["committed"]
    main = git("rev-parse", "main", cwd=remote).strip()
    assert git("rev-parse", "review/staging", cwd=remote).strip() == main
    assert seen.read_text().splitlines() == ["ci.skip", "merge_request.target=release"] * 2  # both pushes


def test_pull_request_mode_opens_the_pr_from_the_push_branch(registry: RunningRegistry, tmp_path: Path) -> None:
    staging = automation("staging", "./apps/staging", "staging", "    push:\n      branch: flux/staging\n")
    production = automation("production", "./apps/production", "production", extra_spec="  suspend: true\n")
    remote, _ = fleet(tmp_path, registry, staging, production)
    with forge("github", remote) as f:
        doc = cli_run_once(remote, tmp_path / "cache", f, "--mode", "pull-request")
        groups = {g["group"]: g for g in doc["groups"]}
        assert groups["flux-system/staging"]["outcome"] == "opened", groups
        assert groups["flux-system/staging"]["branch"] == "flux/staging"
        [(number, state, _title)] = f.prs()
        assert state == "open"
        assert "flux/staging" in git("branch", "--list", "flux/*", cwd=remote)
        assert commit_message(remote, "flux/staging") == "Update from image update automation"
        again = cli_run_once(remote, tmp_path / "cache", f, "--mode", "pull-request")
        assert {g["group"]: g["outcome"] for g in again["groups"]}["flux-system/staging"] == "unchanged"
        assert len(f.prs()) == 1 and number == f.prs()[0][0]


def test_a_git_repository_for_another_repository_is_left_alone(registry: RunningRegistry, tmp_path: Path) -> None:
    staging = automation("staging", "./apps/staging", "staging").replace(
        "name: flux-system\n  git", "name: other\n  git"
    )
    production = automation("production", "./apps/production", "production")
    other = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: other\n"
        "  namespace: flux-system\nspec:\n  interval: 1m\n  url: https://git.example.com/other/repo.git\n"
        "  ref:\n    branch: main\n"
    )
    remote, _ = fleet(tmp_path, registry, staging + "---\n" + other, production)
    by = {g.group: g for g in run(remote, tmp_path).groups}
    assert by["flux-system/staging"].outcome == "skipped"
    assert (
        "https://git.example.com/other/repo.git, not the repository automator updates"
        in by["flux-system/staging"].reason
    )
    assert by["flux-system/production"].outcome == "committed"


def ssh_signing_key(directory: Path, password: str | None) -> Path:
    directory.mkdir(parents=True)
    key = directory / "identity"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", password or "", "-C", "signer@example.com", "-f", str(key)],
        check=True,
    )
    if password:
        (directory / "password").write_text(password)
    return key


@pytest.mark.parametrize("password", [None, "s3cret-pass"])
def test_commits_are_signed_with_the_ssh_key_from_the_secret(
    registry: RunningRegistry, tmp_path: Path, password: str | None
) -> None:
    signing = "      signingKey:\n        type: ssh\n        secretRef:\n          name: signing-key\n"
    staging = automation("staging", "./apps/staging", "staging", signing)
    production = automation("production", "./apps/production", "production", extra_spec="  suspend: true\n")
    remote, _ = fleet(tmp_path, registry, staging, production)
    creds = tmp_path / "credentials"
    key = ssh_signing_key(creds / "signing-key", password)
    summary = run(remote, tmp_path, access=_access(creds))
    assert [g.outcome for g in summary.groups if g.group == "flux-system/staging"] == ["committed"], summary.groups
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"staging-bot@example.com {(key.with_suffix('.pub')).read_text()}")
    proc = subprocess.run(
        ["git", "-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-commit", "main"],
        cwd=remote,
        capture_output=True,
        text=True,
        check=False,
        env={**GIT_ENV, "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert 'Good "git" signature for staging-bot@example.com' in proc.stderr
    assert password is None or password not in json.dumps([str(g) for g in summary.groups])


def test_commits_are_signed_with_the_gpg_key_from_the_secret(
    registry: RunningRegistry, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    signing = "      signingKey:\n        secretRef:\n          name: gpg-key\n"
    staging = automation("staging", "./apps/staging", "staging", signing)
    production = automation("production", "./apps/production", "production", extra_spec="  suspend: true\n")
    remote, _ = fleet(tmp_path, registry, staging, production)
    home = tmp_path / "keyring"
    home.mkdir(mode=0o700)
    request.addfinalizer(lambda: subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False))
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "pw"]
    subprocess.run(
        [*gpg, "--quick-gen-key", "staging bot <staging-bot@example.com>", "ed25519", "sign", "never"],
        check=True,
        capture_output=True,
    )
    secret = tmp_path / "credentials" / "gpg-key"
    secret.mkdir(parents=True)
    armored = subprocess.run([*gpg, "--armor", "--export-secret-keys"], check=True, capture_output=True).stdout
    (secret / "git.asc").write_bytes(armored)
    (secret / "passphrase").write_text("pw")
    summary = run(remote, tmp_path, access=_access(tmp_path / "credentials"))
    assert [g.outcome for g in summary.groups if g.group == "flux-system/staging"] == ["committed"], summary.groups
    proc = subprocess.run(
        ["git", "verify-commit", "main"],
        cwd=remote,
        capture_output=True,
        text=True,
        check=False,
        env={**GIT_ENV, "PATH": "/usr/bin:/bin", "GNUPGHOME": str(home)},
    )
    assert proc.returncode == 0, proc.stderr
    assert 'Good signature from "staging bot <staging-bot@example.com>"' in proc.stderr


def test_a_missing_signing_secret_fails_the_automation_and_pushes_nothing(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    signing = "      signingKey:\n        type: ssh\n        secretRef:\n          name: absent\n"
    staging = automation("staging", "./apps/staging", "staging", signing)
    production = automation("production", "./apps/production", "production", extra_spec="  suspend: true\n")
    remote, _ = fleet(tmp_path, registry, staging, production)
    before = git("rev-parse", "main", cwd=remote).strip()
    summary = run(remote, tmp_path, access=_access(tmp_path / "credentials"))
    [staged] = [g for g in summary.groups if g.group == "flux-system/staging"]
    assert staged.outcome == "failed"
    assert "spec.git.commit.signingKey.secretRef 'absent'" in staged.reason
    assert "credentials/absent/identity does not exist" in staged.reason
    assert git("rev-parse", "main", cwd=remote).strip() == before
    assert summary.failed


def _access(credentials: Path) -> object:
    from automator.registry.access import RegistryAccess

    return RegistryAccess(credentials_dir=credentials)
