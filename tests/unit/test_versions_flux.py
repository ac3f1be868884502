"""Tags read as versions the way Flux reads them (issue #12 part 6).

Flux's image-reflector-controller reads a tag with ``fluxcd/pkg/version.ParseVersion``: the
tag must split into three parts at its first two dots, then Masterminds' ``NewVersion``
(semver v3.5, ``CoerceNewVersion`` on) reads it: leading zeros in major, minor and patch are
coerced (``v2025.07.03`` is 2025.7.3), one- and two-part versions are padded, numbers beyond
uint64 and numeric pre-release identifiers with a leading zero are refused.  Our lenient mode
is ``NewVersion`` alone, our strict mode (Flux documents) is ``ParseVersion``.

The tables restate the cases of Flux's and Masterminds' own tests with our own additions;
each row's answer was checked against the Go libraries.
"""

from __future__ import annotations

import pytest

from automator.policy import Policy, SemverChoice, SourceLocation, choose
from automator.policy.versions import RangeError, parse_range, parse_version
from automator.refs import parse_reference

IMAGE = parse_reference("ghcr.io/example/app")

# tag -> (major, minor, patch, prerelease, build) as NewVersion reads it; None: refused
NEW_VERSION: list[tuple[str, tuple[int, int, int, str, str] | None]] = [
    ("v2025.07.03", (2025, 7, 3, "", "")),
    ("2025.07.03", (2025, 7, 3, "", "")),
    ("v2025.07.03-rc.1", (2025, 7, 3, "rc.1", "")),
    ("01.2.3", (1, 2, 3, "", "")),
    ("1.01.1", (1, 1, 1, "", "")),
    ("1.1.01", (1, 1, 1, "", "")),
    ("00.00.00", (0, 0, 0, "", "")),
    ("v1.0", (1, 0, 0, "", "")),
    ("v1", (1, 0, 0, "", "")),
    ("1", (1, 0, 0, "", "")),
    ("1.2-5", (1, 2, 0, "5", "")),
    ("v1.2-beta.5", (1, 2, 0, "beta.5", "")),
    ("1.2+a.b", (1, 2, 0, "", "a.b")),
    ("v1.2.0-x.Y.0+metadata", (1, 2, 0, "x.Y.0", "metadata")),
    ("v1.2.3-rc1-with-hypen", (1, 2, 3, "rc1-with-hypen", "")),
    ("1.2.3-0abc123", (1, 2, 3, "0abc123", "")),
    ("1.2.3+test.01", (1, 2, 3, "", "test.01")),
    ("1.2.3-alpha.-1", (1, 2, 3, "alpha.-1", "")),
    ("1.2.3--", (1, 2, 3, "-", "")),
    ("20221209-update-renovatejson-v4", (20221209, 0, 0, "update-renovatejson-v4", "")),
    ("18446744073709551615.0.0", (18446744073709551615, 0, 0, "", "")),
    ("1.0.0-18446744073709551616", (1, 0, 0, "18446744073709551616", "")),
    ("1.2.beta", None),
    ("1.2.3.4", None),
    ("12.3.4.1234", None),
    ("\nv1.2", None),
    ("1.2.3\n", None),
    (" 1.2.3", None),
    ("1.2.3 ", None),
    ("V1.2.3", None),
    ("vv1.2.3", None),
    ("1.2.3-alpha.01", None),
    ("1.2.3-beta.01", None),
    ("1.0.0-alpha_beta", None),
    ("1.0.0-alpha..1", None),
    ("1.0.0-", None),
    ("1.0.0+", None),
    ("9.8.7+meta+meta", None),
    ("1.1.2+.123", None),
    ("18446744073709551616.0.0", None),
    ("1.18446744073709551616.0", None),
    ("latest", None),
    ("1.2.3-\u0661", None),  # an Arabic-Indic digit is no digit to Go
    ("\u0661.2.3", None),
    ("", None),
]

# ParseVersion adds one rule: three parts at the first two dots (a dot in the build counts)
FLUX_ONLY_REFUSES = ["v1.0", "v1", "1", "1.2-5", "20221209-update-renovatejson-v4"]
FLUX_STILL_READS = ["v1.2-beta.5", "1.2+a.b", "v2025.07.03", "01.2.3"]


def _parts(tag: str, strict: bool) -> tuple[int, int, int, str, str] | None:
    v = parse_version(tag, strict=strict)
    if v is None:
        return None
    major, minor, patch, _release, _pre = v.key
    pre = tag.split("+", 1)[0].partition("-")[2] if v.prerelease else ""
    return (major, minor, patch, pre, v.build)


@pytest.mark.parametrize(("tag", "expected"), NEW_VERSION)
def test_lenient_reads_what_new_version_reads(tag: str, expected: tuple[int, int, int, str, str] | None) -> None:
    assert _parts(tag, strict=False) == expected


@pytest.mark.parametrize(("tag", "expected"), NEW_VERSION)
def test_strict_reads_what_flux_parse_version_reads(tag: str, expected: tuple[int, int, int, str, str] | None) -> None:
    want = None if tag in FLUX_ONLY_REFUSES else expected
    assert _parts(tag, strict=True) == want


@pytest.mark.parametrize("tag", FLUX_STILL_READS)
def test_strict_needs_two_dots_not_three_numbers(tag: str) -> None:
    assert parse_version(tag, strict=True) is not None


# ascending, as Masterminds' Compare orders them (equal neighbours marked by the same group)
ORDERED: list[list[str]] = [
    ["1.0.0-18446744073709551615"],
    ["1.0.0-18446744073709551616"],  # past uint64 a numeric identifier compares as text
    ["1.0.0-alpha"],
    ["1.0.0"],
    ["01.2.3", "1.2.3", "v1.2.3", "1.2.3+build"],
    ["v2025.07.03-rc.1"],
    ["2025.7.3", "v2025.07.03"],
    ["v2025.07.10"],
    ["2025.10.01"],
]


def test_order_is_masterminds_compare() -> None:
    keys = []
    for group in ORDERED:
        versions = [parse_version(t) for t in group]
        assert None not in versions, group
        group_keys = {v.key for v in versions if v is not None}
        assert len(group_keys) == 1, group
        keys.append(group_keys.pop())
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize(
    ("rng", "tag", "allowed"),
    [
        (">=2025.07.01", "v2025.07.03", True),
        (">=2025.07.04", "v2025.07.03", False),
        ("~2025.07", "2025.7.9", True),
        ("2025.07.x", "2025.7.31", True),
        ("^01.2", "1.9.0", True),
        ("=01", "1.5.0", True),
    ],
)
def test_ranges_coerce_leading_zeros_as_masterminds(rng: str, tag: str, allowed: bool) -> None:
    v = parse_version(tag)
    assert v is not None
    assert parse_range(rng).allows(v.key) is allowed


@pytest.mark.parametrize("rng", [">=1.0.0-01", ">=18446744073709551616", "^1.18446744073709551616"])
def test_ranges_masterminds_refuses(rng: str) -> None:
    with pytest.raises(RangeError):
        parse_range(rng)


def _flux_policy(rng: str) -> Policy:
    return Policy(
        "flux-system:app",
        IMAGE,
        SemverChoice(rng, strict=True),
        SourceLocation("p.yaml", 1),
        origin="flux/v1",
    )


@pytest.mark.parametrize(
    ("rng", "tags", "expected"),
    [
        # the case: a v-prefixed CalVer with leading zeros is a version to Flux
        (">=2025.0.0", ["v2025.06.30", "v2025.07.03", "latest"], "v2025.07.03"),
        ("~2025.7", ["v2025.07.03", "v2025.07.10", "v2025.08.01"], "v2025.07.10"),
        # two dots anywhere: Flux reads v1.2-beta.5 as 1.2.0-beta.5, v1.2 is not read
        (">=1.0.0-0", ["v1.2-beta.5", "v1.1"], "v1.2-beta.5"),
        # beyond uint64 is no version
        (">=1.0.0", ["18446744073709551616.0.0", "1.0.0"], "1.0.0"),
    ],
)
def test_flux_semver_policy_reads_calver(rng: str, tags: list[str], expected: str) -> None:
    assert choose(_flux_policy(rng), tags).tag == expected


@pytest.mark.parametrize(
    ("rng", "tags", "expected"),
    [
        (">=2025.0.0", ["v2025.06.30", "v2025.07.03"], "v2025.07.03"),
        ("*", ["1.2.3\n", "1.0.0"], "1.0.0"),
        ("*", ["1.2.3-\u0661", "\u0661.2.3", "1.0.0"], "1.0.0"),
    ],
)
def test_native_semver_policy_reads_like_new_version(rng: str, tags: list[str], expected: str) -> None:
    p = Policy("apps:app", IMAGE, SemverChoice(rng, allow_prerelease=True), SourceLocation("p.yaml", 1))
    assert choose(p, tags).tag == expected
