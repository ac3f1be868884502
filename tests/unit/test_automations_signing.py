"""signing_from_secret: an automation's signing key from its mounted Secret, and what goes wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from automator.automations import signing_from_secret
from automator.errors import CredentialError
from automator.policy.automation import CommitSigning, UpdateAutomation
from automator.policy.model import SourceLocation


def automation(kind: str = "gpg") -> UpdateAutomation:
    return UpdateAutomation(
        name="flux-system/staging",
        namespace="flux-system",
        source=SourceLocation("auto.yaml", 4),
        source_ref=("flux-system", "flux-system"),
        author_name="bot",
        author_email="bot@example.com",
        interval_seconds=60.0,
        signing=CommitSigning(kind, "key"),  # type: ignore[arg-type]
    )


def test_gpg_missing_is_a_credential_error_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "creds" / "key").mkdir(parents=True)
    (tmp_path / "creds" / "key" / "git.asc").write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----\n")

    def no_gpg(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        raise FileNotFoundError(2, "No such file or directory", "gpg")

    with pytest.raises(CredentialError, match=r"signingKey.secretRef 'key': cannot run gpg .*install gnupg"):
        signing_from_secret(automation(), tmp_path / "creds", tmp_path / "scratch", run=no_gpg)


def test_no_credentials_dir_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="give --credentials-dir"):
        signing_from_secret(automation("ssh"), None, tmp_path / "scratch")
