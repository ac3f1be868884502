"""Policy domain values: parsed once at the boundary, frozen afterwards.

A :class:`Policy` is what every later stage sees, whichever file format it came
from (the native ``kind: ImagePolicy`` or Flux's ImageRepository + ImagePolicy).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from automator.refs import ImageRef

DEFAULT_EXCLUDES: tuple[str, ...] = (r"^.*\.(sig|att|sbom)$", r"^sha256-[0-9a-f]{64}.*$")
DEFAULT_PLATFORM = "linux/amd64"
DEFAULT_INTERVAL_SECONDS = 300.0


class Order(enum.StrEnum):
    """Sort order of numerical and alphabetical policies; the last element wins (as Flux)."""

    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class SemverChoice:
    """Highest version satisfying a Masterminds-style constraint (``>=1.2 <2``, ``^1.2``)."""

    range: str
    allow_prerelease: bool = False
    # strict: Flux's ``version.ParseVersion`` (image-reflector-controller): a tag with at least two
    # dots, then read by Masterminds' ``NewVersion``.  Lenient (default for native files) is
    # ``NewVersion`` alone, which coerces ``1.2`` to ``1.2.0``.  Both read leading zeros as
    # Masterminds does: ``v2025.07.03`` is 2025.7.3.
    strict: bool = False


@dataclass(frozen=True)
class NumericalChoice:
    """Tags (or their extracted part) read as numbers; ``asc`` picks the largest."""

    order: Order = Order.ASC


@dataclass(frozen=True)
class AlphabeticalChoice:
    """Tags (or their extracted part) compared as strings; ``asc`` picks the last."""

    order: Order = Order.ASC


@dataclass(frozen=True)
class NewestBuildChoice:
    """The tag whose image config has the most recent ``created`` time."""


@dataclass(frozen=True)
class DigestChoice:
    """Follow the digest behind one mutable tag (``latest``, ``stable``)."""

    tag: str


Choice = SemverChoice | NumericalChoice | AlphabeticalChoice | NewestBuildChoice | DigestChoice


@dataclass(frozen=True)
class TagFilter:
    """A regex every candidate tag must match; ``extract`` (e.g. ``$ts``) is compared instead."""

    pattern: str
    extract: str | None = None


@dataclass(frozen=True)
class SourceLocation:
    """Where a value was declared in the config repo (1-based line and column)."""

    path: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class DigestMode(enum.StrEnum):
    """Whether the chosen tag's digest is resolved and written (Flux ``digestReflectionPolicy``)."""

    NEVER = "Never"
    IF_NOT_PRESENT = "IfNotPresent"
    ALWAYS = "Always"


class MinAgeFrom(enum.StrEnum):
    """What ``minAge`` counts from: when the state database first listed a tag, or its build time."""

    FIRST_SEEN = "firstSeen"
    BUILD_TIME = "buildTime"


class VerifyMode(enum.StrEnum):
    """``enforce``: only a candidate whose signature verifies is chosen; ``warn``: chosen as without
    verification, the failure logged and recorded."""

    ENFORCE = "enforce"
    WARN = "warn"


@dataclass(frozen=True)
class PublicKey:
    """A cosign public key (PEM SubjectPublicKeyInfo): inline or read from the config repo when the
    policy loaded (``pem``), or a Secret mounted under the credentials directory (``secret``/``key``),
    read at scan time. ``where``: how the policy named it, for messages (never the key itself)."""

    where: str
    pem: str | None = None
    secret: str | None = None
    key: str = "cosign.pub"


@dataclass(frozen=True)
class Identity:
    """A keyless signer: the certificate's OIDC issuer, and its subject (exact, or a Go regexp)."""

    issuer: str
    subject: str | None = None
    subject_regexp: str | None = None


@dataclass(frozen=True)
class ProvenanceRule:
    """What a SLSA provenance attestation must say; each pattern a Go regexp searched in the value."""

    builder_id: str | None = None
    source_repository: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class VerifyRule:
    """``spec.verify``: which signatures make a candidate eligible (cosign layouts)."""

    keys: tuple[PublicKey, ...] = ()
    identities: tuple[Identity, ...] = ()
    provenance: ProvenanceRule | None = None
    mode: VerifyMode = VerifyMode.ENFORCE
    trusted_root: str | None = None  # a Sigstore trusted_root.json (its text, read from the config repo)
    trusted_root_where: str | None = None  # the repo path it was read from, for messages
    provider: str = "cosign"
    field: str = "spec.verify"  # where it was declared, for messages (Flux: an annotation)


@dataclass(frozen=True)
class PromotionQuery:
    """A PromQL query that must hold at every point of the soak window: each value of each series it
    returns lower than ``below`` (or higher than ``above``; exactly one is set)."""

    expr: str
    below: float | None = None
    above: float | None = None

    def passes(self, value: float) -> bool:
        """Whether one value is within the bound (NaN never is)."""
        if self.below is not None:
            return value < self.below
        assert self.above is not None
        return value > self.above

    @property
    def bound(self) -> str:
        """The bound as a person reads it: ``below 0.01``."""
        return f"below {self.below:g}" if self.below is not None else f"above {self.above:g}"


@dataclass(frozen=True)
class PromotionStep:
    """One earlier environment: the cluster (as ``--cluster NAME=...`` names it) a version must have run
    in, healthy, for ``healthy_for_seconds``, and the query that must hold meanwhile."""

    cluster: str
    healthy_for_seconds: float
    query: PromotionQuery | None = None
    healthy_for: str = ""  # as the policy wrote it ("30m"), for messages


@dataclass(frozen=True)
class PromotionRule:
    """``spec.promotion``: a version is proposed only after every step's proof holds."""

    after: tuple[PromotionStep, ...]
    field: str = "spec.promotion"  # where it was declared, for messages (Flux: an annotation)

    @property
    def clusters(self) -> tuple[str, ...]:
        return tuple(step.cluster for step in self.after)


@dataclass(frozen=True)
class Policy:
    """One image policy: which repository, which tags qualify, how to pick the best."""

    name: str  # "namespace:name" when a namespace is set, else "name" (as Flux markers write)
    image: ImageRef  # the repository, never with a tag or digest
    choice: Choice
    source: SourceLocation
    filter: TagFilter | None = None
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    digest: DigestMode = DigestMode.NEVER
    credentials: str | None = None  # name of a credentials entry / pull secret
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    suspend: bool = False
    variant_aware: bool = False
    allow_downgrade: bool = False
    platform: str = DEFAULT_PLATFORM
    insecure: bool = False
    marker_less: bool = False  # also rewrite image fields without a setter marker
    labels: tuple[tuple[str, str], ...] = field(default=())
    # Read from Flux ImageRepository documents; acted on by the registry edge (registry/access.py).
    provider: str = "generic"  # generic | aws | azure | gcp: the cloud's docker-credential-* helper
    cert_secret: str | None = None  # Flux certSecretRef: a Secret with ca.crt / tls.crt / tls.key
    service_account: str | None = None  # Flux serviceAccountName: an error until automator has cluster access
    timeout_seconds: float | None = None  # bound of one scan of the repository; None: no bound of its own
    origin: str = "native"  # the document format: native | flux/v1beta2 | flux/v1
    # gates that need memory (automator.state.gates): a tag younger than this is not a candidate
    min_age_seconds: float = 0.0
    min_age_from: MinAgeFrom = MinAgeFrom.FIRST_SEEN
    min_age_field: str = "spec.minAge"  # where it was declared, for messages (Flux: an annotation)
    pin: str | None = None  # set by hand: this tag is the choice, whatever the others (and the gates) say
    pin_field: str = "spec.pin"
    verify: VerifyRule | None = None  # signatures (and provenance) a candidate needs to be chosen
    promotion: PromotionRule | None = None  # earlier clusters a version must have run in, healthy, first

    @property
    def short_name(self) -> str:
        """The name without its namespace."""
        return self.name.rsplit(":", 1)[-1]

    @property
    def tracks_digest(self) -> bool:
        return self.digest is not DigestMode.NEVER or isinstance(self.choice, DigestChoice)

    def due(self, since: datetime) -> datetime:
        """When a tag first seen (or built) at ``since`` is old enough for ``minAge``."""
        return since + timedelta(seconds=self.min_age_seconds)


Gate = Literal["minAge", "rollback", "promotion"]


@dataclass(frozen=True)
class HeldTag:
    """A tag a gate kept out of the choice: the one the policy would have chosen without it.

    ``until``: when ``minAge`` (or a promotion's soak, if nothing changes) lets it through (None: a
    rollback hold, until a newer tag; a promotion waiting for a rollout or blocked)."""

    tag: str
    gate: Gate
    reason: str
    until: datetime | None = None


SKIPPED = "skipped "  # how a choice's reason names a better tag whose signature did not verify


@dataclass(frozen=True)
class SkippedTag:
    """A better candidate left out because its signature (or provenance) did not verify."""

    tag: str
    digest: str | None
    reason: str


@dataclass(frozen=True)
class TagChoice:
    """The outcome of choosing for one policy; ``tag`` is None when nothing qualifies."""

    policy: str
    image: ImageRef
    tag: str | None
    digest: str | None = None
    seen: int = 0  # tags listed by the registry
    candidates: int = 0  # tags left after exclusion and filtering
    reason: str = ""  # why nothing (or the current tag) was kept, for humans
    held: HeldTag | None = None  # the better tag a gate (minAge, a rollback) held back
    skipped: tuple[SkippedTag, ...] = ()  # better candidates whose signature did not verify, best first
    verified: str = ""  # how the chosen tag's signature verified ("" when the policy verifies nothing)
    promoted: str = ""  # the proof the chosen tag ran where spec.promotion says ("" without promotion)

    @property
    def reference(self) -> ImageRef | None:
        """The chosen image as a full reference, or None."""
        return None if self.tag is None else self.image.with_tag(self.tag, self.digest)
