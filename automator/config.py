"""The automation config: ``automator.yaml`` in the config repo, overridable by flags and env.

    apiVersion: automator.dev/v1alpha1
    kind: Automation
    spec:
      git: {url, branch, path, auth: {tokenEnv|tokenFile, username, sshKeyFile, knownHostsFile}}
      commit: {author: {name, email}, messageTemplate, signing: {format: ssh|openpgp, key}}
      mode: pull-request | direct
      pullRequest: {branchPrefix, branchTemplate, titleTemplate, bodyTemplate, groups,
                    labels, reviewers, teamReviewers, assignees, draft, autoMerge, mergeMethod,
                    maxOpen, maxOpenedPerHour}
      forge: {provider: github|gitlab|none, url, repository, auth: {tokenEnv|tokenFile, app}}

Validated like policy files: unknown fields, wrong types and template syntax errors are
reported with file, line, column and field path.  Secrets are never values in this file:
it names the environment variable or file that holds them.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from jinja2 import TemplateSyntaxError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from automator import gotemplate
from automator.errors import ConfigError, CredentialError, PolicyFileError
from automator.policy.loader import validate_document
from automator.policy.yamldocs import Document, SyntaxProblem, read_documents
from automator.templates import DEFAULT_BRANCH, DEFAULT_MESSAGE, DEFAULT_TITLE, SAMPLE_CONTEXT, compile_template, render

CONFIG_FILE = "automator.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False, frozen=True)


def _template(value: str) -> str:
    """Compile, then render against a sample change record, so a misspelt variable fails at load."""
    try:
        compile_template(value)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template error on its line {exc.lineno}: {exc.message}{_flux_hint(value)}") from None
    try:
        render(value, SAMPLE_CONTEXT, what="sample")
    except ConfigError as exc:
        reason = str(exc).replace("the sample template failed: ", "").replace("; check automator.yaml", "")
        raise ValueError(f"{reason} (rendered against a sample change)") from None
    return value


def _flux_hint(value: str) -> str:
    """A hint when a Jinja2 template that fails to parse is a Go template, as Flux writes them."""
    try:
        gotemplate.parse(value, source="template")
    except gotemplate.TemplateError:
        return ""
    return (
        "; this is a Go text/template, as Flux's messageTemplate is: automator.yaml templates are Jinja2 "
        "(e.g. {{ .Values.x }} is {{ x }} there). Keep a Flux template on its ImageUpdateAutomation's "
        "spec.git.commit.messageTemplate, where automator renders it as Flux does (docs/migrating-from-flux.md)"
    )


class SecretRef(_Model):
    """Where a secret lives: an environment variable or a file (a mounted Secret)."""

    token_env: StrictStr | None = None
    token_file: StrictStr | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if self.token_env and self.token_file:
            raise ValueError("set tokenEnv or tokenFile, not both")
        return self

    def resolve(self, what: str) -> str:
        if self.token_env:
            value = os.environ.get(self.token_env, "")
            if not value:
                raise CredentialError(f"{what}: environment variable {self.token_env} is empty or unset")
            return value.strip()
        if self.token_file:
            try:
                return Path(self.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CredentialError(f"{what}: cannot read token file {self.token_file}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise CredentialError(f"{what}: token file {self.token_file} is not UTF-8 text") from None
        return ""


class GitAuth(SecretRef):
    username: StrictStr = "x-access-token"
    ssh_key_file: StrictStr | None = None
    known_hosts_file: StrictStr | None = None


class GitSpec(_Model):
    url: StrictStr | None = Field(
        default=None, description="Remote URL of the config repo (https, ssh, file or a path)."
    )
    branch: StrictStr = "main"
    path: StrictStr = Field(default=".", description="Sub-directory holding policies and manifests.")
    auth: GitAuth = GitAuth()


class Author(_Model):
    name: StrictStr = "automator"
    email: StrictStr = "automator@users.noreply.github.com"


class SigningSpec(_Model):
    format: Literal["ssh", "openpgp"] = "ssh"
    key: StrictStr = Field(description="SSH private key file, or the GPG key id.")


class CommitSpec(_Model):
    author: Author = Author()
    message_template: StrictStr = DEFAULT_MESSAGE
    signing: SigningSpec | None = None

    _t = field_validator("message_template")(classmethod(lambda cls, v: _template(v)))


class GroupSpec(_Model):
    name: StrictStr
    policies: list[StrictStr] = Field(description="Policy names or globs ('apps:*').")


class PullRequestSpec(_Model):
    branch_prefix: StrictStr = "automator/"
    branch_template: StrictStr = DEFAULT_BRANCH
    title_template: StrictStr = DEFAULT_TITLE
    body_template: StrictStr | None = None
    groups: list[GroupSpec] = Field(default_factory=list, description="Default: one pull request per policy.")
    labels: list[StrictStr] = Field(default_factory=list)
    reviewers: list[StrictStr] = Field(default_factory=list)
    team_reviewers: list[StrictStr] = Field(default_factory=list)
    assignees: list[StrictStr] = Field(default_factory=list)
    draft: StrictBool = False
    auto_merge: StrictBool = False
    merge_method: Literal["merge", "squash", "rebase"] = "merge"
    max_open: StrictInt | None = Field(
        default=None,
        ge=1,
        description="At most this many of our pull requests open at once; groups past it wait (updates go on).",
    )
    max_opened_per_hour: StrictInt | None = Field(
        default=None,
        ge=1,
        description="At most this many pull requests opened in any hour (from --state-dir, else the forge's times).",
    )

    _t = field_validator("branch_template", "title_template", "body_template")(
        classmethod(lambda cls, v: v if v is None else _template(v))
    )


class GitHubApp(_Model):
    id: int
    installation_id: int
    private_key_file: StrictStr


class ForgeAuth(SecretRef):
    app: GitHubApp | None = None


class ForgeSpec(_Model):
    provider: Literal["github", "gitlab", "none"] = "none"
    url: StrictStr | None = Field(
        default=None, description="API base: GitHub Enterprise https://HOST/api/v3, GitLab URL."
    )
    repository: StrictStr | None = Field(default=None, description="owner/repo on GitHub, group/project on GitLab.")
    auth: ForgeAuth = ForgeAuth()


class AutomationSpec(_Model):
    marker_less_paths: list[StrictStr] = Field(
        default_factory=list, description="Globs of files where every policy also rewrites fields without markers."
    )
    git: GitSpec = GitSpec()
    commit: CommitSpec = CommitSpec()
    mode: Literal["pull-request", "direct"] = "pull-request"
    pull_request: PullRequestSpec = PullRequestSpec()
    forge: ForgeSpec = ForgeSpec()


class Automation(_Model):
    """The whole ``automator.yaml`` document."""

    api_version: Literal["automator.dev/v1alpha1"]
    kind: Literal["Automation"]
    metadata: dict[str, object] | None = None
    spec: AutomationSpec = AutomationSpec()


DEFAULT = Automation.model_validate({"apiVersion": "automator.dev/v1alpha1", "kind": "Automation"})


def load_config(path: Path, *, shown: str | None = None) -> Automation:
    """Read and validate one ``automator.yaml``; raise :class:`PolicyFileError` with the position."""
    shown = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {shown}: {exc}") from exc
    docs = [d for d in read_documents(text, every=True) if not (isinstance(d, Document) and d.data is None)]
    if not docs:
        raise PolicyFileError("the file is empty; expected an Automation document", path=shown, line=1)
    if len(docs) != 1:
        raise PolicyFileError(f"expected one YAML document, found {len(docs)}", path=shown, line=1)
    doc = docs[0]
    if isinstance(doc, SyntaxProblem):
        raise PolicyFileError(doc.message, path=shown, line=doc.position.line, column=doc.position.column)
    if not isinstance(doc.data, dict):
        raise PolicyFileError(
            "the top level must be a mapping (apiVersion, kind, spec)", path=shown, line=doc.start.line
        )
    model, errors = validate_document(Automation, doc, shown)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{shown}: {len(errors)} problems:\n" + "\n".join(f"  {e}" for e in errors))
    assert isinstance(model, Automation)
    return model


@dataclass(frozen=True)
class Group:
    """Policies proposed together in one pull request."""

    name: str
    policies: tuple[str, ...]


def group_policies(names: list[str], spec: PullRequestSpec) -> list[Group]:
    """Each policy in the first configured group whose pattern matches it, else a group of its own."""
    grouped: dict[str, list[str]] = {}
    for name in names:
        target = next(
            (g.name for g in spec.groups if any(fnmatch.fnmatchcase(name, pat) for pat in g.policies)),
            name,
        )
        grouped.setdefault(target, []).append(name)
    return [Group(group, tuple(members)) for group, members in grouped.items()]


_EXCLUSIVE = {"tokenEnv": "tokenFile", "tokenFile": "tokenEnv"}

# What an automator.yaml committed to the config repo may set. Everything that decides where
# credentials come from or go to (git, forge, signing) comes from flags, env or --config only:
# whoever can merge to the base branch must not be able to send our tokens elsewhere.
REPO_ALLOWED = {
    "spec": {"commit", "mode", "pullRequest", "markerLessPaths"},
    "spec.commit": {"author", "messageTemplate"},
}


def check_repo_config(config: Automation, shown: str) -> None:
    """Refuse fields an in-repo ``automator.yaml`` must not set (see ``REPO_ALLOWED``)."""
    for where, model in (("spec", config.spec), ("spec.commit", config.spec.commit)):
        allowed = REPO_ALLOWED[where]
        for name in sorted(model.model_fields_set):
            alias = to_camel(name)
            if alias not in allowed:
                raise ConfigError(
                    f"{shown}: {where}.{alias} cannot be set in the config repo's automator.yaml "
                    f"(it decides where credentials go); set it with a flag, an AUTOMATOR_* variable or --config. "
                    f"Allowed there: {', '.join(sorted(allowed))}"
                )


def with_overrides(config: Automation, overrides: dict[str, object]) -> Automation:
    """``config`` with dotted-path values replaced (``spec.git.url``); None values are ignored.

    Flags and environment variables win over the file; the result is validated again.
    """
    data = config.model_dump(by_alias=True, exclude_none=True)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
        sibling = _EXCLUSIVE.get(last)
        if sibling is not None:
            node.pop(sibling, None)  # a flag's token source replaces the file's, not joins it
    return Automation.model_validate(data)


_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


def repository_from_url(url: str) -> str | None:
    """``owner/repo`` (GitHub) or ``group/sub/project`` (GitLab) from a git remote URL, if it has one.

    ``https://github.com/acme/config.git``, ``git@github.com:acme/config.git`` and
    ``ssh://git@gitlab.example.com:2222/platform/infra/config`` all work; local paths and
    ``file://`` URLs have none.
    """
    url = url.strip()
    if "://" in url:
        scheme, _, rest = url.partition("://")
        if scheme == "file":
            return None
        path = rest.partition("/")[2]
    else:
        m = _SCP_LIKE.match(url)
        if m is None or url.startswith(("/", ".")):
            return None
        path = m.group("path")
    path = path.split("?", 1)[0].strip("/").removesuffix(".git").strip("/")
    if path.startswith("scm/"):  # Bitbucket Server style prefixes are not ours to guess
        return None
    return path if path.count("/") >= 1 else None


def completed(config: Automation) -> Automation:
    """Fill what can be derived: the forge repository from the git URL when it is not set."""
    forge, git = config.spec.forge, config.spec.git
    if forge.provider == "none" or forge.repository or not git.url:
        return config
    repository = repository_from_url(git.url)
    if repository is None:
        return config
    prefix = urlsplit(forge.url).path.strip("/") if forge.provider == "gitlab" and forge.url else ""
    if prefix and repository.startswith(prefix + "/"):  # GitLab served under a path: /gitlab/group/project
        repository = repository[len(prefix) + 1 :]
    return with_overrides(config, {"spec.forge.repository": repository})


def _host_of(url: str) -> str | None:
    if "://" in url:
        scheme, _, _ = url.partition("://")
        return None if scheme == "file" else (urlsplit(url).hostname or None)
    m = _SCP_LIKE.match(url)
    return m.group("host").lower() if m is not None and not url.startswith(("/", ".")) else None


_API_HOSTS = {"api.github.com": "github.com"}


def forge_host(spec: ForgeSpec) -> str | None:
    default = "https://gitlab.com" if spec.provider == "gitlab" else "https://api.github.com"
    host = _host_of(spec.url or default)
    return _API_HOSTS.get(host, host) if host else None


def git_token_fits_forge(config: Automation) -> bool:
    """Whether the git token may be sent to the forge API: only when both live on one host."""
    git_host = _host_of(config.spec.git.url or "")
    return git_host is not None and git_host == forge_host(config.spec.forge)
