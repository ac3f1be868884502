"""End to end: `automator validate`, `scan` and `demo` run as a user runs them, against a real registry."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.servers.registry import RunningRegistry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "config-repo"


def automator(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automator", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def policy(name: str, image: str, spec: str, namespace: str | None = None) -> str:
    ns = f"  namespace: {namespace}\n" if namespace else ""
    return (
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\n"
        f"metadata:\n  name: {name}\n{ns}spec:\n  image: {image}\n  insecure: true\n{spec}"
    )


def test_validate_examples_ok() -> None:
    proc = automator("validate", str(EXAMPLES), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    names = {p["name"] for p in doc["policies"]}
    assert names == {"apps:podinfo", "apps:worker", "apps:cache", "flux-system:web"}
    assert doc["errors"] == []


def test_validate_reports_file_line_field_and_keeps_valid_ones(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(policy("good", "nginx", "  policy:\n    semver:\n      range: '^1.2'\n"))
    (tmp_path / "bad.yaml").write_text(policy("bad", "nginx", "  policy:\n    semver:\n      range: '>=1.2 <<2'\n"))
    proc = automator("validate", str(tmp_path))
    assert proc.returncode == 2
    assert "ok     good" in proc.stdout
    assert "bad.yaml:10:14" in proc.stdout
    assert "spec.policy.semver.range" in proc.stdout


def test_scan_chooses_per_policy_and_reports_failures(registry: RunningRegistry, tmp_path: Path) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    for i, tag in enumerate(["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "v1.11.0", "latest"]):
        registry.push("e2e/app", tag, created=t0 + timedelta(days=i))
    for i, tag in enumerate(["build-3", "build-12", "build-7"]):
        registry.push("e2e/builds", tag, created=t0 + timedelta(days=[5, 1, 9][i]))
    latest = registry.push("e2e/mutable", "latest", created=t0)
    docs = [
        policy("semver", registry.image("e2e/app"), "  policy:\n    semver:\n      range: '>=1.0 <2'\n"),
        policy(
            "numeric",
            registry.image("e2e/builds"),
            "  filterTags:\n    pattern: '^build-(?P<n>[0-9]+)$'\n    extract: '$n'\n"
            "  policy:\n    numerical:\n      order: asc\n",
        ),
        policy("newest", registry.image("e2e/builds"), "  policy:\n    newestBuild: {}\n"),
        policy("pinned", registry.image("e2e/mutable"), "  policy:\n    digest:\n      tag: latest\n"),
        policy("missing", registry.image("e2e/does-not-exist"), "  policy:\n    semver:\n      range: '*'\n"),
    ]
    (tmp_path / "policies.yaml").write_text("---\n".join(docs))
    proc = automator("scan", str(tmp_path), "--output", "json")
    assert proc.returncode == 1, proc.stderr  # one policy failed, the others still chose
    rows = {r["policy"]: r for r in json.loads(proc.stdout)["results"]}
    assert rows["semver"]["tag"] == "v1.11.0"
    assert rows["semver"]["tags_seen"] == 6
    assert rows["numeric"]["tag"] == "build-12"
    assert rows["newest"]["tag"] == "build-7"
    assert rows["pinned"]["tag"] == "latest"
    assert rows["pinned"]["digest"] == latest.digest
    assert rows["missing"]["error"]["type"] == "RepositoryNotFound"


def test_scan_with_docker_config_basic_auth(registry_htpasswd: RunningRegistry, tmp_path: Path) -> None:
    registry_htpasswd.push("private/app", "1.0.0")
    registry_htpasswd.push("private/app", "1.1.0")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "p.yaml").write_text(
        policy("private", registry_htpasswd.image("private/app"), "  policy:\n    semver:\n      range: '*'\n")
    )
    assert registry_htpasswd.auth is not None
    user, password = registry_htpasswd.auth

    def config(pw: str) -> Path:
        path = tmp_path / f"config-{len(pw)}.json"
        auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
        path.write_text(json.dumps({"auths": {registry_htpasswd.host: {"auth": auth}}}))
        return path

    ok = automator("scan", str(repo), "--docker-config", str(config(password)))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1.1.0" in ok.stdout

    wrong = "not-the-password-" + "x" * 12
    bad = automator("scan", str(repo), "--docker-config", str(config(wrong)))
    assert bad.returncode == 1
    assert "private" in bad.stdout
    assert wrong not in bad.stdout + bad.stderr


def test_scan_on_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    proc = automator("scan", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert "not a directory" in proc.stderr


@pytest.mark.slow
def test_demo_runs_end_to_end() -> None:
    proc = automator("demo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "apps:podinfo" in proc.stdout
    assert "6.1.0" in proc.stdout
    assert "main-20240105-def5678" in proc.stdout
    # the service step: a signed webhook makes one cycle that lists only the pushed repository
    assert re.search(r"^202 cycle queued for 127\.0\.0\.1:\d+/demo/podinfo$", proc.stdout, re.M)
    assert "`6.0.0` → `6.1.2`" in proc.stdout
    assert "the cycle listed 1 of 4 repositories" in proc.stdout


def test_named_credentials_stay_with_their_policy(registry_htpasswd: RunningRegistry, tmp_path: Path) -> None:
    registry_htpasswd.push("named/app", "3.0.0")
    registry_htpasswd.push("named/other", "4.0.0")
    assert registry_htpasswd.auth is not None
    user, password = registry_htpasswd.auth
    secrets = tmp_path / "secrets" / "pull"
    secrets.mkdir(parents=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (secrets / ".dockerconfigjson").write_text(json.dumps({"auths": {registry_htpasswd.host: {"auth": auth}}}))
    repo = tmp_path / "repo"
    repo.mkdir()
    spec = "  policy:\n    semver:\n      range: '*'\n"
    (repo / "p.yaml").write_text(
        policy("with", registry_htpasswd.image("named/app"), "  credentials: {name: pull}\n" + spec)
        + "---\n"
        + policy("without", registry_htpasswd.image("named/other"), spec)
    )
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    args = ["--credentials-dir", str(tmp_path / "secrets"), "--docker-config", str(empty)]
    proc = automator("scan", str(repo), "--output", "json", *args)
    assert proc.returncode == 1, proc.stderr
    rows = {r["policy"]: r for r in json.loads(proc.stdout)["results"]}
    assert rows["with"]["tag"] == "3.0.0"
    # the same host, but this policy named no credentials: it never borrows another policy's secret
    assert rows["without"]["error"]["type"] == "RegistryAuthError"
    assert password not in proc.stdout + proc.stderr
