"""The forge adapter is kept across cycles, and made again when its token changed (rotation)."""

from __future__ import annotations

from pathlib import Path

from automator.config import DEFAULT, with_overrides
from automator.run import ForgeCache


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
