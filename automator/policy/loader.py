"""Find and validate every image policy in a config repository.

:func:`load_policies` walks the repository (skipping ``.git``, hidden directories,
symlinks and non-YAML files), reads only files that mention ``ImagePolicy`` or
``ImageRepository`` and turns three kinds of documents into :class:`Policy` values:

* native ``automator.dev/v1alpha1`` ``ImagePolicy``;
* Flux ``image.toolkit.fluxcd.io/v1beta2`` and ``/v1`` ``ImagePolicy``, joined with the
  ``ImageRepository`` its ``imageRepositoryRef`` names (same namespace when omitted).

Everything is validated eagerly; each problem becomes a :class:`PolicyFileError` with the
path (relative to the root), line, column and field path, and never stops the other
documents.  Other Kubernetes documents are ignored.

Names are what setter markers reference.  Flux builds its marker keys as
``namespace:name`` from the ImagePolicy object (image-automation-controller
``pkg/update/setters.go``), so Flux policies are always named ``namespace:name``; a
Flux document without ``metadata.namespace`` gets ``flux-system``, the namespace
``flux bootstrap`` and ``flux create --export`` use.  Native policies are named
``namespace:name`` when they set a namespace, else ``name``.  :meth:`PolicySet.get`
also resolves a bare ``name`` when exactly one policy has that short name.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from automator.duration import parse_duration
from automator.errors import PolicyFileError
from automator.policy.model import (
    DEFAULT_EXCLUDES,
    AlphabeticalChoice,
    Choice,
    DigestChoice,
    DigestMode,
    NewestBuildChoice,
    NumericalChoice,
    Order,
    Policy,
    SemverChoice,
    SourceLocation,
    TagFilter,
)
from automator.policy.schema_models import (
    FLUX_API_VERSIONS,
    FLUX_GROUP,
    NATIVE_API_VERSION,
    FluxImagePolicyV1,
    FluxImagePolicyV1beta2,
    FluxImageRepository,
    NativeImagePolicy,
    OrderPolicy,
)
from automator.policy.yamldocs import KINDS, Document, Path_, SyntaxProblem, read_documents
from automator.refs import parse_reference

FLUX_DEFAULT_NAMESPACE = "flux-system"
YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 4 << 20  # 4 MiB: thousands of policies; a 50 MB file took 152 s and 2.9 GB to load


@dataclass(frozen=True)
class PolicySet:
    """Every policy found in a repository, and every problem; look policies up by name."""

    policies: tuple[Policy, ...] = ()
    errors: tuple[PolicyFileError, ...] = ()
    # policies a file declares but that did not load, by the name a marker would use: a marker
    # naming one is left alone, never handed to a look-alike (see update.Decisions.others)
    refused: Mapping[str, str] = field(default_factory=dict)
    _by_name: dict[str, Policy] = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_short: dict[str, list[Policy]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for p in self.policies:
            self._by_name.setdefault(p.name, p)
            self._by_short.setdefault(p.short_name, []).append(p)

    def get(self, name: str) -> Policy | None:
        """The policy a marker names: exact ``namespace:name`` or ``name``; a bare name
        also matches the one policy with that short name (None when ambiguous)."""
        found = self._by_name.get(name)
        if found is None and ":" not in name:
            same = self._by_short.get(name, [])
            found = same[0] if len(same) == 1 else None
        return found

    def __getitem__(self, name: str) -> Policy:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.policies)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- walking ------------------------------------------------------------------------------


def _yaml_files(root: Path, paths: Sequence[Path] | None, out: _Collected) -> Iterator[Path]:
    starts = [root] if paths is None else [p if p.is_absolute() else root / p for p in paths]
    seen: set[Path] = set()
    for start in starts:
        if not start.exists():
            what = "directory" if start == root else "file or directory"
            out.errors.append(PolicyFileError(f"no such {what}; check the path", path=_rel(root, start)))
            continue
        if start.is_file() and not start.is_symlink():
            if start not in seen:
                seen.add(start)
                yield start
            continue
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath, name)
                wanted = name.endswith(YAML_SUFFIXES) and not name.startswith(".") and not path.is_symlink()
                if wanted and path not in seen:
                    seen.add(path)
                    yield path


def _rel(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.path.relpath(path, root).replace(os.sep, "/")


# --- documents -> models --------------------------------------------------------------------


@dataclass
class _Located:
    """A validated document with where it came from."""

    model: Any
    doc: Document
    path: str

    def at(self, fpath: Path_, *, key: bool = False) -> SourceLocation:
        pos = self.doc.locate(fpath, key=key)
        return SourceLocation(self.path, pos.line, pos.column)

    def error(self, message: str, fpath: Path_, *, key: bool = False, at: Path_ | None = None) -> PolicyFileError:
        """An error about field ``fpath``, positioned at ``at`` (default: the field itself)."""
        pos = self.doc.locate(fpath if at is None else at, key=key)
        return PolicyFileError(message, path=self.path, line=pos.line, column=pos.column, field=_dotted(fpath))


def _dotted(fpath: Path_) -> str | None:
    out = ""
    for part in fpath:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _fields_of(model: type[BaseModel], loc: Path_) -> list[str] | None:
    """The field names (aliases) allowed at ``loc`` below ``model``, for 'unknown field' hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        match = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if match is None:
            return None
        current = _model_in(match.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return None


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _validation_errors(exc: ValidationError, model: type[BaseModel], doc: Document, path: str) -> list[PolicyFileError]:
    import difflib  # noqa: PLC0415 - for the hints of broken documents only; valid ones load without it

    errors = exc.errors(include_url=False)
    unknown = [tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
    out = []
    here = _Located(None, doc, path)
    for err in errors:
        loc: Path_ = tuple(p for p in err["loc"] if isinstance(p, int | str))
        kind = err["type"]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if kind == "extra_forbidden":
            out.append(here.error(_unknown_field(model, loc, errors), loc, key=True))
        elif kind == "missing":
            siblings = [str(u[-1]) for u in unknown if u[:-1] == loc[:-1]]
            if difflib.get_close_matches(str(loc[-1]), siblings, n=1, cutoff=0.6):
                continue  # a misspelt field: the unknown-field error says it all
            out.append(here.error(f"missing required field {loc[-1]!r}", loc, key=True, at=loc[:-1]))
        else:
            got = err.get("input")
            if kind.endswith("_type") and not isinstance(got, dict | list):
                msg = f"{msg}, got {type(got).__name__} {got!r}"
                if kind == "string_type":
                    msg += "; quote it to make it a string"
                elif kind == "bool_type":
                    msg += "; write true or false"
            out.append(here.error(msg, loc, key=isinstance(got, dict | list)))
    return out


def _unknown_field(model: type[BaseModel], loc: Path_, errors: Sequence[Any]) -> str:
    import difflib  # noqa: PLC0415 - see _validation_errors

    name = str(loc[-1])
    allowed = _fields_of(model, loc[:-1]) or []
    missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == loc[:-1]]
    close = difflib.get_close_matches(name, missing or allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = f"; fields allowed here: {', '.join(allowed)}" if allowed else ""
    return f"unknown field {name!r}{hint}{listed}"


def validate_document(model: type[BaseModel], doc: Document, path: str) -> tuple[Any, list[PolicyFileError]]:
    """Validate one document against a pydantic model; errors carry file, line, column and field."""
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        return None, _validation_errors(exc, model, doc, path)


_validate = validate_document


# --- models -> policies ----------------------------------------------------------------------


def _order(p: OrderPolicy) -> Order:
    return Order(p.order)


def _native_choice(spec: Any) -> Choice:
    c = spec.policy
    if c.semver is not None:
        return SemverChoice(c.semver.range, c.semver.allow_prerelease, c.semver.strict)
    if c.numerical is not None:
        return NumericalChoice(_order(c.numerical))
    if c.alphabetical is not None:
        return AlphabeticalChoice(_order(c.alphabetical))
    if c.newest_build is not None:
        return NewestBuildChoice()
    return DigestChoice(c.digest.tag)


def _labels(meta: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((meta.labels or {}).items()))


def _native_policy(item: _Located) -> Policy:
    m: NativeImagePolicy = item.model
    spec = m.spec
    name = policy_name(m.metadata.namespace, m.metadata.name, flux=False)
    tag_filter = None
    if spec.filter_tags is not None:
        tag_filter = TagFilter(spec.filter_tags.pattern, spec.filter_tags.extract or None)
    exclude = (DEFAULT_EXCLUDES if spec.exclude_defaults else ()) + tuple(spec.exclude)
    return Policy(
        name=name,
        image=parse_reference(spec.image),
        choice=_native_choice(spec),
        source=item.at(("metadata", "name")),
        filter=tag_filter,
        exclude=exclude,
        digest=DigestMode(spec.digest_reflection_policy),
        credentials=spec.credentials.name if spec.credentials else None,
        interval_seconds=parse_duration(spec.interval),
        suspend=spec.suspend,
        variant_aware=spec.variant_aware,
        allow_downgrade=spec.allow_downgrade,
        platform=spec.platform,
        insecure=spec.insecure,
        marker_less=spec.marker_less,
        labels=_labels(m.metadata),
    )


def _flux_policy(item: _Located, repo: _Located) -> Policy:
    pol: FluxImagePolicyV1beta2 | FluxImagePolicyV1 = item.model
    rep: FluxImageRepository = repo.model
    namespace = pol.metadata.namespace or FLUX_DEFAULT_NAMESPACE
    c = pol.spec.policy
    choice: Choice
    if c.semver is not None:
        choice = SemverChoice(c.semver.range, allow_prerelease=False, strict=True)
    elif c.alphabetical is not None:
        choice = AlphabeticalChoice(_order(c.alphabetical))
    else:
        assert c.numerical is not None
        choice = NumericalChoice(_order(c.numerical))
    ft = pol.spec.filter_tags
    tag_filter = TagFilter(ft.pattern, ft.extract or None) if ft is not None and ft.pattern else None
    rs = rep.spec
    suspend = rs.suspend or bool(getattr(pol.spec, "suspend", False))
    return Policy(
        name=policy_name(namespace, pol.metadata.name, flux=True),
        image=parse_reference(rs.image),
        choice=choice,
        source=item.at(("metadata", "name")),
        filter=tag_filter,
        exclude=DEFAULT_EXCLUDES + tuple(p for p in rs.exclusion_list or () if p not in DEFAULT_EXCLUDES),
        digest=DigestMode(pol.spec.digest_reflection_policy),
        credentials=rs.secret_ref.name if rs.secret_ref else None,
        interval_seconds=parse_duration(rs.interval),
        suspend=suspend,
        insecure=rs.insecure,
        labels=_labels(pol.metadata),
        provider=rs.provider,
        cert_secret=rs.cert_secret_ref.name if rs.cert_secret_ref else None,
        service_account=rs.service_account_name,
        timeout_seconds=parse_duration(rs.timeout) if rs.timeout else None,
        origin="flux/" + pol.api_version.rsplit("/", 1)[1],
    )


# --- the loader --------------------------------------------------------------------------------


@dataclass
class _Collected:
    native: list[_Located] = field(default_factory=list)
    flux_policies: list[_Located] = field(default_factory=list)
    flux_repos: list[_Located] = field(default_factory=list)
    errors: list[PolicyFileError] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def refuse(self, doc: Document, why: str = "was refused when the policies loaded (see its errors)") -> None:
        name = _declared_name(doc.data)
        if name is not None:
            self.refused.setdefault(name, why)


def _declared_name(data: Any) -> str | None:
    """The name a marker would give the ImagePolicy ``data`` declares, read from the raw document."""
    if not isinstance(data, dict) or data.get("kind") != "ImagePolicy":
        return None
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        return None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    api = data.get("apiVersion")
    flux = isinstance(api, str) and api.startswith(FLUX_GROUP + "/")
    return policy_name(namespace if isinstance(namespace, str) else None, name, flux=flux)


def policy_name(namespace: str | None, name: str, *, flux: bool) -> str:
    """The name markers use: ``namespace:name``; a Flux policy without a namespace is in
    flux-system, a native one without a namespace is just ``name``."""
    namespace = namespace or (FLUX_DEFAULT_NAMESPACE if flux else None)
    return f"{namespace}:{name}" if namespace else name


def _classify(doc: Document, path: str, out: _Collected) -> None:
    data = doc.data
    api, kind = data.get("apiVersion"), data.get("kind")
    if kind not in KINDS or not isinstance(api, str):
        return
    here = _Located(None, doc, path)
    if api.startswith(FLUX_GROUP + "/") and api not in FLUX_API_VERSIONS:
        supported = " or ".join(FLUX_API_VERSIONS)
        out.errors.append(here.error(f"{kind} {api!r} is not supported; migrate it to {supported}", ("apiVersion",)))
        out.refuse(doc, f"has apiVersion {api}, which is not supported (migrate it)")
        return
    if api.startswith("automator.dev/") and (api != NATIVE_API_VERSION or kind != "ImagePolicy"):
        out.errors.append(
            here.error(f"{api!r} {kind} is not a known kind; use apiVersion {NATIVE_API_VERSION}, kind ImagePolicy", ())
        )
        return
    model: type[BaseModel]
    if api == NATIVE_API_VERSION:
        model, bucket = NativeImagePolicy, out.native
    elif kind == "ImageRepository" and api in FLUX_API_VERSIONS:
        model, bucket = FluxImageRepository, out.flux_repos
    elif api in FLUX_API_VERSIONS:
        model = FluxImagePolicyV1 if api.endswith("/v1") else FluxImagePolicyV1beta2
        bucket = out.flux_policies
    else:
        return  # someone else's ImagePolicy (Portieris, Kyverno...): not ours
    value, errors = _validate(model, doc, path)
    out.errors.extend(errors)
    if value is not None:
        bucket.append(_Located(value, doc, path))
    else:
        out.refuse(doc)


def _read_file(root: Path, file: Path, out: _Collected) -> None:
    rel = _rel(root, file)
    try:
        if not stat.S_ISREG(os.lstat(file).st_mode):  # a FIFO would block the open, a device never end
            out.errors.append(PolicyFileError("not a regular file; remove it from the policy paths", path=rel))
            return
        with file.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            raw = b"" if size > MAX_FILE_BYTES else fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        out.errors.append(PolicyFileError(f"cannot read file: {exc.strerror or exc}", path=rel))
        return
    if size > MAX_FILE_BYTES or len(raw) > MAX_FILE_BYTES:
        # Too big to load; an error only when it declares a policy or repository at the top
        # level (a CRD bundle merely names the kinds, indented, and is none of ours).
        if _declares_image_kind(file):
            out.errors.append(
                PolicyFileError(
                    f"file is {max(size, len(raw)):,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for a policy"
                    " file; split it into smaller files",
                    path=rel,
                )
            )
        return
    if b"ImagePolicy" not in raw and b"ImageRepository" not in raw:
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        out.errors.append(PolicyFileError(f"file is not UTF-8 ({exc.reason} at byte {exc.start})", path=rel))
        return
    for doc in read_documents(text):
        if isinstance(doc, SyntaxProblem):
            out.errors.append(
                PolicyFileError(doc.message, path=rel, line=doc.position.line, column=doc.position.column)
            )
        else:
            _classify(doc, rel, out)


_TOP_LEVEL_KIND = re.compile(rb"""^kind:[ \t]*["']?Image(?:Policy|Repository)\b""", re.MULTILINE)


def _declares_image_kind(file: Path, chunk: int = 1 << 20) -> bool:
    """Whether ``file`` has a top-level ``kind: ImagePolicy``/``ImageRepository``, read in bounded chunks."""
    tail = b""
    with contextlib.suppress(OSError), file.open("rb") as fh:
        while block := fh.read(chunk):
            if _TOP_LEVEL_KIND.search(tail + block):
                return True
            tail = block[-64:]
    return False


def _where(item: _Located) -> str:
    loc = item.at(("metadata", "name"))
    return f"{loc.path}:{loc.line}"


def _flux_repositories(out: _Collected) -> dict[tuple[str, str], list[_Located]]:
    repos: dict[tuple[str, str], list[_Located]] = {}
    for item in out.flux_repos:
        meta = item.model.metadata
        repos.setdefault((meta.namespace or FLUX_DEFAULT_NAMESPACE, meta.name), []).append(item)
    for (ns, name), items in repos.items():
        if len(items) > 1:
            for item in items:
                others = ", ".join(_where(o) for o in items if o is not item)
                out.errors.append(
                    item.error(
                        f"ImageRepository {ns}/{name} is defined more than once (also at {others})",
                        ("metadata", "name"),
                    )
                )
    return repos


def _policies(out: _Collected) -> list[tuple[Policy, _Located]]:
    made: list[tuple[Policy, _Located]] = [(_native_policy(item), item) for item in out.native]
    repos = _flux_repositories(out)
    for item in out.flux_policies:
        pol = item.model
        ns = pol.metadata.namespace or FLUX_DEFAULT_NAMESPACE
        ref = pol.spec.image_repository_ref
        key = (ref.namespace or ns, ref.name)
        found = repos.get(key, [])
        field_path = ("spec", "imageRepositoryRef", "name")
        if len(found) != 1:
            out.refuse(item.doc, f"refers to ImageRepository {key[0]}/{key[1]}, which did not load")
        if not found:
            out.errors.append(
                item.error(
                    f"ImagePolicy {ns}/{pol.metadata.name} refers to ImageRepository {key[0]}/{key[1]}, "
                    "which no file in the repository defines (or it failed to load)",
                    field_path,
                )
            )
        elif len(found) > 1:
            out.errors.append(
                item.error(
                    f"ImageRepository {key[0]}/{key[1]} is defined more than once; cannot tell which", field_path
                )
            )
        else:
            made.append((_flux_policy(item, found[0]), item))
    return made


def _unique(made: list[tuple[Policy, _Located]], out: _Collected) -> list[Policy]:
    by_name: dict[str, list[tuple[Policy, _Located]]] = {}
    for policy, item in made:
        by_name.setdefault(policy.name, []).append((policy, item))
    kept: list[Policy] = []
    for policy, item in made:
        same = by_name[policy.name]
        if len(same) == 1:
            kept.append(policy)
            continue
        others = ", ".join(_where(o) for _, o in same if o is not item)
        out.refused.setdefault(policy.name, "is defined more than once, so none of its definitions loaded")
        out.errors.append(
            item.error(
                f"policy name {policy.name!r} is used more than once (also at {others}); markers could not "
                "tell them apart, so none of them is loaded",
                ("metadata", "name"),
            )
        )
    return kept


def _sorted_errors(errors: Iterable[PolicyFileError]) -> tuple[PolicyFileError, ...]:
    return tuple(sorted(errors, key=lambda e: (e.path, e.line or 0, e.column or 0, e.field or "", e.reason)))


def load_policies(root: Path, paths: Sequence[Path] | None = None) -> PolicySet:
    """Load every policy under ``root`` (or only under ``paths``, relative to ``root``).

    Never raises for file contents: each problem is a :class:`PolicyFileError` in
    ``.errors`` and the valid policies are still returned.
    """
    root = Path(root)
    out = _Collected()
    for file in _yaml_files(root, paths, out):
        _read_file(root, file, out)
    policies = _unique(_policies(out), out)
    loaded = {p.name for p in policies}
    refused = {name: why for name, why in sorted(out.refused.items()) if name not in loaded}
    return PolicySet(tuple(policies), _sorted_errors(out.errors), refused)
