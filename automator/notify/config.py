"""The notifications file (``--notifications FILE``): one format for both programs.

Validated when it loads, through the same mechanism as policy files and ``automator.yaml``
(:func:`automator.policy.yamldocs.read_documents` for positions, pydantic models checked by
:func:`automator.policy.loader.validate_document`), so an error names the file, the line and
the field. Secrets (a Slack or Teams URL, an HMAC key) are named by file and read through
:class:`automator.httpd.SecretFile`: read at load (a missing file fails then), read again when
the file changes (a rotated Kubernetes Secret), never shown.

    apiVersion: automator.dev/v1alpha1
    kind: Notifications
    spec:
      failingCycles: 3
      notifiers:
        - name: team-chat
          type: slack
          urlFile: /var/run/secrets/slack/url
          events: [pullRequestMerged, policyFailing, syncFailed]
          policies: ["podinfo*"]
          rateLimit: {count: 20, per: 1m}
          dedupe: 1h
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from automator.duration import parse_duration
from automator.errors import ConfigError, PolicyFileError
from automator.httpd import SecretFile
from automator.notify.events import EVENT_KINDS, Event
from automator.policy.loader import validate_document
from automator.policy.yamldocs import Document, SyntaxProblem, read_documents

NotifierType = Literal["webhook", "slack", "teams", "pullRequestComment"]
MAX_FILE = 256 * 1024  # a notifications file is a few dozen lines


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False, frozen=True)


def _duration(value: str) -> float:
    seconds = parse_duration(value)
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds


class RateLimitSpec(_Model):
    count: Annotated[int, Field(ge=1, le=10_000)] = 20
    per: str = "1m"

    @field_validator("per")
    @classmethod
    def _per(cls, value: str) -> str:
        if _duration(value) <= 0:
            raise ValueError("per must be a positive duration, like '1m'")
        return value


class NotifierSpec(_Model):
    name: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    type: NotifierType
    url: str | None = None
    url_file: str | None = None
    secret_file: str | None = None
    events: list[str] | None = None
    policies: list[str] | None = None
    rate_limit: RateLimitSpec = RateLimitSpec()
    dedupe: str = "1h"
    timeout: str = "10s"

    @field_validator("events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        for name in value or ():
            if name not in EVENT_KINDS:
                raise ValueError(f"unknown event {name!r}; events are: {', '.join(EVENT_KINDS)}")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("url must be an http:// or https:// address")
        return value

    @field_validator("dedupe", "timeout")
    @classmethod
    def _durations(cls, value: str) -> str:
        _duration(value)
        return value

    @model_validator(mode="after")
    def _where(self) -> NotifierSpec:
        if self.type == "pullRequestComment":
            if self.url or self.url_file or self.secret_file:
                raise ValueError("a pullRequestComment notifier comments through the forge: it takes no url or secret")
            return self
        if (self.url is None) == (self.url_file is None):
            raise ValueError(f"a {self.type} notifier needs exactly one of url and urlFile")
        if self.type != "webhook" and self.url is not None:
            raise ValueError(f"a {self.type} URL is a secret: put it in a file and name it with urlFile")
        if self.secret_file is not None and self.type != "webhook":
            raise ValueError("secretFile signs webhook bodies; slack and teams URLs carry their own secret")
        return self


class NotificationsSpec(_Model):
    failing_cycles: Annotated[int, Field(ge=1, le=1000)] = 3
    notifiers: list[NotifierSpec] = []

    @model_validator(mode="after")
    def _unique(self) -> NotificationsSpec:
        names = [n.name for n in self.notifiers]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"notifier names must be unique: {', '.join(doubled)}")
        return self


class NotificationsFile(_Model):
    api_version: Literal["automator.dev/v1alpha1"]
    kind: Literal["Notifications"]
    metadata: dict[str, object] | None = None
    spec: NotificationsSpec = NotificationsSpec()


# --------------------------------------------------------------------------- the values


@dataclass(frozen=True)
class Notifier:
    """One receiver, parsed: where to send, what to send, how often at most."""

    name: str
    type: NotifierType
    url: Callable[[], str] | None = field(default=None, repr=False, compare=False)  # read per delivery
    secret: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)
    events: frozenset[str] | None = None  # None: every event
    policies: tuple[str, ...] | None = None  # None: every policy; globs
    rate_count: int = 20
    rate_per: float = 60.0
    dedupe: float = 3600.0
    timeout: float = 10.0

    def wants(self, event: Event) -> bool:
        """The events and policies filters. An event naming no policy (the sync's) passes the
        policies filter; the events filter decides for it."""
        if self.events is not None and event.kind not in self.events:
            return False
        if self.type == "pullRequestComment" and event.pull_request is None:
            return False
        if self.policies is None or not event.policies:
            return True
        return any(fnmatch.fnmatchcase(p, pat) for p in event.policies for pat in self.policies)


@dataclass(frozen=True)
class Notifications:
    """The whole file: the notifiers and the automator's failing-cycles threshold."""

    notifiers: tuple[Notifier, ...]
    failing_cycles: int = 3
    path: str = ""


def _from_file(path: str, flag: str) -> Callable[[], str]:
    secret = SecretFile(path, flag)
    return lambda: secret().decode()


def _fixed(url: str) -> Callable[[], str]:
    return lambda: url


def _notifier(spec: NotifierSpec, index: int, shown: str) -> Notifier:
    where = f"{shown}: spec.notifiers[{index}]"
    url = _from_file(spec.url_file, f"{where}.urlFile") if spec.url_file else _fixed(spec.url) if spec.url else None
    secret = SecretFile(spec.secret_file, f"{where}.secretFile") if spec.secret_file else None
    return Notifier(
        spec.name,
        spec.type,
        url,
        secret,
        frozenset(spec.events) if spec.events is not None else None,
        tuple(spec.policies) if spec.policies is not None else None,
        spec.rate_limit.count,
        _duration(spec.rate_limit.per),
        _duration(spec.dedupe),
        max(_duration(spec.timeout), 0.1),
    )


def _document(text: str, shown: str) -> Document:
    docs = [d for d in read_documents(text, every=True) if not (isinstance(d, Document) and d.data is None)]
    if len(docs) != 1:
        found = f"found {len(docs)}" if docs else "the file is empty"
        raise PolicyFileError(f"expected one Notifications document; {found}", path=shown, line=1)
    doc = docs[0]
    if isinstance(doc, SyntaxProblem):
        raise PolicyFileError(doc.message, path=shown, line=doc.position.line, column=doc.position.column)
    if not isinstance(doc.data, dict):
        raise PolicyFileError("the top level must be a mapping (apiVersion, kind, spec)", path=shown, line=1)
    return doc


def load_notifications(path: Path, *, shown: str | None = None) -> Notifications:
    """Read and validate ``path``; :class:`PolicyFileError` (file, line, field) when it is wrong,
    :class:`ConfigError` when it or a file it names cannot be read."""
    shown = shown or str(path)
    try:
        if path.stat().st_size > MAX_FILE:
            raise ConfigError(f"{shown}: larger than {MAX_FILE // 1024} KiB; is it the notifications file?")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the notifications file {shown}: {exc}") from None
    doc = _document(text, shown)
    model, errors = validate_document(NotificationsFile, doc, shown)
    if errors:
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{shown}: {len(errors)} problems:\n" + "\n".join(f"  {e}" for e in errors))
    assert isinstance(model, NotificationsFile)
    spec = model.spec
    notifiers = tuple(_notifier(n, i, shown) for i, n in enumerate(spec.notifiers))
    return Notifications(notifiers, spec.failing_cycles, shown)
