"""Semver choice: ranges, tricky tags, pre-releases, ties, never-downgrade, variants."""

from __future__ import annotations

from typing import ClassVar

import pytest

from automator.policy import Policy, SemverChoice, SourceLocation, TagFilter, choose
from automator.refs import parse_reference

IMAGE = parse_reference("ghcr.io/example/app")
TRICKY = ["1.2.3-alpine", "v1.2.3", "1.2", "01.2.3", "latest", "20240101-abc1234", "1.0.0+build"]


def policy(
    rng: str,
    *,
    pre: bool = False,
    strict: bool = False,
    variant: bool = False,
    downgrade: bool = False,
    tag_filter: TagFilter | None = None,
) -> Policy:
    return Policy(
        name="apps:app",
        image=IMAGE,
        choice=SemverChoice(rng, allow_prerelease=pre, strict=strict),
        source=SourceLocation("p.yaml", 1),
        filter=tag_filter,
        variant_aware=variant,
        allow_downgrade=downgrade,
    )


@pytest.mark.parametrize(
    ("rng", "tags", "expected"),
    [
        (">=1.2 <2", ["1.1.0", "1.2.0", "1.9.9", "2.0.0"], "1.9.9"),
        (">=1.2, <2", ["1.1.0", "1.2.0", "1.9.9", "2.0.0"], "1.9.9"),
        ("^1.2", ["1.1.9", "1.2.0", "1.8.1", "2.0.0"], "1.8.1"),
        ("^0.2", ["0.2.1", "0.2.9", "0.3.0"], "0.2.9"),
        ("^0.0.3", ["0.0.3", "0.0.4"], "0.0.3"),
        ("~1.2.3", ["1.2.2", "1.2.3", "1.2.9", "1.3.0"], "1.2.9"),
        ("~>1.2", ["1.2.0", "1.2.7", "1.3.0"], "1.2.7"),
        ("~1", ["1.0.0", "1.9.0", "2.0.0"], "1.9.0"),
        ("1.2.x", ["1.2.0", "1.2.7", "1.3.0"], "1.2.7"),
        ("1.X", ["1.2.0", "1.9.7", "2.0.0"], "1.9.7"),
        ("1.2", ["1.2.0", "1.2.7", "1.3.0"], "1.2.7"),
        ("*", ["0.0.1", "3.4.5", "1.0.0"], "3.4.5"),
        ("=1.2.3", ["1.2.3", "1.2.4"], "1.2.3"),
        ("1.2.3", ["1.2.3", "1.2.4"], "1.2.3"),
        ("!=2.0.0", ["1.0.0", "2.0.0"], "1.0.0"),
        ("!=2.x", ["1.0.0", "2.5.0"], "1.0.0"),
        ("<1 || >=3", ["0.9.0", "1.5.0", "2.9.0"], "0.9.0"),
        ("<1 || >=3", ["0.9.0", "1.5.0", "3.1.0"], "3.1.0"),
        ("1.2 - 1.4", ["1.1.0", "1.2.0", "1.4.9", "1.5.0"], "1.4.9"),
        ("1.2.3 - 1.4.5", ["1.4.5", "1.4.6"], "1.4.5"),
        (">1.2", ["1.2.9", "1.3.0"], "1.3.0"),
        (">1.2.3", ["1.2.3", "1.2.4"], "1.2.4"),
        (">1", ["1.9.0", "2.0.0"], "2.0.0"),
        ("<=1.2", ["1.2.9", "1.3.0"], "1.2.9"),
        ("<=1.2.3", ["1.2.3", "1.2.4"], "1.2.3"),
        ("<2", ["1.9.9", "2.0.0"], "1.9.9"),
        (">= 1.2 < 2", ["1.5.0", "2.0.0"], "1.5.0"),
        (">=1.0.0", ["v1.2.3", "1.0.0"], "v1.2.3"),
        (">10 <2", ["1.0.0", "11.0.0"], None),
    ],
)
def test_ranges(rng: str, tags: list[str], expected: str | None) -> None:
    assert choose(policy(rng), tags).tag == expected


@pytest.mark.parametrize(
    ("rng", "strict", "pre", "expected"),
    [
        # lenient (Masterminds NewVersion): 1.2 -> 1.2.0; v prefix ok; 01.2.3 is 1.2.3 too
        (">=1.0 <2", False, False, "v1.2.3"),
        # v1.2.3 and 01.2.3 are both 1.2.3: the greater tag wins the tie
        ("~1.2.0", False, False, "v1.2.3"),
        ("=1.2.0", False, False, "1.2"),
        ("=1.0.0", False, False, "1.0.0+build"),
        # strict (Flux's ParseVersion): two dots, then NewVersion
        (">=1.0 <2", True, False, "v1.2.3"),
        ("=1.2.0", True, False, None),
        # pre-releases: 1.2.3-alpine and 20240101-abc1234 are pre-releases to semver
        ("*", False, False, "v1.2.3"),
        ("*", False, True, "20240101-abc1234"),
        ("*", True, True, "v1.2.3"),
        ("~1.2.3-0", False, False, "v1.2.3"),
        ("<1.2.3", False, True, "1.2.3-alpine"),
    ],
)
def test_tricky_tags(rng: str, strict: bool, pre: bool, expected: str | None) -> None:
    assert choose(policy(rng, strict=strict, pre=pre), TRICKY).tag == expected


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["1.2.3", "v1.2.3"], "v1.2.3"),
        (["1.2", "1.2.0"], "1.2.0"),
        (["01.2.3", "1.2.3"], "1.2.3"),  # both 1.2.3 (leading zeros coerced): the greater tag
        (["1.2", "v1.2"], "v1.2"),
        (["1.0.0+a", "1.0.0+b", "1.0.0"], "1.0.0+b"),
        (["1.2.0-rc.1", "1.2.0"], "1.2.0"),
    ],
)
def test_ties_are_deterministic(tags: list[str], expected: str) -> None:
    p = policy("*", pre=True)
    assert choose(p, tags).tag == expected
    assert choose(p, list(reversed(tags))).tag == expected


@pytest.mark.parametrize(
    ("rng", "tags", "expected"),
    [
        (">=1.0.0-rc.1 <2", ["1.0.0-rc.2", "1.0.0-rc.0", "0.9.0"], "1.0.0-rc.2"),
        (">=1.0.0-rc.1 <2", ["1.0.0-rc.2", "1.0.0"], "1.0.0"),
        # prerelease precedence: numeric < alphanumeric, numbers numerically
        (">=1.0.0-0", ["1.0.0-alpha", "1.0.0-2", "1.0.0-10"], "1.0.0-alpha"),
        (">=1.0.0-0", ["1.0.0-rc.2", "1.0.0-rc.10"], "1.0.0-rc.10"),
        (">=1.0.0-0", ["1.0.0-alpha", "1.0.0-alpha.1"], "1.0.0-alpha.1"),
        # a pre-release named in one || alternative does not open the other one
        ("^1.0.0 || >=3.0.0-0", ["1.5.0-rc.1", "1.4.0"], "1.4.0"),
        ("^1.0.0 || >=3.0.0-0", ["1.5.0-rc.1", "3.0.0-beta"], "3.0.0-beta"),
    ],
)
def test_prereleases_only_when_named(rng: str, tags: list[str], expected: str) -> None:
    assert choose(policy(rng), tags).tag == expected


def test_invalid_prerelease_identifier_is_not_a_version() -> None:
    assert choose(policy("*", pre=True), ["1.0.0-01", "0.1.0"]).tag == "0.1.0"


class TestNeverDowngrade:
    def test_keeps_current_when_best_is_lower(self) -> None:
        result = choose(policy("^1"), ["1.2.0", "1.3.0"], current="2.0.0")
        assert result.tag == "2.0.0"
        assert "allowDowngrade" in result.reason and "1.3.0" in result.reason

    def test_allow_downgrade(self) -> None:
        assert choose(policy("^1", downgrade=True), ["1.2.0", "1.3.0"], current="2.0.0").tag == "1.3.0"

    def test_upgrade_from_current(self) -> None:
        result = choose(policy("^1"), ["1.2.0", "1.3.0"], current="1.2.0")
        assert (result.tag, result.reason) == ("1.3.0", "")

    def test_equal_version_keeps_current_spelling(self) -> None:
        assert choose(policy("^1"), ["1.3.0", "v1.3.0"], current="v1.3.0").tag == "v1.3.0"
        assert choose(policy("^1"), ["1.3.0"], current="1.3").tag == "1.3"

    def test_current_not_a_version_does_not_block(self) -> None:
        assert choose(policy("^1"), ["1.2.0"], current="latest").tag == "1.2.0"

    def test_current_compared_through_extract(self) -> None:
        f = TagFilter(r"^app-(?P<v>[0-9.]+)$", "$v")
        assert choose(policy("*", tag_filter=f), ["app-1.0.0", "app-1.1.0"], current="app-2.0.0").tag == "app-2.0.0"
        assert choose(policy("*", tag_filter=f), ["app-1.0.0", "app-2.1.0"], current="app-2.0.0").tag == "app-2.1.0"

    def test_nothing_in_range(self) -> None:
        result = choose(policy("^3"), ["1.0.0"], current="1.0.0")
        assert result.tag is None
        assert "^3" in result.reason


class TestVariants:
    TAGS: ClassVar[list[str]] = [
        "1.2.0-alpine",
        "1.3.0-alpine",
        "1.3.0",
        "1.4.0-bookworm",
        "1.2",
        "1.4",
        "1.4.1",
        "v1.5.0",
        "latest",
        "abc1234",
        "1.5.0-alpine3.19",
    ]

    @pytest.mark.parametrize(
        ("current", "expected"),
        [
            ("1.2.0-alpine", "1.3.0-alpine"),
            ("1.2", "1.4"),
            ("1.2.0", "1.4.1"),
            ("1.4.0-bookworm", "1.4.0-bookworm"),
            ("v1.0.0", "v1.5.0"),
            ("1.2.0-alpine3.19", "1.5.0-alpine3.19"),
        ],
    )
    def test_stays_on_variant_and_precision(self, current: str, expected: str) -> None:
        assert choose(policy(">=1", variant=True), self.TAGS, current=current).tag == expected

    def test_range_applies_to_the_numbers(self) -> None:
        assert choose(policy("~1.2", variant=True), self.TAGS, current="1.2.0-alpine").tag == "1.2.0-alpine"

    def test_no_current_uses_plain_rules(self) -> None:
        assert choose(policy(">=1", variant=True), self.TAGS).tag == "v1.5.0"

    def test_current_not_a_version_uses_plain_rules(self) -> None:
        assert choose(policy(">=1", variant=True), self.TAGS, current="latest").tag == "v1.5.0"

    def test_never_downgrades_within_variant(self) -> None:
        result = choose(policy("~1.2", variant=True), self.TAGS, current="1.3.0-alpine")
        assert result.tag == "1.3.0-alpine"
        assert "1.2.0-alpine" in result.reason

    def test_no_matching_shape(self) -> None:
        result = choose(policy(">=1", variant=True), self.TAGS, current="1.2.0-slim")
        assert result.tag is None
        assert "slim" in result.reason

    def test_off_by_default(self) -> None:
        assert choose(policy(">=1"), self.TAGS, current="1.2.0-alpine").tag == "v1.5.0"


def test_result_counts_and_no_digest() -> None:
    tags = ["1.0.0", "1.0.0.sig", "sha256-" + "a" * 64 + ".att", "2.0.0"]
    result = choose(policy("*"), tags)
    assert (result.tag, result.digest, result.seen, result.candidates) == ("2.0.0", None, 4, 2)
    assert result.policy == "apps:app" and result.image == IMAGE
