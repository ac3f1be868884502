"""The verifier: whether one candidate digest carries a signature (and provenance) a policy trusts.

One :class:`Verifier` serves a process: its verdicts are kept by repository, digest and rule (a
digest never changes what it names, so a verdict holds until the process ends; a check that could
not run -- the registry down -- is not kept), and :attr:`Verifier.stats` counts verifications by
result for metrics. Key-based signatures are checked here with ``cryptography``
(:mod:`automator.verify.cosign`); keyless ones through sigstore-python
(:mod:`automator.verify.keyless`), imported only when a policy names identities.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from automator.errors import AutomatorError, SignatureError
from automator.policy.model import Policy, VerifyRule
from automator.refs import ImageRef
from automator.registry.base import ArtifactRegistry
from automator.verify import cosign
from automator.verify.cosign import FormatError, Signed
from automator.verify.layout import ReferrersSupport, attestations, signatures

MAX_CANDIDATES = 10  # candidates verified per policy per cycle, best first, until one verifies
MAX_SIGNATURES = 32  # signatures (or attestations) read per candidate
MAX_KEY_BYTES = 64 << 10
RESULTS = ("verified", "rejected", "unsigned", "error")


@dataclass(frozen=True)
class Verdict:
    """The outcome for one digest: ``ok`` and why (what verified, or what was wrong with each
    signature found). ``result``: verified | rejected (signatures, none trusted) | unsigned |
    error (the check could not run: ``error`` says why)."""

    ok: bool
    result: str
    reason: str
    error: AutomatorError | None = None


class VerifyStats:
    """Verifications by result (:data:`RESULTS`) and verdicts answered from the cache, for metrics."""

    def __init__(self) -> None:
        self.results: Counter[str] = Counter(dict.fromkeys(RESULTS, 0))
        self.cached = 0

    def snapshot(self) -> Mapping[str, int]:
        return {**self.results, "cached": self.cached}


@dataclass(frozen=True)
class _Key:
    where: str
    pem: str


class Verifier:
    """Checks candidates' cosign signatures; see the module docstring.

    ``secrets_dir``: where Secrets named by ``publicKeys[].secretRef`` are mounted
    (``DIR/NAME/KEY``; the ``--credentials-dir``). ``trusted_root``: the Sigstore
    ``trusted_root.json`` for keyless identities when the policy names none (a private or
    air-gapped Sigstore); without either, Sigstore's public-good root from sigstore-python's
    TUF cache is used, offline.
    """

    def __init__(
        self,
        *,
        secrets_dir: Path | None = None,
        trusted_root: Path | None = None,
        max_candidates: int = MAX_CANDIDATES,
    ) -> None:
        self.secrets_dir = secrets_dir
        self.trusted_root = trusted_root
        self.max_candidates = max_candidates
        self.stats = VerifyStats()
        self._verdicts: dict[tuple[str, str, VerifyRule], asyncio.Future[Verdict] | Verdict] = {}
        self._referrers = ReferrersSupport()  # which hosts have GET /v2/<name>/referrers/<digest>

    async def verify(self, registry: ArtifactRegistry, policy: Policy, digest: str) -> Verdict:
        """The verdict for ``digest`` of ``policy``'s repository under ``policy.verify``."""
        rule = policy.verify
        assert rule is not None
        key = (policy.image.repository, digest, rule)
        known = self._verdicts.get(key)
        if isinstance(known, Verdict):
            self.stats.cached += 1
            return known
        if known is not None:
            self.stats.cached += 1
            return await asyncio.shield(known)
        pending: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._verdicts[key] = pending
        try:
            verdict = await self._check(registry, policy.image, rule, digest)
        except BaseException as exc:
            self._verdicts.pop(key, None)
            if isinstance(exc, AutomatorError):
                verdict = Verdict(False, "error", f"could not be checked: {exc}", exc)
                pending.set_result(verdict)
                self.stats.results["error"] += 1
                return verdict
            if isinstance(exc, asyncio.CancelledError):
                pending.cancel()
            else:
                pending.set_exception(exc)
                pending.exception()  # retrieved: waiters re-raise it; nobody waiting is not an error
            raise
        if verdict.ok:
            self._verdicts[key] = verdict  # a signature that verified stays verified
        else:
            # unsigned or rejected may change: CI signs a moment after it pushes, a good signature
            # is added beside a bad one. Those scans waiting now share it; the next scan asks again
            self._verdicts.pop(key, None)
        pending.set_result(verdict)
        self.stats.results[verdict.result] += 1
        return verdict

    # --- one digest ---------------------------------------------------------------------------

    def _keys(self, rule: VerifyRule) -> list[_Key]:
        keys = []
        for key in rule.keys:
            if key.pem is not None:
                keys.append(_Key(key.where, key.pem))
                continue
            keys.append(_Key(key.where, self._secret_key(key.where, key.secret or "", key.key)))
        return keys

    def _secret_key(self, where: str, name: str, item: str) -> str:
        if self.secrets_dir is None:
            raise SignatureError(
                f"{where}: a key Secret is read from --credentials-dir, which is not set; set it, or give the "
                "key inline (pem) or as a file of the config repository"
            )
        path = self.secrets_dir / name / item
        try:
            with path.open("rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise SignatureError(f"{where}: {path} is not a regular file")
                data = fh.read(MAX_KEY_BYTES + 1)
        except OSError as exc:
            raise SignatureError(
                f"{where}: cannot read {path} ({exc.strerror or exc}); mount the Secret under --credentials-dir"
            ) from None
        try:
            text = data.decode("utf-8")
            from automator.policy.schema_models import check_public_key_pem  # noqa: PLC0415

            check_public_key_pem(text)
        except (UnicodeDecodeError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise SignatureError(f"{where}: {path}: {reason}") from None
        return text

    async def _check(self, registry: ArtifactRegistry, image: ImageRef, rule: VerifyRule, digest: str) -> Verdict:
        keys = self._keys(rule)
        keyless = self._keyless(rule) if rule.identities else None
        problems: list[str] = []
        verified: str | None = None
        found = 0
        try:
            async for signed in _bounded(signatures(registry, image, digest, self._referrers)):
                found += 1
                ok, why = self._signature(signed, digest, keys, keyless)
                if ok:
                    verified = why
                    break
                problems.append(why)
        except FormatError as exc:
            problems.append(str(exc))
        if verified is None:
            if not found and not problems:
                return Verdict(False, "unsigned", "no signature (neither a .sig tag nor a referrer)")
            return Verdict(False, "rejected", "no signature verified: " + "; ".join(problems[:3]))
        if rule.provenance is None:
            return Verdict(True, "verified", verified)
        ok, why = await self._provenance(registry, image, rule, digest, keys=keys, keyless=keyless)
        if not ok:
            return Verdict(False, "rejected", f"signed ({verified}), but {why}")
        return Verdict(True, "verified", f"{verified}; {why}")

    def _keyless(self, rule: VerifyRule) -> object:
        from automator.verify.keyless import KeylessChecker  # noqa: PLC0415 - sigstore only when needed

        return KeylessChecker.for_rule(rule, self.trusted_root)

    def _signature(self, signed: Signed, digest: str, keys: list[_Key], keyless: object) -> tuple[bool, str]:
        try:
            if signed.kind == "simple-signing":
                return _simple_signing(signed, digest, keys, keyless)
            if signed.kind == "bundle":
                return _bundle(signed, digest, keys, keyless, attestation=False)
        except FormatError as exc:
            return False, f"{signed.where}: {exc}"
        return False, f"{signed.where}: not a signature"

    async def _provenance(
        self,
        registry: ArtifactRegistry,
        image: ImageRef,
        rule: VerifyRule,
        digest: str,
        *,
        keys: list[_Key],
        keyless: object,
    ) -> tuple[bool, str]:
        assert rule.provenance is not None
        problems: list[str] = []
        try:
            async for signed in _bounded(attestations(registry, image, digest, self._referrers)):
                try:
                    envelope, why = _attestation(signed, digest, keys, keyless)
                    if envelope is None:
                        problems.append(why)
                        continue
                    doc = cosign.statement(envelope, signed.where)
                    if not cosign.names_digest(doc, digest):
                        problems.append(f"{signed.where}: the statement's subject is another digest")
                        continue
                    if doc.get("predicateType") not in (cosign.SLSA_V1, cosign.SLSA_V02):
                        continue  # another attestation (an SBOM, a vulnerability scan)
                    problem = cosign.provenance_problem(doc, rule.provenance)
                except FormatError as exc:
                    problems.append(f"{signed.where}: {exc}")
                    continue
                if problem is None:
                    return True, f"provenance verified ({signed.where}, {why})"
                problems.append(f"{signed.where}: {problem}")
        except FormatError as exc:
            problems.append(str(exc))
        if not problems:
            return False, "no SLSA provenance attestation (.att tag or referrer) was found"
        return False, "no provenance satisfies the rule: " + "; ".join(problems[:3])


async def _bounded(found: AsyncIterator[Signed]) -> AsyncIterator[Signed]:
    count = 0
    async for signed in found:
        yield signed
        count += 1
        if count >= MAX_SIGNATURES:
            return


def _by_key(keys: list[_Key], data: bytes, signature: bytes, *, prehashed: bool = False) -> _Key | None:
    return next((k for k in keys if cosign.verify_key(k.pem, data, signature, prehashed=prehashed)), None)


def _simple_signing(signed: Signed, digest: str, keys: list[_Key], keyless: object) -> tuple[bool, str]:
    named = cosign.simple_signing_digest(signed.payload)
    if named != digest:
        return False, f"{signed.where}: the signed payload is for {named}, not this image"
    if signed.certificate is not None:
        if keyless is None:
            return False, f"{signed.where}: a keyless signature, and the policy names no identities"
        from automator.verify.keyless import KeylessChecker  # noqa: PLC0415

        assert isinstance(keyless, KeylessChecker)
        return keyless.legacy(signed)
    if not keys:
        return False, f"{signed.where}: signed with a key, and the policy names no publicKeys"
    key = _by_key(keys, signed.payload, signed.signature)
    if key is None:
        return False, f"{signed.where}: the signature does not verify with {_names(keys)}"
    return True, f"signed with {key.where} ({signed.where})"


def _names(keys: list[_Key]) -> str:
    return keys[0].where if len(keys) == 1 else f"any of the {len(keys)} publicKeys"


def _bundle(signed: Signed, digest: str, keys: list[_Key], keyless: object, *, attestation: bool) -> tuple[bool, str]:
    assert signed.bundle is not None
    bundle = cosign.parse_bundle(signed.bundle, signed.where)
    if bundle.envelope is not None and not attestation:
        doc = cosign.statement(bundle.envelope, signed.where)
        if doc.get("predicateType") != cosign.COSIGN_SIGN_PREDICATE:
            return False, f"{signed.where}: an attestation ({doc.get('predicateType')}), not a signature"
        if not cosign.names_digest(doc, digest):
            return False, f"{signed.where}: the signed statement is for another digest"
    elif bundle.message_signature is not None and bundle.message_digest != digest:
        return False, f"{signed.where}: the bundle signs {bundle.message_digest}, not this image"
    if bundle.certificate:
        if keyless is None:
            return False, f"{signed.where}: a keyless bundle, and the policy names no identities"
        from automator.verify.keyless import KeylessChecker  # noqa: PLC0415

        assert isinstance(keyless, KeylessChecker)
        return keyless.bundle(signed, digest)
    if not keys:
        return False, f"{signed.where}: signed with a key, and the policy names no publicKeys"
    if bundle.envelope is not None:
        key = next((k for k in keys if cosign.envelope_verifies(k.pem, bundle.envelope)), None)
    else:
        assert bundle.message_signature is not None
        key = _by_key(keys, bytes.fromhex(digest.partition(":")[2]), bundle.message_signature, prehashed=True)
    if key is None:
        return False, f"{signed.where}: the bundle's signature does not verify with {_names(keys)}"
    return True, f"signed with {key.where} ({signed.where})"


def _attestation(signed: Signed, digest: str, keys: list[_Key], keyless: object) -> tuple[cosign.Envelope | None, str]:
    """The DSSE envelope of an attestation whose signature verifies, or None and why not."""
    if signed.kind == "bundle":
        assert signed.bundle is not None
        bundle = cosign.parse_bundle(signed.bundle, signed.where)
        if bundle.envelope is None:
            return None, f"{signed.where}: not an attestation"
        ok, why = _bundle(signed, digest, keys, keyless, attestation=True)
        return (bundle.envelope if ok else None), why
    envelope = cosign.envelope_of(signed.payload, signed.where)
    if signed.certificate is not None:
        if keyless is None:
            return None, f"{signed.where}: a keyless attestation, and the policy names no identities"
        from automator.verify.keyless import KeylessChecker  # noqa: PLC0415

        assert isinstance(keyless, KeylessChecker)
        ok, why = keyless.legacy(signed)
        return (envelope if ok else None), why
    key = next((k for k in keys if cosign.envelope_verifies(k.pem, envelope)), None)
    if key is None:
        return None, f"{signed.where}: the attestation's signature does not verify with {_names(keys)}"
    return envelope, f"signed with {key.where}"
