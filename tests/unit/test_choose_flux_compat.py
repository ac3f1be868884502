"""Flux parity: a policy read from a Flux document chooses what image-reflector-controller would.

The cases restate the behaviour Flux's own policy tests pin down (strict semver with an
optional ``v``, Masterminds ranges, numerical and alphabetical order) with our own data,
and mark the one deliberate difference (non-numeric values are skipped, not fatal).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from automator.policy import (
    AlphabeticalChoice,
    Choice,
    NumericalChoice,
    Order,
    Policy,
    SemverChoice,
    SourceLocation,
    TagFilter,
    choose,
    load_policies,
)
from automator.policy.versions import RangeError, parse_range
from automator.refs import parse_reference

IMAGE = parse_reference("ghcr.io/example/app")


def flux(choice: Choice, tag_filter: TagFilter | None = None) -> Policy:
    return Policy("flux-system:app", IMAGE, choice, SourceLocation("p.yaml", 1), filter=tag_filter, origin="flux/v1")


def shuffled(tags: list[str]) -> list[str]:
    out = list(tags)
    random.Random(7).shuffle(out)
    return out


@pytest.mark.parametrize("rng", ["1.0.x", "^1.0", "=1.0.0", "~1.0", ">=1.0", ">0,<2.0", ">0, <2.0", "1.0.0 - 2"])
def test_ranges_flux_accepts(rng: str) -> None:
    parse_range(rng)


@pytest.mark.parametrize("rng", ["1.0.0p", "1x", "x1", "-1", "a", "", ">= 1.0 <", "~>", "1.0 ||| 2"])
def test_ranges_flux_refuses(rng: str) -> None:
    with pytest.raises(RangeError):
        parse_range(rng)


@pytest.mark.parametrize(
    ("rng", "tags", "expected"),
    [
        ("1.0.x", ["1.0.0", "1.0.0.1", "1.0.0p", "1.0.1", "1.2.0", "0.1.0"], "1.0.1"),
        ("1.0.x", ["v1.2.3", "v1.0.0", "v0.1.0"], "v1.0.0"),
        ("1.0.x", ["b1.2.3", "b1.0.0", "b0.1.0"], None),
        ("1.0.x", [], None),
        ("1.0.x", ["1.2.0"], None),
        ("1.0.x", ["1.0", "1", "1.0.3"], "1.0.3"),  # Flux's ParseVersion needs two dots: 1.0 and 1 are not versions
        (">=2025.0.0", ["v2025.06.30", "v2025.07.03"], "v2025.07.03"),  # leading zeros coerced (NewVersion)
        ("*", ["2.0.0-rc.1", "1.9.0"], "1.9.0"),
        (">=2.0.0-0", ["2.0.0-rc.1", "1.9.0"], "2.0.0-rc.1"),
    ],
)
def test_semver_like_flux(rng: str, tags: list[str], expected: str | None) -> None:
    assert choose(flux(SemverChoice(rng, strict=True)), tags).tag == expected


@pytest.mark.parametrize(
    ("order", "tags", "expected"),
    [
        (Order.ASC, ["-12", "-80", "64", "63", "8", "9", "8", "31", "-5"], "64"),
        (Order.DESC, ["4", "-7", "-70", "21", "66", "-3"], "-70"),
        (Order.ASC, ["12.5", "-3.25", "12.49999", "0.001"], "12.5"),
        (Order.DESC, ["12.5", "-3.25", "12.49999", "0.001"], "-3.25"),
        (Order.ASC, ["1700000100", "1700000300", "1700000200"], "1700000300"),
        (Order.DESC, ["1700000100", "1700000300", "1700000200"], "1700000100"),
        (Order.ASC, ["7"], "7"),
    ],
)
def test_numerical_like_flux(order: Order, tags: list[str], expected: str) -> None:
    assert choose(flux(NumericalChoice(order)), shuffled(tags)).tag == expected


def test_numerical_skips_what_flux_would_fail_on() -> None:
    # Flux: "failed to parse invalid numeric value"; here the numeric tags still compete.
    assert choose(flux(NumericalChoice()), ["0", "1a", "b"]).tag == "0"


@pytest.mark.parametrize(
    ("order", "tags", "expected"),
    [
        (Order.ASC, ["xenial", "bionic", "focal", "jammy"], "xenial"),
        (Order.DESC, ["xenial", "bionic", "focal", "jammy"], "bionic"),
        (Order.ASC, ["RELEASE.2023-01-31T08-42-01Z", "RELEASE.2024-03-05T10-00-00Z"], "RELEASE.2024-03-05T10-00-00Z"),
        (Order.ASC, ["aaa", "aab", "aa"], "aab"),
        (Order.DESC, ["aaa", "aab", "aa"], "aa"),
    ],
)
def test_alphabetical_like_flux(order: Order, tags: list[str], expected: str) -> None:
    assert choose(flux(AlphabeticalChoice(order)), shuffled(tags)).tag == expected


def test_flux_document_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "image.yaml").write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1beta2\n"
        "kind: ImageRepository\n"
        "metadata: {name: app, namespace: flux-system}\n"
        "spec: {image: ghcr.io/example/app, interval: 1m}\n"
        "---\n"
        "apiVersion: image.toolkit.fluxcd.io/v1beta2\n"
        "kind: ImagePolicy\n"
        "metadata: {name: app, namespace: flux-system}\n"
        "spec:\n"
        "  imageRepositoryRef: {name: app}\n"
        "  filterTags: {pattern: '^main-(?P<ts>[0-9]+)-[a-f0-9]+$', extract: '$ts'}\n"
        "  policy: {numerical: {order: asc}}\n",
        encoding="utf-8",
    )
    (policy,) = load_policies(tmp_path).policies
    tags = ["main-100-abc", "main-99-def", "feature-200-aaa", "main-101-ff.sig", "latest"]
    assert choose(policy, tags).tag == "main-100-abc"
