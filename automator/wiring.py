"""Forge wiring: which adapter a config names, with which token, kept across cycles.

The automator's run talks to a :class:`automator.forge.Forge`; this room turns ``spec.forge``
(and, when the forge is on the git remote's host, the git token) into one, so run.py never
chooses adapters, reads token files or builds API URLs itself. The GitHub and GitLab adapters
load on first use (``automator.forge.__getattr__``), so ``forge: none`` never imports PyGithub
or python-gitlab.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from automator import forge as forges
from automator.config import Automation, ForgeSpec, forge_host, git_token_fits_forge
from automator.errors import ConfigError, CredentialUnavailable
from automator.forge import Forge, NoneForge


class ForgeCache:
    """One forge adapter per forge spec, kept across cycles (NoneForge state, PyGithub sessions).

    The token is read again every cycle and a new adapter made when it changed, so a rotated
    token file (a GitHub App token refreshed by a sidecar, a renewed PAT) is picked up.
    """

    def __init__(self) -> None:
        self._made: dict[ForgeSpec, tuple[str, Forge]] = {}

    def __call__(self, config: Automation) -> Forge:
        spec = config.spec.forge
        token = forge_token(config)
        fingerprint = hashlib.sha256(token.encode()).hexdigest()
        made = self._made.get(spec)
        if made is None or made[0] != fingerprint:
            made = self._made[spec] = (fingerprint, make_forge(config, token))
        return made[1]


def forge_token(config: Automation) -> str:
    """The forge API token: from ``spec.forge.auth``, else the git token when both are on one host.

    An empty token file is a transient problem (a rotation caught half-way): it is
    :class:`CredentialUnavailable`, which the error tree files as retryable.
    """
    spec = config.spec.forge
    if spec.provider == "none":
        return ""
    if spec.auth.app is not None:
        if spec.provider == "github":
            return ""  # the adapter signs in as the App
        raise ConfigError("spec.forge.auth.app is for GitHub Apps; GitLab needs tokenEnv or tokenFile")
    if spec.auth.token_env or spec.auth.token_file:
        token = spec.auth.resolve(f"{spec.provider} token")
        if not token:
            raise CredentialUnavailable(f"{spec.provider} token file {spec.auth.token_file} is empty")
        return token
    if git_token_fits_forge(config):
        token = config.spec.git.auth.resolve("git token")  # one token for push and API, as usual on both
        if token:
            return token
    raise ConfigError(
        f"the {spec.provider} forge needs spec.forge.auth.tokenEnv or tokenFile"
        f"{' or app' if spec.provider == 'github' else ''} (--forge-token-env, --forge-token-file); the git"
        f" token is used only when the git remote is on the forge's host ({forge_host(spec) or '?'})"
    )


def make_forge(config: Automation, token: str | None = None) -> Forge:
    """The forge adapter ``spec.forge`` names, with its token (resolved here unless given).

    The GitHub and GitLab adapters load on first use (``automator.forge.__getattr__``), so
    ``forge: none`` never imports PyGithub or python-gitlab.
    """
    spec = config.spec.forge
    if spec.provider == "none":
        return NoneForge(repository=spec.repository or "local")
    if not spec.repository:
        raise ConfigError(
            f"spec.forge.repository (--forge-repository) is required for forge {spec.provider!r}:"
            " it cannot be derived from the git URL"
        )
    token = forge_token(config) if token is None else token
    if spec.provider == "gitlab":
        return forges.GitLabForge(spec.repository, token=token, url=spec.url or "https://gitlab.com")
    base = spec.url or "https://api.github.com"
    app = spec.auth.app
    if app is not None:
        try:
            key = Path(app.private_key_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the GitHub App private key {app.private_key_file}: {exc}") from None
        return forges.GitHubForge(
            spec.repository, app_id=app.id, private_key=key, installation_id=app.installation_id, base_url=base
        )
    return forges.GitHubForge(spec.repository, token=token, base_url=base)
