"""policy stage: policy files (native and Flux) in, frozen :class:`Policy` values out;
and the pure tag choice for each policy kind.

Public API::

    load_policies(root, paths=None) -> PolicySet
    choose(policy, tags, current=None, created=None) -> TagChoice
    candidates(policy, tags) -> list[str]
"""

from automator.policy.choose import candidates, choose
from automator.policy.loader import ParseCache, PolicySet, load_policies
from automator.policy.model import (
    DEFAULT_EXCLUDES,
    AlphabeticalChoice,
    Choice,
    DigestChoice,
    DigestMode,
    Identity,
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
    SkippedTag,
    SourceLocation,
    TagChoice,
    TagFilter,
    VerifyMode,
    VerifyRule,
)

__all__ = [
    "DEFAULT_EXCLUDES",
    "AlphabeticalChoice",
    "Choice",
    "DigestChoice",
    "DigestMode",
    "Identity",
    "NewestBuildChoice",
    "NumericalChoice",
    "Order",
    "ParseCache",
    "Policy",
    "PolicySet",
    "PromotionQuery",
    "PromotionRule",
    "PromotionStep",
    "ProvenanceRule",
    "PublicKey",
    "SemverChoice",
    "SkippedTag",
    "SourceLocation",
    "TagChoice",
    "TagFilter",
    "VerifyMode",
    "VerifyRule",
    "candidates",
    "choose",
    "load_policies",
]
