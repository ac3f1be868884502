"""Flux ``ImageUpdateAutomation`` objects, read from the config repository as Flux users keep them.

An automation says which files are updated (``spec.update.path``), by which policies (the
ImagePolicies in its namespace that ``spec.policySelector`` matches), from which branch
(``spec.git.checkout.ref.branch``, else its GitRepository's ``spec.ref.branch``, else the
automator's own ``--branch``), to which branch (``spec.git.push.branch`` and/or
``spec.git.push.refspec``, with ``spec.git.push.options``), as whom (``spec.git.commit.author``,
``spec.git.commit.signingKey``), with what message (``spec.git.commit.messageTemplate`` and
``messageTemplateValues``, a Go template rendered as Flux renders it), how often
(``spec.interval``) and whether at all (``spec.suspend``).

What automator cannot honour is refused when the file loads, with its file, line and field:
a checkout of a tag, a semver range, a commit or another ref name (automator commits on
branches), an author without a name (git refuses one), a refspec whose source is not the
branch the commit is made on, an ``update.path`` outside the repository, a strategy other than
``Setters``. Nothing is dropped silently. This module is pure: it turns validated documents
into :class:`UpdateAutomation` values and answers which policies and files an automation owns.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from automator.policy.model import Policy, SourceLocation

SigningType = Literal["gpg", "ssh"]
DEFAULT_MESSAGE = "Update from image update automation"  # Flux's, when no messageTemplate is set


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry of a Kubernetes label selector."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return labels.get(self.key) in self.values
        return self.key not in labels or labels[self.key] not in self.values  # NotIn, as Kubernetes


@dataclass(frozen=True)
class Selector:
    """A Kubernetes label selector (``matchLabels`` and ``matchExpressions``, ANDed); empty selects all."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.expressions
        )


@dataclass(frozen=True)
class CommitSigning:
    """``spec.git.commit.signingKey``: a Secret (mounted as a directory under ``--credentials-dir``)
    with ``git.asc`` (and ``passphrase``) for gpg, or ``identity`` (and ``password``) for ssh."""

    type: SigningType
    secret: str


@dataclass(frozen=True)
class UpdateAutomation:
    """One ImageUpdateAutomation, every field resolved; see the module docstring."""

    name: str  # Flux's NamespacedName as it prints: "namespace/name"
    namespace: str
    source: SourceLocation
    source_ref: tuple[str, str]  # the GitRepository's (namespace, name)
    author_name: str
    author_email: str
    interval_seconds: float
    path: str = "."  # update.path, relative to the repository root, normalised ("." is the root)
    checkout_branch: str | None = None  # None: the GitRepository's branch, else the automator's --branch
    push_branch: str | None = None  # None: the checkout branch
    refspec: str | None = None
    push_options: tuple[tuple[str, str], ...] = ()
    signing: CommitSigning | None = None
    message_template: str | None = None
    template_values: tuple[tuple[str, str], ...] = ()
    selector: Selector = field(default_factory=Selector)
    suspend: bool = False
    origin: str = "flux/v1"
    git_url: str | None = None  # the GitRepository's spec.url, when the repository defines it

    @property
    def short_name(self) -> str:
        return self.name.split("/", 1)[1]

    def selects(self, policy: Policy) -> bool:
        """Whether ``policy`` is one of this automation's: an ImagePolicy in its namespace that its
        policySelector matches (Flux lists ImagePolicies of the automation's namespace only)."""
        namespace, _, _ = policy.name.rpartition(":")
        return namespace == self.namespace and self.selector.matches(dict(policy.labels))

    def owns(self, repo_path: str) -> bool:
        """Whether the file at ``repo_path`` (relative to the repository root) is under ``update.path``."""
        if self.path == ".":
            return True
        norm = posixpath.normpath(repo_path)
        return norm == self.path or norm.startswith(self.path + "/")

    def branch(self, default: str) -> str:
        """The branch this automation checks out, given the automator's ``--branch``."""
        return self.checkout_branch or default


def normalise_path(path: str | None) -> str | None:
    """``update.path`` relative to the repository root ("." for the root), or None when it leaves it."""
    if not path:
        return "."
    if path.startswith("/") or "\0" in path:
        return None
    norm = posixpath.normpath(path)
    if norm == ".." or norm.startswith("../"):
        return None
    return norm
