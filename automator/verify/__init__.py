"""verify stage: whether a candidate image carries a cosign signature (and SLSA provenance) a
policy trusts, before the scan proposes it.

Public API::

    verifier = Verifier(secrets_dir=..., trusted_root=...)   # one per process: verified digests kept
    verdict = await verifier.verify(registry, policy, digest)  # registry: an ArtifactRegistry
    verifier.stats.snapshot()                                  # {"verified": n, "rejected": n, ...}
    default_verifier()                                         # the process's own, for scans given none
"""

from automator.verify.cosign import is_signature_tag
from automator.verify.verifier import MAX_CANDIDATES, RESULTS, Verdict, Verifier, VerifyStats

_DEFAULT: list[Verifier] = []


def default_verifier() -> Verifier:
    """The process's verifier (its cache and counts), made on first use without a Secret
    directory or trust root of its own; the service installs a configured one with
    :func:`set_default_verifier`."""
    if not _DEFAULT:
        _DEFAULT.append(Verifier())
    return _DEFAULT[0]


def set_default_verifier(verifier: Verifier) -> None:
    _DEFAULT[:] = [verifier]


__all__ = [
    "MAX_CANDIDATES",
    "RESULTS",
    "Verdict",
    "Verifier",
    "VerifyStats",
    "default_verifier",
    "is_signature_tag",
    "set_default_verifier",
]
