"""Properties of every choice kind: the choice is a filtered candidate, input order never matters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import semver
from hypothesis import given, settings
from hypothesis import strategies as st

from automator.policy import (
    AlphabeticalChoice,
    Choice,
    NewestBuildChoice,
    NumericalChoice,
    Order,
    Policy,
    SemverChoice,
    SourceLocation,
    TagFilter,
    candidates,
    choose,
)
from automator.policy.versions import parse_version
from automator.refs import parse_reference

IMAGE = parse_reference("ghcr.io/example/app")

_num = st.integers(0, 12).map(str)
_pre = st.lists(st.sampled_from(["rc", "alpha", "beta", "0", "1", "2", "10", "alpine"]), min_size=1, max_size=3)
version_tags = st.builds(
    lambda v, a, b, c, pre, build: (
        v
        + ".".join(x for x in (a, b, c) if x is not None)
        + ("-" + ".".join(pre) if pre else "")
        + ("+" + build if build else "")
    ),
    st.sampled_from(["", "v"]),
    _num,
    st.none() | _num,
    st.none() | _num,
    st.none() | _pre,
    st.none() | st.sampled_from(["b1", "build"]),
)
other_tags = st.sampled_from(
    ["latest", "main", "20240101-abc1234", "01.2.3", "1.0.0.sig", "sha256-" + "a" * 64, "12", "3.5", "abc1234"]
)
tags_lists = st.lists(version_tags | other_tags, max_size=25)
choices = st.sampled_from(
    [
        SemverChoice("*"),
        SemverChoice(">=1.2 <5"),
        SemverChoice("^2 || ~7.1", allow_prerelease=True),
        SemverChoice(">=1.0.0-0", strict=True),
        SemverChoice("1.x"),
        NumericalChoice(Order.ASC),
        NumericalChoice(Order.DESC),
        AlphabeticalChoice(Order.ASC),
        AlphabeticalChoice(Order.DESC),
        NewestBuildChoice(),
    ]
)
filters = st.sampled_from([None, TagFilter(r"^v?(?P<n>\d+)", "$n"), TagFilter(r"\.")])


def _policy(choice: Choice, tag_filter: TagFilter | None, variant: bool) -> Policy:
    return Policy("app", IMAGE, choice, SourceLocation("p.yaml", 1), filter=tag_filter, variant_aware=variant)


def _created(tags: list[str]) -> dict[str, datetime]:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    return {t: base + timedelta(minutes=len(t) % 5) for t in tags}  # many ties on purpose


@settings(max_examples=300, deadline=None)
@given(tags=tags_lists, choice=choices, tag_filter=filters, variant=st.booleans(), data=st.data())
def test_choice_is_a_candidate_and_order_free(
    tags: list[str], choice: Choice, tag_filter: TagFilter | None, variant: bool, data: st.DataObject
) -> None:
    p = _policy(choice, tag_filter, variant)
    created = _created(tags)
    current = data.draw(st.none() | st.sampled_from(tags) if tags else st.none())
    result = choose(p, tags, current=current, created=created)
    if result.tag is not None and result.tag != current:
        assert result.tag in candidates(p, tags)
    shuffled = data.draw(st.permutations(tags))
    assert choose(p, shuffled, current=current, created=created).tag == result.tag


@settings(max_examples=200, deadline=None)
@given(tags=tags_lists, choice=choices)
def test_without_current_the_choice_is_always_a_candidate(tags: list[str], choice: Choice) -> None:
    p = _policy(choice, None, False)
    result = choose(p, tags, created=_created(tags))
    assert result.tag is None or result.tag in candidates(p, tags)
    assert result.candidates == len(candidates(p, tags))


@settings(max_examples=300, deadline=None)
@given(a=version_tags, b=version_tags)
def test_precedence_agrees_with_python_semver(a: str, b: str) -> None:
    va, vb = parse_version(a), parse_version(b)
    if va is None or vb is None:  # e.g. a numeric pre-release with a leading zero
        return

    def coerce(v: str) -> semver.Version:
        text = v.removeprefix("v")
        core, sep, rest = text.partition("-") if "-" in text.split("+")[0] else text.partition("+")
        parts = [str(int(x)) for x in core.split(".")] + ["0", "0"]
        return semver.Version.parse(".".join(parts[:3]) + (sep + rest if sep else ""))

    expected = coerce(a).compare(coerce(b))
    got = (va.key > vb.key) - (va.key < vb.key)
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(tags=st.lists(version_tags, max_size=25), current=version_tags)
def test_semver_never_downgrades(tags: list[str], current: str) -> None:
    p = _policy(SemverChoice("*", allow_prerelease=True), None, False)
    result = choose(p, tags, current=current)
    cur = parse_version(current)
    chosen = parse_version(result.tag) if result.tag else None
    if cur is not None and chosen is not None:
        assert chosen.key >= cur.key


RANGES = [
    ">=1.2 <5",
    ">=1.2, <=5",
    "^1.2",
    "~0.3",
    "1.x",
    "*",
    "<2",
    ">3",
    "!=2.0.0",
    "<1 || >=3",
    "^1 || ~7.1 || 9.x",
    ">=1.0.0-rc.1 <2",
    "1.2 - 3.4",
    ">5 <1",
    "=1.2.3",
]


@settings(max_examples=400, deadline=None)
@given(rng=st.sampled_from(RANGES), tag=version_tags, pre_ok=st.booleans())
def test_fast_checker_agrees_with_allows(rng: str, tag: str, pre_ok: bool) -> None:
    from automator.policy.versions import parse_range

    parsed = parse_range(rng)
    v = parse_version(tag)
    if v is None:
        return
    assert parsed.checker(prerelease_ok=pre_ok)(v.key) == parsed.allows(v.key, prerelease_ok=pre_ok)
