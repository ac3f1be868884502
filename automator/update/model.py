"""The rewrite stage's values: what to write (decisions) and what was written (results).

Everything here is a frozen dataclass; commit messages, PR bodies, ``automator plan`` and
logs render from these records rather than re-deriving anything from files.

    UpdateResult                 one run over a tree; empty means nothing to commit
    └── FileResult               one file: original and updated text
        └── ObjectChanges        one Kubernetes object (or the file itself for Helm values)
            └── Change           one scalar: file, line, old, new, policy
    UpdateWarning                something skipped or refused, with file and line
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from automator.policy.model import Policy, TagChoice
from automator.refs import ImageRef


@dataclass(frozen=True)
class Decision:
    """The image one policy wants in the files: its repository with the chosen tag (and digest)."""

    policy: Policy
    image: ImageRef

    def __post_init__(self) -> None:
        if self.image.tag is None:
            raise ValueError(f"decision for policy {self.policy.name!r} has no tag: {self.image}")

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def tag(self) -> str:
        assert self.image.tag is not None  # checked in __post_init__
        return self.image.tag

    @property
    def digest(self) -> str | None:
        return self.image.digest

    @classmethod
    def from_choice(cls, policy: Policy, choice: TagChoice) -> Decision | None:
        """The decision a :class:`TagChoice` amounts to, or None when nothing was chosen."""
        ref = choice.reference
        return None if ref is None else cls(policy, ref)


@dataclass(frozen=True)
class Resolution:
    """What a marker's policy reference resolved to: a decision, or why not."""

    decision: Decision | None
    setter: str  # "image", "tag", "name" or "digest"
    problem: str = ""


SETTERS = ("tag", "name", "digest")


def _name(candidate: Decision | str) -> str:
    return candidate.name if isinstance(candidate, Decision) else candidate


@dataclass(frozen=True)
class Decisions:
    """Decisions by policy name, and the lookups the rewrite needs.

    Marker references resolve as ``ns:name`` or ``name`` (optionally followed by ``:tag``,
    ``:name`` or ``:digest``): an exact policy name wins; otherwise a reference without a
    namespace matches the one policy with that short name, and a reference with a namespace
    matches a policy that has none.

    ``others`` names every other policy of the repository, the ones without a decision here,
    each with the reason (refused when loading, its scan failed, it chose nothing; ``""`` for
    a decision that belongs to another pull request).  They take part in every lookup, so a
    marker naming one of them is left alone -- never handed to a look-alike policy that
    happens to have a decision.
    """

    items: tuple[Decision, ...] = ()
    others: Mapping[str, str] = field(default_factory=dict)
    _by_name: Mapping[str, Decision] = field(init=False, repr=False, compare=False)
    _by_short: Mapping[str, tuple[Decision | str, ...]] = field(init=False, repr=False, compare=False)
    _by_repo: tuple[Mapping[str, tuple[Decision, ...]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Decision] = {}
        by_short: dict[str, list[Decision | str]] = {}
        for d in self.items:
            if d.name in by_name:
                raise ValueError(f"two decisions for policy {d.name!r}")
            by_name[d.name] = d
            by_short.setdefault(d.policy.short_name, []).append(d)
        for name in self.others:
            if name not in by_name:
                by_short.setdefault(name.rpartition(":")[2], []).append(name)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_short", {k: tuple(v) for k, v in by_short.items()})
        object.__setattr__(self, "_by_repo", (self._repositories(everyone=False), self._repositories(everyone=True)))

    @classmethod
    def of(cls, decisions: Iterable[Decision], others: Mapping[str, str] | None = None) -> Decisions:
        return cls(tuple(decisions), dict(others or {}))

    def subset(self, names: Iterable[str]) -> Decisions:
        """The decisions of ``names`` alone; the rest become ``others`` (another change's business)."""
        wanted = set(names)
        kept = tuple(d for d in self.items if d.name in wanted)
        return Decisions(kept, {**self.others, **{d.name: "" for d in self.items if d.name not in wanted}})

    @classmethod
    def from_choices(cls, policies: Iterable[Policy], choices: Iterable[TagChoice]) -> Decisions:
        """Pair each choice with its policy by name; choices without a tag are left out."""
        by_name = {p.name: p for p in policies}
        out = []
        for choice in choices:
            policy = by_name.get(choice.policy)
            if policy is None:
                continue
            decision = Decision.from_choice(policy, choice)
            if decision is not None:
                out.append(decision)
        return cls(tuple(out))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Decision]:
        return iter(self.items)

    def __getitem__(self, name: str) -> Decision:
        return self._by_name[name]

    def _policy(self, ref: str) -> tuple[Decision | str | None, str]:
        """The decision ``ref`` names, or the name of the other policy it names, or None; and a problem."""
        exact = self._by_name.get(ref)
        if exact is not None:
            return exact, ""
        if ref in self.others:
            return ref, self._withheld(ref)
        return self._fallback(ref)

    def _withheld(self, name: str) -> str:
        why = self.others[name]
        return f"policy {name!r} {why}; the marker is left as it is" if why else ""

    def _fallback(self, ref: str) -> tuple[Decision | str | None, str]:
        namespace, _, short = ref.rpartition(":")
        if ":" in namespace:
            return None, ""  # a namespace has no colon: "a:b:c" is a name with a setter suffix
        candidates = self._by_short.get(short, ())
        if namespace:
            candidates = tuple(c for c in candidates if ":" not in _name(c))
        if len(candidates) == 1:
            found = candidates[0]
            return found, "" if isinstance(found, Decision) else self._withheld(found)
        if len(candidates) > 1:
            names = ", ".join(sorted(_name(c) for c in candidates))
            return None, f"policy reference {ref!r} is ambiguous ({names}); write it as namespace:name"
        return None, ""

    def resolve(self, ref: str) -> Resolution:
        """Resolve a marker's ``$imagepolicy`` value (``ns:name[:tag|:name|:digest]``).

        Order: the exact policy name; then a setter suffix on a policy reference; then the
        loose matches (short name, or a namespaced reference to a policy without namespace).
        """
        exact = self._by_name.get(ref)
        if exact is not None:
            return Resolution(exact, "image")
        if ref in self.others:
            return Resolution(None, "image", self._withheld(ref))
        head, sep, suffix = ref.rpartition(":")
        if sep and suffix in SETTERS and head:
            found, problem = self._policy(head)
            if found is not None or problem:
                return Resolution(found if isinstance(found, Decision) else None, suffix, problem)
        found, problem = self._fallback(ref)
        if found is not None or problem:
            return Resolution(found if isinstance(found, Decision) else None, "image", problem)
        return Resolution(None, "image", f"unknown policy {ref!r}; the marker is left as it is")

    def marker_less(self, *, everyone: bool = False) -> Mapping[str, tuple[Decision, ...]]:
        """Decisions that apply without markers (all of them with ``everyone``), by canonical repository."""
        return self._by_repo[everyone]

    def _repositories(self, *, everyone: bool) -> Mapping[str, tuple[Decision, ...]]:
        out: dict[str, list[Decision]] = {}
        for d in self.items:
            if everyone or d.policy.marker_less:
                out.setdefault(d.policy.image.repository, []).append(d)
        return {k: tuple(v) for k, v in out.items()}


@dataclass(frozen=True, order=True)
class ObjectId:
    """The Kubernetes object a change lies in; all empty for a file that is not one (Helm values)."""

    api_version: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""

    def __str__(self) -> str:
        if not self.kind:
            return "-"
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind}/{where}" if where else self.kind


@dataclass(frozen=True, order=True)
class Change:
    """One scalar rewritten: its file, 1-based line, old and new value, and the policy behind it."""

    file: str
    line: int
    old: str
    new: str
    policy: str
    setter: str = field(default="", compare=False)  # the marker, as Flux names it: "ns:name" or "ns:name:tag"


@dataclass(frozen=True)
class ObjectChanges:
    object: ObjectId
    changes: tuple[Change, ...]


@dataclass(frozen=True, order=True)
class UpdateWarning:
    """Something skipped or refused; ``line`` is 1-based, 0 when the whole file is meant."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass(frozen=True)
class FileResult:
    """The outcome for one file; ``text`` equals ``original`` when nothing changed."""

    path: str
    original: str
    text: str
    objects: tuple[ObjectChanges, ...] = ()
    warnings: tuple[UpdateWarning, ...] = ()

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for o in self.objects for c in o.changes)

    @property
    def changed(self) -> bool:
        return self.text != self.original


@dataclass(frozen=True)
class UpdateResult:
    """One run over a tree: the files that changed, and every warning raised on the way."""

    files: tuple[FileResult, ...] = ()
    warnings: tuple[UpdateWarning, ...] = ()
    scanned: int = 0  # files looked at
    parsed: int = 0  # files that passed the byte pre-filter and were parsed

    @property
    def empty(self) -> bool:
        """True when nothing changed: nothing to commit."""
        return not any(f.changed for f in self.files)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for f in self.files for c in f.changes)

    @property
    def policies(self) -> tuple[str, ...]:
        """Names of the policies behind at least one change, sorted."""
        return tuple(sorted({c.policy for c in self.changes}))

    def by_policy(self) -> Mapping[str, tuple[Change, ...]]:
        out: dict[str, list[Change]] = {}
        for c in self.changes:
            out.setdefault(c.policy, []).append(c)
        return {k: tuple(v) for k, v in sorted(out.items())}
