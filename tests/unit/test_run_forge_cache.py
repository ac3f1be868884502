"""The forge adapter is kept across cycles, and made again when its token changed (rotation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from automator.config import DEFAULT, with_overrides
from automator.errors import ConfigError, CredentialError
from automator.wiring import ForgeCache, forge_token


def test_a_rotated_token_file_gets_a_new_forge_adapter(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("ghp_first\n")
    config = with_overrides(
        DEFAULT,
        {
            "spec.forge.provider": "github",
            "spec.forge.repository": "acme/config",
            "spec.forge.auth.tokenFile": str(token),
        },
    )
    cache = ForgeCache()
    first = cache(config)
    assert cache(config) is first  # same token: same adapter (its session and counters)
    token.write_text("ghp_second\n")
    second = cache(config)
    assert second is not first
    assert cache(config) is second


def test_an_empty_token_file_is_a_credential_error_and_an_app_is_github_only(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("")
    github = {"spec.forge.provider": "github", "spec.forge.repository": "acme/config"}
    config = with_overrides(DEFAULT, {**github, "spec.forge.auth.tokenFile": str(token)})
    with pytest.raises(CredentialError, match=r"token file .* is empty"):
        forge_token(config)  # a rotation caught half-way: the service retries it
    key = tmp_path / "app.pem"
    app = {"id": 1, "installationId": 2, "privateKeyFile": str(key)}
    gitlab = with_overrides(
        DEFAULT, {"spec.forge.provider": "gitlab", "spec.forge.repository": "g/p", "spec.forge.auth.app": app}
    )
    with pytest.raises(ConfigError, match="app is for GitHub Apps"):
        forge_token(gitlab)
    assert forge_token(with_overrides(DEFAULT, {**github, "spec.forge.auth.app": app})) == ""
