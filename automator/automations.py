"""Running a Flux ImageUpdateAutomation as one job of a cycle: its config, message, key and clock.

:mod:`automator.policy.automation` reads an automation; this module turns one into what the
cycle in :mod:`automator.run` needs, and nothing else:

* :func:`job_config`: the automator's effective config with the automation's branch, update
  path and commit author in place of the global ones (so every later step, links included,
  sees the automation's values and nothing re-derives them);
* :func:`flux_message`: the commit message, from ``spec.git.commit.messageTemplate`` rendered
  as Go ``text/template`` over the data Flux documents (``.AutomationObject``, ``.Changed``,
  ``.Values``), or Flux's default message;
* :func:`signing_from_secret`: ``spec.git.commit.signingKey``, read from the Secret mounted
  under ``--credentials-dir/<secret name>/`` (``git.asc`` and ``passphrase`` for gpg,
  ``identity`` and ``password`` for ssh, Flux's own field names);
* :class:`AutomationClock`: ``spec.interval``. Flux re-runs an automation when one of its
  policies changes its choice and otherwise once per interval; the clock answers the same
  question from what it saw at the automation's last run.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from automator import gotemplate
from automator.config import Automation, with_overrides
from automator.errors import ConfigError, CredentialError
from automator.git.signing import Signing
from automator.policy.automation import DEFAULT_MESSAGE, UpdateAutomation
from automator.update import UpdateResult

MAX_KEY_BYTES = 1 << 20


def job_config(config: Automation, auto: UpdateAutomation, base: str) -> Automation:
    """``config`` as ``auto`` runs it: its checkout branch, its update path, its author."""
    overrides: dict[str, object] = {
        "spec.git.branch": base,
        "spec.git.path": auto.path,
        "spec.commit.author": {"name": auto.author_name, "email": auto.author_email},
    }
    if auto.push_branch and auto.push_branch != base:
        overrides["spec.pullRequest.branchPrefix"] = auto.push_branch  # the one branch it may force
    return with_overrides(config, overrides)


def flux_message(auto: UpdateAutomation, update: UpdateResult, policies: Sequence[str]) -> str:
    """The commit message Flux would write for the changes of ``policies`` in ``update``, a plan
    made over ``update.path``: its file names are relative to it, as Flux reports them."""
    template = auto.message_template or DEFAULT_MESSAGE
    wanted = set(policies)
    files: dict[str, dict[gotemplate.ObjectIdentifier, list[gotemplate.Change]]] = {}
    for fr in update.files:
        for obj in fr.objects:
            changes = [c for c in obj.changes if c.policy in wanted]
            if not changes:
                continue
            oid = gotemplate.ObjectIdentifier.of(
                kind=obj.object.kind,
                name=obj.object.name,
                namespace=obj.object.namespace,
                api_version=obj.object.api_version,
            )
            files.setdefault(fr.path, {}).setdefault(oid, []).extend(
                gotemplate.Change(OldValue=c.old, NewValue=c.new, Setter=c.setter or c.policy) for c in changes
            )
    namespace, _, name = auto.name.partition("/")
    data = gotemplate.flux_template_data({"namespace": namespace, "name": name}, files, dict(auto.template_values))
    try:
        parsed = gotemplate.parse(template, source=f"{auto.source.path}:{auto.source.line} messageTemplate")
        return parsed.render(data)
    except gotemplate.TemplateError as exc:
        raise ConfigError(f"ImageUpdateAutomation {auto.name}: the commit message template failed: {exc}") from exc


# --------------------------------------------------------------------------- signing keys


def _secret_file(directory: Path, key: str, what: str, *, required: bool) -> Path | None:
    path = directory / key
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if required:
            raise CredentialError(f"{what}: {path} does not exist; mount the Secret's {key!r} there") from None
        return None
    except OSError as exc:
        raise CredentialError(f"{what}: cannot read {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_KEY_BYTES:
        raise CredentialError(f"{what}: {path} is not a regular file of at most {MAX_KEY_BYTES:,} bytes")
    return path


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(0o700)
    return path


def signing_from_secret(
    auto: UpdateAutomation,
    credentials_dir: Path | None,
    scratch: Path,
    run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run,
) -> Signing | None:
    """The signing key of ``auto``, from its Secret mounted at ``credentials_dir/<name>/``.

    ``scratch`` is a private directory that lives as long as the commits it signs (the gpg
    home, and the small wrapper that hands gpg or ssh-keygen the passphrase from its file).
    """
    spec = auto.signing
    if spec is None:
        return None
    field_name = "spec.git.commit.signingKey.secretRef"
    what = f"ImageUpdateAutomation {auto.name} {field_name} {spec.secret!r}"
    if credentials_dir is None:
        raise CredentialError(f"{what}: give --credentials-dir, the directory the Secret is mounted under")
    directory = credentials_dir / spec.secret
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    if spec.type == "ssh":
        identity = _secret_file(directory, "identity", what, required=True)
        assert identity is not None
        password = _secret_file(directory, "password", what, required=False)
        if password is None:
            return Signing.ssh(identity)
        # ssh-keygen -Y sign reads the passphrase through SSH_ASKPASS when it is forced
        askpass = _script(scratch / "askpass", f"exec cat {shlex.quote(str(password))}")
        return Signing(
            str(identity), "ssh", None, None, (("SSH_ASKPASS", str(askpass)), ("SSH_ASKPASS_REQUIRE", "force"))
        )
    armored = _secret_file(directory, "git.asc", what, required=True)
    assert armored is not None
    passphrase = _secret_file(directory, "passphrase", what, required=False)
    home = scratch / "gnupg"
    home.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    base = ["gpg", "--batch", "--no-tty", "--quiet"]
    try:
        imported = run([*base, "--import", str(armored)], env=env, capture_output=True, check=False, timeout=60)
        if imported.returncode != 0:
            raise CredentialError(
                f"{what}: gpg cannot import git.asc: {imported.stderr.decode(errors='replace').strip()[:300]}"
            )
        listed = run(
            [*base, "--with-colons", "--list-secret-keys"], env=env, capture_output=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CredentialError(f"{what}: cannot run gpg to import git.asc ({exc}); install gnupg") from exc
    fingerprints = [line.split(":")[9] for line in listed.stdout.decode().splitlines() if line.startswith("fpr:")]
    if not fingerprints:
        raise CredentialError(f"{what}: git.asc holds no secret key; export it with `gpg --export-secret-keys --armor`")
    program = None
    if passphrase is not None:
        flags = "--batch --no-tty --pinentry-mode loopback --passphrase-file"
        program = str(_script(scratch / "gpg", f'exec gpg {flags} {shlex.quote(str(passphrase))} "$@"'))
    return Signing.gpg(fingerprints[0], program=program, gnupg_home=home)


# --------------------------------------------------------------------------- spec.interval


@dataclass
class AutomationClock:
    """When each automation last ran and what its policies had chosen then.

    The service keeps one across cycles; ``automator run --once`` uses a fresh one, so every
    automation is due.
    """

    now: Callable[[], float] = time.monotonic
    _last: dict[str, tuple[float, Mapping[str, str]]] = field(default_factory=dict)

    def not_due(self, auto: UpdateAutomation, choices: Mapping[str, str]) -> str | None:
        """Why ``auto`` need not run now, or None when it must: never ran, a policy of its changed
        its choice since it last ran, or ``spec.interval`` has passed."""
        last = self._last.get(auto.name)
        if last is None:
            return None
        at, chosen = last
        if dict(chosen) != dict(choices):
            return None
        left = auto.interval_seconds - (self.now() - at)
        if left <= 0:
            return None
        return f"no policy of it changed its choice, and spec.interval runs it again in {left:.0f}s"

    def ran(self, auto: UpdateAutomation, choices: Mapping[str, str]) -> None:
        self._last[auto.name] = (self.now(), dict(choices))
