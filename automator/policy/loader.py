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
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from automator import gotemplate
from automator.duration import parse_duration
from automator.errors import PolicyFileError
from automator.policy.automation import CommitSigning, Requirement, Selector, UpdateAutomation, normalise_path
from automator.policy.model import (
    DEFAULT_EXCLUDES,
    AlphabeticalChoice,
    Choice,
    DigestChoice,
    DigestMode,
    Identity,
    MinAgeFrom,
    NewestBuildChoice,
    NumericalChoice,
    Order,
    Policy,
    PromotionQuery,
    PromotionRule,
    PromotionStep,
    ProvenanceRule,
    PublicKey,
    SemverChoice,
    SourceLocation,
    TagFilter,
    VerifyMode,
    VerifyRule,
)
from automator.policy.schema_models import (
    FLUX_API_VERSIONS,
    FLUX_GROUP,
    MIN_AGE_ANNOTATION,
    MIN_AGE_FROM_ANNOTATION,
    NATIVE_API_VERSION,
    PIN_ANNOTATION,
    PROMOTION_ANNOTATION,
    SOURCE_GROUP,
    VERIFY_ANNOTATION,
    FluxGitRepository,
    FluxImagePolicyV1,
    FluxImagePolicyV1beta2,
    FluxImageRepository,
    FluxImageUpdateAutomationV1,
    FluxImageUpdateAutomationV1beta2,
    NativeImagePolicy,
    OrderPolicy,
    PromotionSpec,
    VerifySpec,
    check_duration,
    check_min_age_from,
    check_public_key_pem,
    check_tag,
)
from automator.policy.yamldocs import KINDS, Document, Path_, SyntaxProblem, read_documents
from automator.refs import parse_reference

FLUX_DEFAULT_NAMESPACE = "flux-system"
YAML_SUFFIXES = (".yaml", ".yml")
_KIND_BYTES = (b"ImagePolicy", b"ImageRepository", b"ImageUpdateAutomation", b"GitRepository")
MAX_FILE_BYTES = 4 << 20  # 4 MiB: thousands of policies; a 50 MB file took 152 s and 2.9 GB to load
MAX_KEY_BYTES = 64 << 10  # a PEM public key is under 1 KiB; an RSA-8192 one under 2 KiB
MAX_TRUSTED_ROOT_BYTES = 1 << 20  # Sigstore's production trusted_root.json is about 10 KiB


@dataclass(frozen=True)
class PolicySet:
    """Every policy found in a repository, and every problem; look policies up by name."""

    policies: tuple[Policy, ...] = ()
    errors: tuple[PolicyFileError, ...] = ()
    # Flux ImageUpdateAutomations: when there are any, they alone decide which Flux policies
    # update which files (see automator.policy.automation)
    automations: tuple[UpdateAutomation, ...] = ()
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
    lines: Sequence[str] | None = None  # the file's lines, for positions inside a block scalar

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


def _native_policy(item: _Located, verify: VerifyRule | None = None, promotion: PromotionRule | None = None) -> Policy:
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
        min_age_seconds=parse_duration(spec.min_age) if spec.min_age else 0.0,
        min_age_from=MinAgeFrom(spec.min_age_from),
        pin=spec.pin,
        verify=verify,
        promotion=promotion,
    )


def _flux_gates(item: _Located) -> tuple[dict[str, Any], list[PolicyFileError]]:
    """automator's settings an ImagePolicy carries as annotations (Flux's schema has no room for
    them): ``automator.dev/min-age``, ``automator.dev/min-age-from``, ``automator.dev/pin``;
    checked as the native fields."""
    notes = item.model.metadata.annotations or {}
    out: dict[str, Any] = {}
    errors = []
    checks = (
        (MIN_AGE_ANNOTATION, check_duration),
        (MIN_AGE_FROM_ANNOTATION, check_min_age_from),
        (PIN_ANNOTATION, check_tag),
    )
    for key, check in checks:
        if key not in notes:
            continue
        try:
            check(notes[key])
        except ValueError as exc:
            errors.append(item.error(f"annotation {key}: {exc}", ("metadata", "annotations", key)))
    if errors:
        return out, errors
    if MIN_AGE_ANNOTATION in notes:
        out["min_age_seconds"] = parse_duration(notes[MIN_AGE_ANNOTATION])
        out["min_age_field"] = f"annotation {MIN_AGE_ANNOTATION}"
    if MIN_AGE_FROM_ANNOTATION in notes:
        out["min_age_from"] = MinAgeFrom(notes[MIN_AGE_FROM_ANNOTATION])
    if PIN_ANNOTATION in notes:
        out["pin"], out["pin_field"] = notes[PIN_ANNOTATION], f"annotation {PIN_ANNOTATION}"
    return out, []


def _flux_policy(item: _Located, repo: _Located, gates: Mapping[str, Any]) -> Policy:
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
        **gates,
    )


# --- spec.verify ------------------------------------------------------------------------------


def read_repo_file(root: Path, rel: str, limit: int) -> bytes:
    """The bytes of ``rel`` inside ``root``: never a file outside it (``..``, an absolute path, a
    symlink leading out), only a regular file of at most ``limit`` bytes. ValueError says why."""
    base = root.resolve()
    path = base / rel
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ValueError(f"{rel!r} does not exist in the config repository") from None
    if not real.is_relative_to(base) or ".git" in real.relative_to(base).parts:
        raise ValueError(f"{rel!r} leads outside the config repository (a symlink?); keep the file inside it")
    try:
        with real.open("rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ValueError(f"{rel!r} is not a regular file")
            data = fh.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {rel!r}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ValueError(f"{rel!r} is over the {limit:,}-byte limit")
    return data


def _verify_rule(
    root: Path | None, item: _Located, spec: VerifySpec, at: Path_, field_name: str = "spec.verify"
) -> tuple[VerifyRule | None, list[PolicyFileError]]:
    """``spec.verify`` as a :class:`VerifyRule`: key files and the trusted root read from the config
    repository now, so a missing or broken one fails the policy when it loads."""
    errors: list[PolicyFileError] = []
    keys: list[PublicKey] = []
    for i, source in enumerate(spec.public_keys or ()):
        where = f"{field_name}.publicKeys[{i}]"
        if source.pem is not None:
            keys.append(PublicKey(where, pem=source.pem))
        elif source.secret_ref is not None:
            ref = source.secret_ref
            keys.append(PublicKey(f"{where} (Secret {ref.name}, key {ref.key})", secret=ref.name, key=ref.key))
        else:
            assert source.file is not None
            try:
                if root is None:
                    raise ValueError("key files are read from the config repository, which is not known here")
                text = read_repo_file(root, source.file, MAX_KEY_BYTES).decode("utf-8")
                check_public_key_pem(text)
            except (ValueError, UnicodeDecodeError) as exc:
                errors.append(item.error(str(exc), (*at, "publicKeys", i, "file")))
                continue
            keys.append(PublicKey(f"{where} ({source.file})", pem=text))
    trusted_root = None
    if spec.trusted_root is not None:
        try:
            if root is None:
                raise ValueError("the trusted root is read from the config repository, which is not known here")
            trusted_root = read_repo_file(root, spec.trusted_root, MAX_TRUSTED_ROOT_BYTES).decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            errors.append(item.error(str(exc), (*at, "trustedRoot")))
    if errors:
        return None, errors
    identities = tuple(Identity(i.issuer, i.subject, i.subject_reg_exp) for i in spec.identities or ())
    prov = spec.provenance
    rule = VerifyRule(
        keys=tuple(keys),
        identities=identities,
        provenance=None if prov is None else ProvenanceRule(prov.builder_id, prov.source_repository, prov.ref),
        mode=VerifyMode(spec.mode),
        trusted_root=trusted_root,
        trusted_root_where=spec.trusted_root,
        provider=spec.provider,
        field=field_name,
    )
    return rule, []


def _flux_verify(root: Path | None, item: _Located) -> tuple[VerifyRule | None, list[PolicyFileError]]:
    """The annotation ``automator.dev/verify``: the native ``spec.verify`` written as YAML (or JSON)."""
    notes = item.model.metadata.annotations or {}
    text = notes.get(VERIFY_ANNOTATION)
    if text is None:
        return None, []
    at: Path_ = ("metadata", "annotations", VERIFY_ANNOTATION)
    label = f"annotation {VERIFY_ANNOTATION}"
    docs = list(read_documents(text, every=True))
    if len(docs) != 1 or not isinstance(docs[0], Document):
        why = docs[0].message if docs and isinstance(docs[0], SyntaxProblem) else "write one YAML mapping"
        return None, [item.error(f"{label}: not a mapping of the spec.verify fields ({why})", at)]
    spec, problems = validate_document(VerifySpec, docs[0], item.path)
    if spec is None:
        return None, [item.error(f"{label}: [{p.field or '-'}] {p.reason}", at) for p in problems]
    return _verify_rule(root, item, spec, at, label)


# --- spec.promotion ---------------------------------------------------------------------------


def _promotion_rule(
    item: _Located, spec: PromotionSpec, at: Path_, label: str | None = None
) -> tuple[PromotionRule | None, list[PolicyFileError]]:
    """``spec.promotion`` as a :class:`PromotionRule`; what one step cannot see is checked here: a
    cluster named twice. ``label``: the annotation it came from (errors are then placed at it)."""
    errors: list[PolicyFileError] = []
    first: dict[str, int] = {}
    for i, step in enumerate(spec.after):
        if step.cluster not in first:
            first[step.cluster] = i
            continue
        message = (
            f"cluster {step.cluster!r} is named twice (also after[{first[step.cluster]}]); "
            "give each earlier cluster one entry"
        )
        if label is None:
            errors.append(item.error(message, (*at, "after", i, "cluster")))
        else:
            errors.append(item.error(f"{label}: [after[{i}].cluster] {message}", at))
    if errors:
        return None, errors
    steps = tuple(
        PromotionStep(
            cluster=step.cluster,
            healthy_for_seconds=parse_duration(step.healthy_for),
            query=None if step.query is None else PromotionQuery(step.query.expr, step.query.below, step.query.above),
            healthy_for=step.healthy_for,
        )
        for step in spec.after
    )
    return PromotionRule(steps, field=label or _dotted(at) or "spec.promotion"), []


def _flux_promotion(item: _Located) -> tuple[PromotionRule | None, list[PolicyFileError]]:
    """The annotation ``automator.dev/promotion``: the native ``spec.promotion`` written as YAML (or JSON)."""
    notes = item.model.metadata.annotations or {}
    text = notes.get(PROMOTION_ANNOTATION)
    if text is None:
        return None, []
    at: Path_ = ("metadata", "annotations", PROMOTION_ANNOTATION)
    label = f"annotation {PROMOTION_ANNOTATION}"
    docs = list(read_documents(text, every=True))
    if len(docs) != 1 or not isinstance(docs[0], Document):
        why = docs[0].message if docs and isinstance(docs[0], SyntaxProblem) else "write one YAML mapping"
        return None, [item.error(f"{label}: not a mapping of the spec.promotion fields ({why})", at)]
    spec, problems = validate_document(PromotionSpec, docs[0], item.path)
    if spec is None:
        return None, [item.error(f"{label}: [{p.field or '-'}] {p.reason}", at) for p in problems]
    return _promotion_rule(item, spec, at, label)


# --- the loader --------------------------------------------------------------------------------


@dataclass
class _Collected:
    native: list[_Located] = field(default_factory=list)
    flux_policies: list[_Located] = field(default_factory=list)
    flux_repos: list[_Located] = field(default_factory=list)
    automations: list[_Located] = field(default_factory=list)
    git_repos: list[_Located] = field(default_factory=list)
    errors: list[PolicyFileError] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    root: Path | None = None  # the config repository: key files named by spec.verify are read inside it only

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


def _classify(doc: Document, path: str, out: _Collected, lines: Sequence[str] | None = None) -> None:
    data = doc.data
    api, kind = data.get("apiVersion"), data.get("kind")
    if kind not in KINDS or not isinstance(api, str):
        return
    if kind == "GitRepository":
        if api.startswith(SOURCE_GROUP + "/"):
            value, _ = _validate(FluxGitRepository, doc, path)  # someone else's kind: read what we can
            if value is not None:
                out.git_repos.append(_Located(value, doc, path))
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
    elif kind == "ImageUpdateAutomation" and api in FLUX_API_VERSIONS:
        model = FluxImageUpdateAutomationV1 if api.endswith("/v1") else FluxImageUpdateAutomationV1beta2
        bucket = out.automations
    elif api in FLUX_API_VERSIONS:
        model = FluxImagePolicyV1 if api.endswith("/v1") else FluxImagePolicyV1beta2
        bucket = out.flux_policies
    else:
        return  # someone else's ImagePolicy (Portieris, Kyverno...): not ours
    value, errors = _validate(model, doc, path)
    out.errors.extend(errors)
    if value is not None:
        bucket.append(_Located(value, doc, path, lines))
    else:
        out.refuse(doc)


class ParseCache:
    """Each policy file's documents as read and validated, by its path and content, from one
    :func:`load_policies` to the next (the service's cycles): a file unchanged since is not
    parsed again. It keeps the files of the latest load only, so it holds what one load holds.
    Key files a ``verify`` rule names are read afresh every time (they are not the file's)."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, bytes], _Collected] = {}
        self._used: set[tuple[str, bytes]] = set()
        self.hits = self.misses = 0

    def read(self, rel: str, raw: bytes, root: Path, parse: Callable[[_Collected], None]) -> _Collected:
        key = (rel, hashlib.sha256(raw).digest())
        self._used.add(key)
        found = self._files.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        found = _Collected(root=root)
        parse(found)
        self._files[key] = found
        return found

    def keep_used(self) -> None:
        """Forget the files the latest load did not read (changed, moved or gone)."""
        self._files = {k: v for k, v in self._files.items() if k in self._used}
        self._used = set()


def _merge(out: _Collected, part: _Collected) -> None:
    out.native += part.native
    out.flux_policies += part.flux_policies
    out.flux_repos += part.flux_repos
    out.automations += part.automations
    out.git_repos += part.git_repos
    out.errors += part.errors
    for name, why in part.refused.items():
        out.refused.setdefault(name, why)


def _read_file(root: Path, file: Path, out: _Collected, cache: ParseCache | None = None) -> None:
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
    if not any(kind in raw for kind in _KIND_BYTES):
        return
    if cache is not None:
        _merge(out, cache.read(rel, raw, root, lambda part: _parse_file(rel, raw, part)))
    else:
        _parse_file(rel, raw, out)


def _parse_file(rel: str, raw: bytes, out: _Collected) -> None:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        out.errors.append(PolicyFileError(f"file is not UTF-8 ({exc.reason} at byte {exc.start})", path=rel))
        return
    lines = text.splitlines()
    for doc in read_documents(text):
        if isinstance(doc, SyntaxProblem):
            out.errors.append(
                PolicyFileError(doc.message, path=rel, line=doc.position.line, column=doc.position.column)
            )
        else:
            _classify(doc, rel, out, lines)


_TOP_LEVEL_KIND = re.compile(rb"""^kind:[ \t]*["']?Image(?:Policy|Repository|UpdateAutomation)\b""", re.MULTILINE)


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
    made: list[tuple[Policy, _Located]] = []
    for item in out.native:
        spec = item.model.spec.verify
        rule, errors = (None, []) if spec is None else _verify_rule(out.root, item, spec, ("spec", "verify"))
        promo = item.model.spec.promotion
        promotion, promotion_errors = (
            (None, []) if promo is None else _promotion_rule(item, promo, ("spec", "promotion"))
        )
        errors += promotion_errors
        if errors:
            out.errors.extend(errors)
            out.refuse(item.doc)
        else:
            made.append((_native_policy(item, rule, promotion), item))
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
            gates, errors = _flux_gates(item)
            if not errors:
                rule, errors = _flux_verify(out.root, item)
                if rule is not None:
                    gates["verify"] = rule
                promotion, promotion_errors = _flux_promotion(item)
                errors += promotion_errors
                if promotion is not None:
                    gates["promotion"] = promotion
            if errors:
                out.errors.extend(errors)
                out.refuse(item.doc)
            else:
                made.append((_flux_policy(item, found[0], gates), item))
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


def load_policies(root: Path, paths: Sequence[Path] | None = None, *, cache: ParseCache | None = None) -> PolicySet:
    """Load every policy under ``root`` (or only under ``paths``, relative to ``root``); with
    ``cache``, files unchanged since the cache's last load are not parsed again.

    Never raises for file contents: each problem is a :class:`PolicyFileError` in
    ``.errors`` and the valid policies are still returned.
    """
    root = Path(root)
    out = _Collected(root=root)
    for file in _yaml_files(root, paths, out):
        _read_file(root, file, out, cache)
    if cache is not None:
        cache.keep_used()
    policies = _unique(_policies(out), out)
    automations = _automations(out)
    loaded = {p.name for p in policies}
    refused = {name: why for name, why in sorted(out.refused.items()) if name not in loaded}
    return PolicySet(tuple(policies), _sorted_errors(out.errors), tuple(automations), refused)


# --- ImageUpdateAutomations ------------------------------------------------------------------


def _git_repositories(out: _Collected) -> dict[tuple[str, str], list[_Located]]:
    found: dict[tuple[str, str], list[_Located]] = {}
    for item in out.git_repos:
        meta = item.model.metadata
        found.setdefault((meta.namespace or FLUX_DEFAULT_NAMESPACE, meta.name), []).append(item)
    return found


def _selector(model: Any) -> Selector:
    if model is None:
        return Selector()
    exprs = tuple(Requirement(e.key, e.operator, tuple(e.values or ())) for e in model.match_expressions or ())
    return Selector(tuple(sorted((model.match_labels or {}).items())), exprs)


_REFSPEC = re.compile(r"^(\+?)([^:\s]+):([^:\s]+)$")


def _automation(
    item: _Located, sources: Mapping[tuple[str, str], list[_Located]]
) -> tuple[UpdateAutomation | None, list[PolicyFileError]]:
    m = item.model
    spec = m.spec
    namespace = m.metadata.namespace or FLUX_DEFAULT_NAMESPACE
    errors: list[PolicyFileError] = []

    def refuse(message: str, fpath: Path_, *, key: bool = False) -> None:
        errors.append(item.error(message, fpath, key=key))

    if spec.git is None:
        refuse("spec.git is required: an automation commits to the GitRepository it names", ("spec",), key=True)
        return None, errors
    if spec.update is None:
        refuse(
            "spec.update is required (Flux stalls without it): set update.path and strategy: Setters",
            ("spec",),
            key=True,
        )
        return None, errors
    path = normalise_path(spec.update.path)
    if path is None:
        refuse(
            f"update.path {spec.update.path!r} leaves the repository; give a path inside it", ("spec", "update", "path")
        )
    src_ns = spec.source_ref.namespace or namespace
    src_key = (src_ns, spec.source_ref.name)
    found = sources.get(src_key, [])
    git_url: str | None = None
    default_branch: str | None = None
    if len(found) > 1:
        refuse(
            f"GitRepository {src_ns}/{spec.source_ref.name} is defined more than once; cannot tell which",
            ("spec", "sourceRef", "name"),
        )
    elif found:
        gr = found[0].model.spec
        git_url = gr.url
        ref = gr.ref
        if ref is not None and ref.branch:
            default_branch = ref.branch
        elif ref is not None and (ref.tag or ref.semver or ref.commit or ref.name) and spec.git.checkout is None:
            where = _where(found[0])
            refuse(
                f"GitRepository {src_ns}/{spec.source_ref.name} ({where}) checks out a tag, semver range, commit or "
                "ref name; automator commits on branches only: set spec.git.checkout.ref.branch",
                ("spec", "sourceRef", "name"),
            )
    checkout = spec.git.checkout
    checkout_branch = default_branch
    if checkout is not None:
        ref = checkout.ref
        others = [n for n in ("tag", "semver", "name", "commit") if getattr(ref, n)]
        if others:
            refuse(
                f"checkout.ref.{others[0]} cannot be honoured: automator checks out and commits on branches only; "
                "use checkout.ref.branch",
                ("spec", "git", "checkout", "ref", others[0]),
            )
        elif not ref.branch:
            refuse("checkout.ref needs a branch", ("spec", "git", "checkout", "ref"), key=True)
        else:
            checkout_branch = ref.branch.removeprefix("refs/heads/")
    push = spec.git.push
    push_branch = push.branch.removeprefix("refs/heads/") if push is not None and push.branch else None
    refspec = push.refspec if push is not None and push.refspec else None
    if refspec is not None:
        match = _REFSPEC.match(refspec)
        local = push_branch or checkout_branch
        src = match.group(2).removeprefix("refs/heads/") if match else ""
        if match is None or not match.group(3).startswith("refs/"):
            refuse(
                f"refspec {refspec!r} is not <branch>:refs/<destination> (e.g. refs/heads/main:refs/heads/auto)",
                ("spec", "git", "push", "refspec"),
            )
        elif src not in ("HEAD", local) and local is not None:
            refuse(
                f"refspec {refspec!r} pushes {src!r}, but the commit is made on {local!r}; its source must be "
                f"refs/heads/{local} (or HEAD)",
                ("spec", "git", "push", "refspec"),
            )
    author = spec.git.commit.author
    if not (author.name or "").strip():
        refuse(
            "commit.author.name is empty; git refuses commits by an author without a name, so set it",
            ("spec", "git", "commit", "author"),
            key=True,
        )
    signing = None
    if spec.git.commit.signing_key is not None:
        key = spec.git.commit.signing_key
        signing = CommitSigning(getattr(key, "type", "gpg"), key.secret_ref.name)
    template = spec.git.commit.message_template
    if template:
        problem = _template_problem(template, spec.git.commit.message_template_values or {})
        if problem is not None:
            line, column, message = problem
            pos = item.doc.locate(("spec", "git", "commit", "messageTemplate"))
            at, col = _in_scalar(item.lines, pos.line, pos.column, line, column)
            errors.append(
                PolicyFileError(
                    f"messageTemplate: {message}",
                    path=item.path,
                    line=at,
                    column=col,
                    field="spec.git.commit.messageTemplate",
                )
            )
    if errors:
        return None, errors
    assert path is not None
    return (
        UpdateAutomation(
            name=f"{namespace}/{m.metadata.name}",
            namespace=namespace,
            source=item.at(("metadata", "name")),
            source_ref=src_key,
            author_name=(author.name or "").strip(),
            author_email=author.email,
            interval_seconds=parse_duration(spec.interval),
            path=path,
            checkout_branch=checkout_branch,
            push_branch=push_branch,
            refspec=refspec,
            push_options=tuple(sorted((push.options or {}).items())) if push is not None else (),
            signing=signing,
            message_template=template or None,
            template_values=tuple(sorted((spec.git.commit.message_template_values or {}).items())),
            selector=_selector(spec.policy_selector),
            suspend=spec.suspend,
            origin="flux/" + m.api_version.rsplit("/", 1)[1],
            git_url=git_url,
        ),
        [],
    )


def _in_scalar(lines: Sequence[str] | None, line: int, column: int, at_line: int, at_column: int) -> tuple[int, int]:
    """Where line ``at_line``, column ``at_column`` of a scalar's text is in the file, the scalar
    starting at ``line``:``column``: a block scalar's text starts on the next line, indented; a
    quoted one after its quote (exact for a single-line scalar, the closest line otherwise)."""
    start = lines[line - 1][column - 1 : column] if lines is not None and line <= len(lines) else ""
    if start in ("|", ">") and lines is not None and line + at_line <= len(lines):
        text = lines[line + at_line - 1]
        return line + at_line, len(text) - len(text.lstrip(" ")) + at_column
    quote = 1 if start in ("'", '"') else 0
    return line + at_line - 1, (column + quote + at_column - 1) if at_line == 1 else at_column


# Fields Flux removed from its template data, and Flux's own advice (internal/source/source.go)
_REMOVED_FIELDS = {
    "can't evaluate field Updated in type source.TemplateData": (
        "template uses removed '.Updated' field. Please use '.Changed' instead"
    ),
    "can't evaluate field ImageResult in type update.Result": (
        "template uses removed '.Changed.ImageResult' field. Please use '.Changed.FileChanges' or "
        "'.Changed.Objects' instead"
    ),
}


def _sample_data(values: Mapping[str, str]) -> gotemplate.TemplateData:
    obj = gotemplate.ObjectIdentifier.of(kind="Deployment", name="app", namespace="apps", api_version="apps/v1")
    change = gotemplate.Change(
        OldValue="registry.example/app:1.0.0", NewValue="registry.example/app:1.1.0", Setter="apps:app"
    )
    return gotemplate.flux_template_data(
        {"namespace": "apps", "name": "automation"}, {"deploy.yaml": {obj: [change]}}, values
    )


def _template_problem(text: str, values: Mapping[str, str]) -> tuple[int, int, str] | None:
    """Where and why Flux's Go template ``text`` cannot be rendered (1-based line and column in it):
    what does not parse, and, rendered against a sample change, a field Flux's data does not have."""
    try:
        parsed = gotemplate.parse(text, source="messageTemplate")
    except gotemplate.TemplateError as exc:
        return exc.line or 1, exc.column or 1, exc.reason
    try:
        parsed.render(_sample_data(values))
    except gotemplate.TemplateError as exc:
        if "can't evaluate field" in exc.reason:  # a name Flux's data does not have: whatever the change
            reason = next((hint for key, hint in _REMOVED_FIELDS.items() if key in exc.reason), exc.reason)
            return exc.line or 1, exc.column or 1, reason
    return None


def _automations(out: _Collected) -> list[UpdateAutomation]:
    sources = _git_repositories(out)
    made: list[UpdateAutomation] = []
    seen: dict[str, _Located] = {}
    for item in out.automations:
        auto, errors = _automation(item, sources)
        out.errors.extend(errors)
        if auto is None:
            continue
        if auto.name in seen:
            out.errors.append(
                item.error(
                    f"ImageUpdateAutomation {auto.name} is defined more than once (also at {_where(seen[auto.name])})",
                    ("metadata", "name"),
                )
            )
            continue
        seen[auto.name] = item
        made.append(auto)
    return made
