"""End to end: `automator scan` over a config repository whose policy verifies signatures."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from tests.servers import cosign
from tests.servers.cosign import Key
from tests.servers.registry import RunningRegistry
from tests.servers.registry_push import RegistryHTTP


def automator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "automator", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_scan_shows_the_skipped_candidates_and_why(registry: RunningRegistry, tmp_path: Path) -> None:
    repo, key, other = f"e2e/verify-{uuid.uuid4().hex[:8]}", Key.generate(), Key.generate()
    digests = {tag: registry.push(repo, tag).digest for tag in ("1.0.0", "1.1.0", "1.2.0")}
    http = RegistryHTTP(registry.base_url)
    cosign.sign_legacy(http, repo, digests["1.0.0"], key)
    cosign.sign_legacy(http, repo, digests["1.1.0"], other)  # signed, by a key the policy does not trust
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "release.pub").write_text(key.pem, encoding="utf-8")
    (tmp_path / "policy.yaml").write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n"
        f"  image: {registry.image(repo)}\n  insecure: true\n  policy: {{semver: {{range: '*'}}}}\n"
        "  verify:\n    publicKeys: [{file: keys/release.pub}]\n",
        encoding="utf-8",
    )
    proc = automator("scan", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1.2.0: no signature (neither a .sig tag nor a referrer)" in proc.stdout
    assert "skipped 1.1.0: no signature verified" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("app "))
    assert " 1.0.0 (" in row

    proc = automator("scan", str(tmp_path), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert result["tag"] == "1.0.0"
    assert result["reason"].startswith("skipped 1.2.0: no signature")
    assert "skipped 1.1.0: no signature verified: sha256-" in result["reason"]
    assert key.pem not in proc.stdout and other.pem not in proc.stdout  # keys never in the output
    assert [s["tag"] for s in result["skipped"]] == ["1.2.0", "1.1.0"]
    assert result["skipped"][0]["digest"] == digests["1.2.0"] and result["verified"]


def test_a_key_from_a_mounted_secret_and_a_trust_root_that_is_not_a_file(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    repo, key = f"e2e/verify-secret-{uuid.uuid4().hex[:8]}", Key.generate()
    digests = {tag: registry.push(repo, tag).digest for tag in ("1.0.0", "1.1.0")}
    cosign.sign_legacy(RegistryHTTP(registry.base_url), repo, digests["1.0.0"], key)
    secrets = tmp_path / "secrets"
    (secrets / "release-key").mkdir(parents=True)
    (secrets / "release-key" / "cosign.pub").write_text(key.pem, encoding="utf-8")  # as the chart mounts a Secret
    config = tmp_path / "repo"
    config.mkdir()
    (config / "policy.yaml").write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: app\nspec:\n"
        f"  image: {registry.image(repo)}\n  insecure: true\n  policy: {{semver: {{range: '*'}}}}\n"
        "  verify:\n    publicKeys: [{secretRef: {name: release-key}}]\n",
        encoding="utf-8",
    )
    proc = automator("scan", str(config), "--credentials-dir", str(secrets), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    assert (result["tag"], [s["tag"] for s in result["skipped"]]) == ("1.0.0", ["1.1.0"])
    proc = automator("scan", str(config), "--sigstore-trusted-root", str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and "--sigstore-trusted-root" in proc.stderr and "not a file" in proc.stderr
