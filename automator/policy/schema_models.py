"""Pydantic models of the policy documents: the native format and Flux's image API.

Each model forbids unknown fields, so a typo is an error with its field path
(``spec.policy.semver.rnage``).  Field validators check what a type cannot: ranges,
regexes, ``extract`` groups, image references, durations.  The JSON Schema in
``policies/schema.json`` is generated from :class:`NativeImagePolicy`
(:mod:`automator.policy.schema`).  Flux fields follow
``fluxcd/image-reflector-controller/api/{v1beta2,v1}``; the ones automator does not act
on (``provider``, ``accessFrom``, ``proxySecretRef``...) are accepted and carried or
ignored, documented in ``policies/README.md``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from automator.duration import parse_duration
from automator.errors import InvalidReference
from automator.policy.goregex import GoRegexError, compile_go, parse_template
from automator.policy.versions import RangeError, parse_range
from automator.refs import TAG_RE, parse_reference

NATIVE_API_VERSION = "automator.dev/v1alpha1"
FLUX_GROUP = "image.toolkit.fluxcd.io"
FLUX_API_VERSIONS = (f"{FLUX_GROUP}/v1beta2", f"{FLUX_GROUP}/v1")

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9.]+)?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False, frozen=True)


# --- shared validators ------------------------------------------------------------------


def check_name(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters"
        )
    return value


def check_namespace(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a valid namespace: lower-case letters, digits and '-', at most 63")
    return value


def check_repository(value: str) -> str:
    try:
        ref = parse_reference(value)
    except InvalidReference as exc:
        raise ValueError(str(exc)) from exc
    if ref.tag is not None or ref.digest is not None:
        raise ValueError(f"image {value!r} must name a repository without a tag or digest (use {ref.familiar!r})")
    return value


def check_regex(value: str) -> str:
    try:
        compile_go(value)
    except GoRegexError as exc:
        raise ValueError(f"{exc} in {value!r}") from exc
    return value


def check_range(value: str) -> str:
    try:
        parse_range(value)
    except RangeError as exc:
        raise ValueError(f"invalid semver range {value!r}: {exc}") from exc
    return value


def check_duration(value: str) -> str:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return value


MIN_AGE_FROM = ("firstSeen", "buildTime")
# Flux documents carry automator's own settings as annotations on the ImagePolicy
MIN_AGE_ANNOTATION = "automator.dev/min-age"
MIN_AGE_FROM_ANNOTATION = "automator.dev/min-age-from"
PIN_ANNOTATION = "automator.dev/pin"
VERIFY_ANNOTATION = "automator.dev/verify"  # the native spec.verify, as a YAML/JSON mapping
PROMOTION_ANNOTATION = "automator.dev/promotion"  # the native spec.promotion, as a YAML/JSON mapping
# the names ``--cluster NAME=KUBECONFIG`` gives clusters (automator.sync.report._CLUSTER_NAME, which
# the policy stage cannot import; tests/unit/test_policy_promotion.py keeps the two the same)
CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
MAX_PROMQL = 8192  # characters of one promotion query: PromQL people write is a line or a few


def check_tag(value: str) -> str:
    if not TAG_RE.match(value):
        raise ValueError(f"{value!r} is not a valid tag (letters, digits, '_', '.', '-'; at most 128)")
    return value


def check_min_age_from(value: str) -> str:
    if value not in MIN_AGE_FROM:
        raise ValueError(f"{value!r} is not a minAge clock: write 'firstSeen' or 'buildTime'")
    return value


def check_extract(value: str | None, info: ValidationInfo) -> str | None:
    if not value:
        return value
    pattern = info.data.get("pattern")
    if not pattern:
        if "pattern" in info.data:  # pattern itself is valid but empty
            raise ValueError("extract needs a pattern with the group(s) it names")
        return value  # the pattern was invalid and is reported on its own
    try:
        parse_template(value, compile_go(pattern))
    except GoRegexError as exc:
        raise ValueError(str(exc)) from exc
    return value


Name = Annotated[StrictStr, Field(description="A Kubernetes object name (DNS subdomain).")]
Regex = Annotated[StrictStr, AfterValidator(check_regex)]


class ObjectMeta(_Model):
    """The Kubernetes metadata automator reads: name and namespace; labels and annotations kept."""

    name: Name
    namespace: StrictStr | None = Field(None, description="Optional; the policy is then named 'namespace:name'.")
    labels: dict[StrictStr, StrictStr] | None = None
    annotations: dict[StrictStr, StrictStr] | None = None

    _name = field_validator("name")(classmethod(lambda cls, v: check_name(v)))
    _namespace = field_validator("namespace")(classmethod(lambda cls, v: v if v is None else check_namespace(v)))


class LocalObjectReference(_Model):
    name: Name


class NamespacedObjectReference(_Model):
    name: Name
    namespace: StrictStr | None = None


# --- native format ----------------------------------------------------------------------


class SemverPolicy(_Model):
    """Highest version within a Masterminds/Flux range."""

    range: StrictStr = Field(description="Constraint like '>=1.2 <2', '^1.2', '~1.2.3', '1.2.x', '*', with '||'.")
    allow_prerelease: StrictBool = Field(False, description="Consider pre-releases even when the range names none.")
    strict: StrictBool = Field(
        False, description="Flux's version parsing: tags with two dots only; default also coerces '1.2' to 1.2.0."
    )

    _range = field_validator("range")(classmethod(lambda cls, v: check_range(v)))


class OrderPolicy(_Model):
    order: Literal["asc", "desc"] = Field("asc", description="'asc' picks the highest/last, 'desc' the lowest/first.")


class NewestBuildPolicy(_Model):
    """The tag whose image was built last (image config 'created')."""


class DigestPolicy(_Model):
    tag: StrictStr = Field(description="The mutable tag to follow, e.g. 'latest'.")

    _tag = field_validator("tag")(classmethod(lambda cls, v: check_tag(v)))


class PolicyChoice(_Model):
    """Exactly one way of choosing."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    semver: SemverPolicy | None = None
    numerical: OrderPolicy | None = None
    alphabetical: OrderPolicy | None = None
    newest_build: NewestBuildPolicy | None = None
    digest: DigestPolicy | None = None

    @model_validator(mode="after")
    def _one(self) -> PolicyChoice:
        chosen = [name for name, value in self if value is not None]
        if len(chosen) != 1:
            kinds = "semver, numerical, alphabetical, newestBuild, digest"
            got = ", ".join(to_camel(c) for c in chosen) or "none"
            raise ValueError(f"set exactly one of {kinds} (got {got})")
        return self


class FilterTags(_Model):
    """Keep only tags matching a Go regexp; optionally compare an extracted part."""

    pattern: StrictStr = Field(description="Go regexp (RE2) searched in each tag, e.g. '^main-(?P<ts>[0-9]+)-'.")
    extract: StrictStr | None = Field(None, description="Template of named/numbered groups: '$ts', '${ts}', '$1'.")

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: check_regex(v)))
    _extract = field_validator("extract")(classmethod(lambda cls, v, info: check_extract(v, info)))


def check_public_key_pem(value: str) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: PLC0415 - verify only
    from cryptography.hazmat.primitives.serialization import load_pem_public_key  # noqa: PLC0415

    try:
        key = load_pem_public_key(value.encode("utf-8"))
    except (ValueError, TypeError):
        raise ValueError(
            "not a PEM public key (cosign.pub: '-----BEGIN PUBLIC KEY-----', SubjectPublicKeyInfo)"
        ) from None
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
        raise ValueError(f"elliptic curve {key.curve.name} is not one cosign signs with (P-256, P-384, P-521)")
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise ValueError(f"a {type(key).__name__} is not a cosign key type (ECDSA, RSA, Ed25519)")
    return value


def check_repo_path(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith("/") or ".." in parts or "\x00" in value:
        raise ValueError(f"{value!r} must be a path inside the config repository (relative, no '..')")
    return value


class SecretKeyRef(_Model):
    """A Secret mounted under the credentials directory: ``DIR/NAME/KEY``."""

    name: Name
    key: StrictStr = Field("cosign.pub", description="The file of the Secret holding the PEM public key.")

    _name = field_validator("name")(classmethod(lambda cls, v: check_name(v)))

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not value or "/" in value or value.startswith(".") or len(value) > 253:
            raise ValueError(f"{value!r} is not a Secret key (a file name: no '/', not starting with '.')")
        return value


class PublicKeySource(_Model):
    """One cosign public key: exactly one of ``pem``, ``file``, ``secretRef``."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    pem: StrictStr | None = Field(None, description="The PEM public key itself (cosign.pub).")
    file: StrictStr | None = Field(None, description="A PEM file in the config repository, relative to its root.")
    secret_ref: SecretKeyRef | None = Field(None, description="A Secret mounted under --credentials-dir.")

    _pem = field_validator("pem")(classmethod(lambda cls, v: v if v is None else check_public_key_pem(v)))

    _file = field_validator("file")(classmethod(lambda cls, v: v if v is None else check_repo_path(v)))

    @model_validator(mode="after")
    def _one(self) -> PublicKeySource:
        chosen = [to_camel(name) for name, value in self if value is not None]
        if len(chosen) != 1:
            raise ValueError(f"set exactly one of pem, file, secretRef (got {', '.join(chosen) or 'none'})")
        return self


class KeylessIdentity(_Model):
    """A keyless (Fulcio) signer: the OIDC issuer and the certificate's subject."""

    issuer: StrictStr = Field(description="OIDC issuer, e.g. 'https://token.actions.githubusercontent.com'.")
    subject: StrictStr | None = Field(None, description="The certificate's subject (SAN), exactly.")
    subject_reg_exp: Regex | None = Field(None, description="Go regexp searched in the subject (anchor it).")

    @model_validator(mode="after")
    def _one(self) -> KeylessIdentity:
        if (self.subject is None) == (self.subject_reg_exp is None):
            raise ValueError("set exactly one of subject, subjectRegExp")
        return self


class ProvenanceSpec(_Model):
    """A SLSA provenance attestation (v1 or v0.2) the candidate must carry, signed as its signature."""

    builder_id: Regex | None = Field(None, description="Go regexp searched in the builder id.")
    source_repository: Regex | None = Field(None, description="Go regexp searched in the source repository URI.")
    ref: Regex | None = Field(None, description="Go regexp searched in the source ref (refs/heads/main, a tag).")

    @model_validator(mode="after")
    def _some(self) -> ProvenanceSpec:
        if self.builder_id is None and self.source_repository is None and self.ref is None:
            raise ValueError("set at least one of builderId, sourceRepository, ref")
        return self


class VerifySpec(_Model):
    """Only candidates whose cosign signature verifies are chosen (see policies/README.md)."""

    provider: Literal["cosign"] = Field("cosign", description="The signature format: cosign's.")
    public_keys: list[PublicKeySource] | None = Field(None, min_length=1, max_length=16)
    identities: list[KeylessIdentity] | None = Field(None, min_length=1, max_length=16)
    trusted_root: StrictStr | None = Field(
        None, description="A Sigstore trusted_root.json in the config repository (private or air-gapped Sigstore)."
    )
    provenance: ProvenanceSpec | None = None
    mode: Literal["enforce", "warn"] = Field(
        "enforce", description="'enforce' chooses only verified candidates; 'warn' chooses as before and reports."
    )

    _trusted_root = field_validator("trusted_root")(classmethod(lambda cls, v: v if v is None else check_repo_path(v)))

    @model_validator(mode="after")
    def _some(self) -> VerifySpec:
        if not self.public_keys and not self.identities:
            raise ValueError("set publicKeys, identities or both: which signatures are trusted")
        if self.trusted_root is not None and not self.identities:
            raise ValueError("trustedRoot is only read for keyless identities")
        return self


def check_cluster_name(value: str) -> str:
    if not CLUSTER_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a cluster name as --cluster NAME=KUBECONFIG names them: letters, digits, "
            "'.', '_' or '-', starting with a letter or digit, at most 63"
        )
    return value


def check_promql(value: str) -> str:
    if not value.strip():
        raise ValueError("expr is empty: write the PromQL query that must hold over the soak window")
    if len(value) > MAX_PROMQL:
        raise ValueError(f"expr is {len(value):,} characters, over the {MAX_PROMQL:,}-character limit")
    if "\x00" in value:
        raise ValueError("expr contains a NUL character")
    return value


Bound = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class PromotionQuerySpec(_Model):
    """A PromQL query that must hold at every point of the soak window, in every series it returns."""

    expr: StrictStr = Field(
        description="PromQL evaluated over the soak window, e.g. "
        "'sum(rate(http_errors_total[5m])) / sum(rate(http_requests_total[5m]))'."
    )
    below: Bound | None = Field(None, description="Every value must be lower than this (exactly one of below, above).")
    above: Bound | None = Field(None, description="Every value must be higher than this (exactly one of below, above).")

    _expr = field_validator("expr")(classmethod(lambda cls, v: check_promql(v)))

    @model_validator(mode="after")
    def _one(self) -> PromotionQuerySpec:
        if (self.below is None) == (self.above is None):
            got = "both" if self.below is not None else "neither"
            raise ValueError(f"set exactly one of below, above (got {got}): the bound every value must pass")
        return self


class PromotionStepSpec(_Model):
    """An earlier environment a version must have run in, healthy, before this policy proposes it."""

    cluster: StrictStr = Field(description="A cluster as --cluster NAME=KUBECONFIG names it, e.g. 'staging'.")
    healthy_for: StrictStr = Field(
        description="Go duration like '30m': how long the version must have run healthy there (the soak time)."
    )
    query: PromotionQuerySpec | None = Field(None, description="Optional: a Prometheus query that must hold too.")

    _cluster = field_validator("cluster")(classmethod(lambda cls, v: check_cluster_name(v)))
    _healthy_for = field_validator("healthy_for")(classmethod(lambda cls, v: check_duration(v)))


class PromotionSpec(_Model):
    """Promote after proof: propose only versions that ran healthy in each earlier cluster first."""

    after: list[PromotionStepSpec] = Field(
        min_length=1, max_length=16, description="The earlier environments, each with its soak time."
    )


class NativeSpec(_Model):
    image: StrictStr = Field(description="Image repository without tag, e.g. 'ghcr.io/org/app' or 'nginx'.")
    policy: PolicyChoice
    filter_tags: FilterTags | None = None
    exclude: list[Regex] = Field(
        default_factory=list, description="Go regexps; matching tags are ignored (added to the defaults)."
    )
    exclude_defaults: StrictBool = Field(
        True, description=r"Also exclude signatures/attestations: '^.*\.(sig|att|sbom)$', '^sha256-[0-9a-f]{64}.*$'."
    )
    digest_reflection_policy: Literal["Never", "IfNotPresent", "Always"] = Field(
        "Never", description="Pin the chosen tag's digest: Never, IfNotPresent, Always."
    )
    credentials: LocalObjectReference | None = Field(None, description="Name of a credentials entry / pull secret.")
    interval: StrictStr = Field("5m", description="How often to scan: Go duration like '5m', '1h30m'.")
    suspend: StrictBool = False
    variant_aware: StrictBool = Field(False, description="Stay on the current tag's variant and precision.")
    allow_downgrade: StrictBool = Field(False, description="Allow choosing a version lower than the current tag.")
    platform: StrictStr = Field(
        "linux/amd64", description="Platform picked from multi-arch indexes (os/arch[/variant])."
    )
    insecure: StrictBool = Field(False, description="Plain-HTTP registry.")
    marker_less: StrictBool = Field(False, description="Also rewrite image fields that carry no setter marker.")
    min_age: StrictStr | None = Field(
        None,
        description="Go duration like '72h': a tag younger than this is not proposed yet (counted per minAgeFrom).",
    )
    min_age_from: Literal["firstSeen", "buildTime"] = Field(
        "firstSeen",
        description="What minAge counts from: 'firstSeen' (when the state database first listed the tag; "
        "needs --state-dir) or 'buildTime' (the image config's 'created').",
    )

    pin: StrictStr | None = Field(
        None,
        description="A tag set by hand: the policy chooses it (even lower than the current one) until removed.",
    )

    verify: VerifySpec | None = Field(
        None, description="Choose only images whose cosign signature (and provenance) verifies."
    )

    promotion: PromotionSpec | None = Field(
        None,
        description="Propose only versions that ran healthy in the named earlier cluster(s) for a soak time.",
    )

    _image = field_validator("image")(classmethod(lambda cls, v: check_repository(v)))
    _interval = field_validator("interval")(classmethod(lambda cls, v: check_duration(v)))
    _pin = field_validator("pin")(classmethod(lambda cls, v: v if v is None else check_tag(v)))
    _min_age = field_validator("min_age")(classmethod(lambda cls, v: v if v is None else check_duration(v)))

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        if not _PLATFORM.match(value):
            raise ValueError(f"{value!r} is not a platform like 'linux/amd64' or 'linux/arm64/v8'")
        return value


class NativeImagePolicy(_Model):
    """An automator image policy (``apiVersion: automator.dev/v1alpha1``, ``kind: ImagePolicy``)."""

    model_config = ConfigDict(title="automator ImagePolicy")

    api_version: Literal["automator.dev/v1alpha1"]
    kind: Literal["ImagePolicy"]
    metadata: ObjectMeta
    spec: NativeSpec


# --- Flux image.toolkit.fluxcd.io v1beta2 / v1 --------------------------------------------


class FluxObjectMeta(ObjectMeta):
    """Kubernetes ObjectMeta: every field is accepted; name, namespace and labels are read."""

    generate_name: StrictStr | None = None
    uid: StrictStr | None = None
    resource_version: StrictStr | None = None
    generation: int | None = None
    creation_timestamp: Any = None
    deletion_timestamp: Any = None
    deletion_grace_period_seconds: int | None = None
    self_link: StrictStr | None = None
    owner_references: list[dict[str, Any]] | None = None
    finalizers: list[StrictStr] | None = None
    managed_fields: list[dict[str, Any]] | None = None


class NamespaceSelector(_Model):
    match_labels: dict[StrictStr, StrictStr] | None = None


class AccessFrom(_Model):
    namespace_selectors: list[NamespaceSelector]


class FluxImageRepositorySpec(_Model):
    image: StrictStr
    interval: StrictStr
    timeout: StrictStr | None = None
    secret_ref: LocalObjectReference | None = None
    proxy_secret_ref: LocalObjectReference | None = None
    service_account_name: StrictStr | None = None
    cert_secret_ref: LocalObjectReference | None = None
    suspend: StrictBool = False
    access_from: AccessFrom | None = None
    exclusion_list: list[Regex] | None = Field(None, max_length=25)
    provider: Literal["generic", "aws", "azure", "gcp"] = "generic"
    insecure: StrictBool = False

    _image = field_validator("image")(classmethod(lambda cls, v: check_repository(v)))
    _interval = field_validator("interval")(classmethod(lambda cls, v: check_duration(v)))
    _timeout = field_validator("timeout")(classmethod(lambda cls, v: v if v is None else check_duration(v)))


class FluxImageRepository(_Model):
    api_version: Literal["image.toolkit.fluxcd.io/v1beta2", "image.toolkit.fluxcd.io/v1"]
    kind: Literal["ImageRepository"]
    metadata: FluxObjectMeta
    spec: FluxImageRepositorySpec
    status: dict[str, Any] | None = None


class FluxSemver(_Model):
    range: StrictStr

    _range = field_validator("range")(classmethod(lambda cls, v: check_range(v)))


class FluxChoice(_Model):
    semver: FluxSemver | None = None
    alphabetical: OrderPolicy | None = None
    numerical: OrderPolicy | None = None

    @model_validator(mode="after")
    def _one(self) -> FluxChoice:
        chosen = [name for name, value in self if value is not None]
        if len(chosen) != 1:
            got = ", ".join(chosen) or "none"
            raise ValueError(f"set exactly one of semver, alphabetical, numerical (got {got})")
        return self


class FluxFilterTags(_Model):
    pattern: StrictStr = ""
    extract: StrictStr = ""

    _pattern = field_validator("pattern")(classmethod(lambda cls, v: check_regex(v) if v else v))
    _extract = field_validator("extract")(classmethod(lambda cls, v, info: check_extract(v, info)))


class FluxImagePolicySpec(_Model):
    image_repository_ref: NamespacedObjectReference
    policy: FluxChoice
    filter_tags: FluxFilterTags | None = None
    digest_reflection_policy: Literal["Never", "IfNotPresent", "Always"] = "Never"
    interval: StrictStr | None = None

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        check_duration(value)
        if info.data.get("digest_reflection_policy", "Never") != "Always":
            raise ValueError("spec.interval is only accepted when spec.digestReflectionPolicy is 'Always'")
        return value

    @model_validator(mode="after")
    def _interval_needed(self) -> FluxImagePolicySpec:
        if self.digest_reflection_policy == "Always" and self.interval is None:
            raise ValueError("spec.interval must be set when spec.digestReflectionPolicy is 'Always'")
        return self


class FluxImagePolicySpecV1(FluxImagePolicySpec):
    suspend: StrictBool = False


class FluxImagePolicyV1beta2(_Model):
    api_version: Literal["image.toolkit.fluxcd.io/v1beta2"]
    kind: Literal["ImagePolicy"]
    metadata: FluxObjectMeta
    spec: FluxImagePolicySpec
    status: dict[str, Any] | None = None


class FluxImagePolicyV1(_Model):
    api_version: Literal["image.toolkit.fluxcd.io/v1"]
    kind: Literal["ImagePolicy"]
    metadata: FluxObjectMeta
    spec: FluxImagePolicySpecV1
    status: dict[str, Any] | None = None


FluxImagePolicy = FluxImagePolicyV1beta2 | FluxImagePolicyV1


# --- Flux ImageUpdateAutomation (image.toolkit.fluxcd.io/v1beta2, /v1) ----------------------
# Follows fluxcd/image-automation-controller/api/{v1beta2,v1}. Every field has an effect in
# automator.policy.automation, or is refused there with its file, line and field.

_REFSPEC_PART = re.compile(r"^[^\s~^:?*\[\\]+$")


def check_branch(value: str) -> str:
    name = value.removeprefix("refs/heads/")
    if not name or name.startswith(("-", "/")) or name.endswith((".", "/", ".lock")) or ".." in name or "@{" in name:
        raise ValueError(f"{value!r} is not a valid branch name")
    if not _REFSPEC_PART.match(name):
        raise ValueError(f"{value!r} is not a valid branch name: no spaces or any of ~ ^ : ? * [ \\")
    return value


class FluxCrossNamespaceSourceReference(_Model):
    api_version: StrictStr | None = None
    kind: StrictStr = "GitRepository"
    name: Name
    namespace: StrictStr | None = None

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value != "GitRepository":
            raise ValueError(f"source kind {value!r} is not supported; an automation updates a GitRepository")
        return value

    _namespace = field_validator("namespace")(classmethod(lambda cls, v: v if v is None else check_namespace(v)))


class FluxGitRepositoryRef(_Model):
    branch: StrictStr | None = None
    tag: StrictStr | None = None
    semver: StrictStr | None = None
    name: StrictStr | None = None
    commit: StrictStr | None = None

    _branch = field_validator("branch")(classmethod(lambda cls, v: v if v is None else check_branch(v)))


class FluxGitCheckoutSpec(_Model):
    ref: FluxGitRepositoryRef


class FluxCommitUser(_Model):
    name: StrictStr | None = None
    email: StrictStr = Field(min_length=1)


class FluxSigningKeyV1beta2(_Model):
    secret_ref: LocalObjectReference


class FluxSigningKey(FluxSigningKeyV1beta2):
    type: Literal["gpg", "ssh"] = "gpg"


class FluxCommitSpec(_Model):
    author: FluxCommitUser
    signing_key: FluxSigningKeyV1beta2 | None = None
    message_template: StrictStr | None = None
    message_template_values: dict[StrictStr, StrictStr] | None = None


class FluxCommitSpecV1(FluxCommitSpec):
    signing_key: FluxSigningKey | None = None


class FluxPushSpec(_Model):
    branch: StrictStr | None = None
    refspec: StrictStr | None = None
    options: dict[StrictStr, StrictStr] | None = None

    _branch = field_validator("branch")(classmethod(lambda cls, v: v if not v else check_branch(v)))


class FluxGitSpec(_Model):
    checkout: FluxGitCheckoutSpec | None = None
    commit: FluxCommitSpec
    push: FluxPushSpec | None = None


class FluxGitSpecV1(FluxGitSpec):
    commit: FluxCommitSpecV1


class LabelSelectorRequirement(_Model):
    key: StrictStr = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[StrictStr] | None = None

    @model_validator(mode="after")
    def _values(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs a non-empty values list")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(_Model):
    match_labels: dict[StrictStr, StrictStr] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class FluxUpdateStrategy(_Model):
    strategy: StrictStr = "Setters"
    path: StrictStr | None = None

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        if value != "Setters":
            raise ValueError(f"update strategy {value!r} is not supported; the only strategy is 'Setters'")
        return value


class FluxImageUpdateAutomationSpec(_Model):
    source_ref: FluxCrossNamespaceSourceReference
    git: FluxGitSpec | None = None
    interval: StrictStr
    policy_selector: LabelSelector | None = None
    update: FluxUpdateStrategy | None = None
    suspend: StrictBool = False

    _interval = field_validator("interval")(classmethod(lambda cls, v: check_duration(v)))


class FluxImageUpdateAutomationSpecV1(FluxImageUpdateAutomationSpec):
    git: FluxGitSpecV1 | None = None


class FluxImageUpdateAutomationV1beta2(_Model):
    api_version: Literal["image.toolkit.fluxcd.io/v1beta2"]
    kind: Literal["ImageUpdateAutomation"]
    metadata: FluxObjectMeta
    spec: FluxImageUpdateAutomationSpec
    status: dict[str, Any] | None = None


class FluxImageUpdateAutomationV1(_Model):
    api_version: Literal["image.toolkit.fluxcd.io/v1"]
    kind: Literal["ImageUpdateAutomation"]
    metadata: FluxObjectMeta
    spec: FluxImageUpdateAutomationSpecV1
    status: dict[str, Any] | None = None


# --- Flux GitRepository (source.toolkit.fluxcd.io): only what an automation's sourceRef needs --

SOURCE_GROUP = "source.toolkit.fluxcd.io"


class _Lenient(BaseModel):
    """Someone else's kind: the fields automator reads are checked, the rest is theirs."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=False, frozen=True)


class GitRepositoryMeta(_Lenient):
    name: StrictStr
    namespace: StrictStr | None = None


class GitRepositoryRef(_Lenient):
    branch: StrictStr | None = None
    tag: StrictStr | None = None
    semver: StrictStr | None = None
    name: StrictStr | None = None
    commit: StrictStr | None = None


class GitRepositorySpec(_Lenient):
    url: StrictStr
    ref: GitRepositoryRef | None = None


class FluxGitRepository(_Lenient):
    api_version: StrictStr
    kind: Literal["GitRepository"]
    metadata: GitRepositoryMeta
    spec: GitRepositorySpec
