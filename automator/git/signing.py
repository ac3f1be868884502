"""Who commits, and how the commit is signed: per-command git configuration, never global.

Everything here becomes ``-c key=value`` arguments and environment variables for one
``git commit``, so the user's ``~/.gitconfig`` (``commit.gpgsign``, ``user.signingkey``, hooks)
neither leaks into automator's commits nor is changed by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from automator.errors import ConfigError, CredentialError

SigningFormat = Literal["openpgp", "ssh"]


@dataclass(frozen=True)
class Identity:
    """A commit author or committer: ``name <email>``."""

    name: str
    email: str

    def __post_init__(self) -> None:
        for label, value in (("name", self.name), ("email", self.email)):
            if not value.strip():
                raise ConfigError(f"commit author {label} is empty; set it in the automation config")
            if any(c in value for c in "<>\n\r\0"):
                raise ConfigError(f"commit author {label} {value!r} contains '<', '>' or a newline; git refuses it")

    def env(self, role: Literal["AUTHOR", "COMMITTER"]) -> dict[str, str]:
        return {f"GIT_{role}_NAME": self.name, f"GIT_{role}_EMAIL": self.email}

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class Signing:
    """Sign commits with a GPG key or an SSH key (``gpg.format=ssh``).

    ``key`` is what ``user.signingkey`` takes: a GPG key id or fingerprint for ``openpgp``;
    for ``ssh`` the path of a private key (or its ``.pub`` with the key in an agent), or a
    literal ``key::ssh-ed25519 AAAA...``. ``program`` overrides ``gpg.program`` (openpgp) or
    ``gpg.ssh.program`` (ssh); ``gnupg_home`` sets ``GNUPGHOME`` for gpg.
    """

    key: str
    format: SigningFormat = "openpgp"
    program: str | None = None
    gnupg_home: Path | None = None
    extra_env: tuple[tuple[str, str], ...] = ()  # e.g. SSH_ASKPASS for a key with a passphrase

    @classmethod
    def ssh(cls, key: Path | str, *, program: str | None = None) -> Signing:
        return cls(str(key), "ssh", program)

    @classmethod
    def gpg(cls, key: str, *, program: str | None = None, gnupg_home: Path | None = None) -> Signing:
        return cls(key, "openpgp", program, gnupg_home)

    def __post_init__(self) -> None:
        if not self.key.strip():
            raise ConfigError("the signing key is empty; set a GPG key id or an SSH key path, or disable signing")
        if self.format == "ssh" and not self.key.startswith("key::") and not Path(self.key).is_file():
            raise CredentialError(f"SSH signing key {self.key} does not exist; check the signing key path")

    def config(self) -> list[str]:
        """``-c`` arguments that make ``git commit -S`` sign with this key."""
        args = ["-c", f"gpg.format={self.format}", "-c", f"user.signingkey={self.key}"]
        if self.program:
            name = "gpg.ssh.program" if self.format == "ssh" else "gpg.program"
            args += ["-c", f"{name}={self.program}"]
        return args

    def env(self) -> dict[str, str]:
        home = {"GNUPGHOME": str(self.gnupg_home)} if self.gnupg_home is not None else {}
        return {**home, **dict(self.extra_env)}


def commit_config(signing: Signing | None) -> tuple[list[str], list[str], dict[str, str]]:
    """(``-c`` args before the verb, flags after ``commit``, environment) for one commit."""
    if signing is None:
        return ["-c", "commit.gpgsign=false"], ["--no-gpg-sign"], {}
    return signing.config(), ["-S"], signing.env()
