"""Numerical, alphabetical, newest-build and digest choice; exclusions and filterTags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from automator.errors import ChoiceError
from automator.policy import (
    DEFAULT_EXCLUDES,
    AlphabeticalChoice,
    Choice,
    DigestChoice,
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
from automator.refs import parse_reference

IMAGE = parse_reference("registry.example.com/team/app")
SHA_TAG = "sha256-" + "0123456789abcdef" * 4


def policy(choice: Choice, tag_filter: TagFilter | None = None, exclude: tuple[str, ...] = DEFAULT_EXCLUDES) -> Policy:
    return Policy("app", IMAGE, choice, SourceLocation("p.yaml", 1), filter=tag_filter, exclude=exclude)


@pytest.mark.parametrize(
    ("order", "tags", "expected"),
    [
        (Order.ASC, ["1", "10", "9", "2"], "10"),
        (Order.DESC, ["1", "10", "9", "2"], "1"),
        (Order.ASC, ["1.5", "1.25", "-3"], "1.5"),
        (Order.DESC, ["1.5", "1.25", "-3"], "-3"),
        (Order.ASC, ["1e3", "999"], "1e3"),
        (Order.ASC, ["20240101", "latest", "20231231", "nan", "inf"], "20240101"),
        (Order.ASC, ["1", "1.0", "01"], "1.0"),  # equal numbers: the greater tag
        (Order.DESC, ["1", "1.0", "01", "2"], "1.0"),
    ],
)
def test_numerical(order: Order, tags: list[str], expected: str) -> None:
    assert choose(policy(NumericalChoice(order)), tags).tag == expected


def test_numerical_without_numbers_says_why() -> None:
    result = choose(policy(NumericalChoice()), ["latest", "main"])
    assert result.tag is None
    assert "no numeric value among 2" in result.reason


@pytest.mark.parametrize(
    ("order", "tags", "expected"),
    [
        (Order.ASC, ["a", "c", "b"], "c"),
        (Order.DESC, ["a", "c", "b"], "a"),
        (Order.ASC, ["2024-01-31", "2024-02-01", "2023-12-31"], "2024-02-01"),
        (Order.ASC, ["RELEASE.2023", "RELEASE.2024", "latest"], "latest"),
        (Order.ASC, ["Z", "a"], "a"),  # byte order, as Go compares strings
        (Order.ASC, ["99", "100"], "99"),
    ],
)
def test_alphabetical(order: Order, tags: list[str], expected: str) -> None:
    assert choose(policy(AlphabeticalChoice(order)), tags).tag == expected


@pytest.mark.parametrize(
    ("tag_filter", "choice", "tags", "expected"),
    [
        (TagFilter(r"^main-(?P<ts>\d+)-", "$ts"), NumericalChoice(), ["main-9-a", "main-10-b", "dev-9-c"], "main-10-b"),
        (TagFilter(r"^main-(?P<ts>\d+)-", "${ts}"), NumericalChoice(), ["main-9-a", "main-10-b"], "main-10-b"),
        (TagFilter(r"^main-(?<ts>\d+)-", "$ts"), NumericalChoice(), ["main-9-a", "main-10-b"], "main-10-b"),
        (TagFilter(r"^main-(\d+)-", "$1"), NumericalChoice(Order.DESC), ["main-9-a", "main-10-b"], "main-9-a"),
        (
            TagFilter(r"^(?P<d>\d{8})-[0-9a-f]{7}$", "$d"),
            NumericalChoice(),
            ["20240101-abc1234", "20231231-fff0000"],
            "20240101-abc1234",
        ),
        (TagFilter(r"^[[:digit:]]+$"), AlphabeticalChoice(), ["123", "abc", "45"], "45"),
        (
            TagFilter(r"^v(?P<v>.*)-stable$", "$v"),
            SemverChoice("^1"),
            ["v1.2.0-stable", "v1.3.0-beta", "v1.1.0-stable"],
            "v1.2.0-stable",
        ),
        (TagFilter(r"rc"), AlphabeticalChoice(), ["1.0-rc1", "1.0", "2.0-rc2"], "2.0-rc2"),  # search, not anchored
        # two tags extracting the same value: the greater tag, in any input order
        (TagFilter(r"^(?P<n>\d+)-", "$n"), NumericalChoice(), ["5-b", "5-a", "4-z"], "5-b"),
        (TagFilter(r"^(?P<n>\d+)-", "$n"), AlphabeticalChoice(), ["5-a", "5-b"], "5-b"),
    ],
)
def test_filter_and_extract(tag_filter: TagFilter, choice: Choice, tags: list[str], expected: str) -> None:
    p = policy(choice, tag_filter)
    assert choose(p, tags).tag == expected
    assert choose(p, list(reversed(tags))).tag == expected


def test_extract_with_literal_text() -> None:
    p = policy(AlphabeticalChoice(), TagFilter(r"^(?P<a>\d+)\.(?P<b>\d+)$", "$a-$$-${b}x"))
    assert candidates(p, ["1.2", "x"]) == ["1.2"]
    assert choose(p, ["1.2", "3.1"]).tag == "3.1"


@pytest.mark.parametrize(
    "tag",
    ["1.0.0.sig", "1.0.0.att", "1.0.0.sbom", SHA_TAG, SHA_TAG + ".sig", SHA_TAG + "-foo"],
)
def test_default_exclusions(tag: str) -> None:
    assert candidates(policy(AlphabeticalChoice()), [tag, "1.0.0"]) == ["1.0.0"]


def test_exclusions_can_be_dropped_or_extended() -> None:
    tags = ["1.0.0.sig", "debug-1", "1.0.0"]
    assert candidates(policy(AlphabeticalChoice(), exclude=()), tags) == tags
    assert candidates(policy(AlphabeticalChoice(), exclude=(*DEFAULT_EXCLUDES, "^debug-")), tags) == ["1.0.0"]
    assert candidates(policy(AlphabeticalChoice(), exclude=("^debug-", r"\.sig$")), tags) == ["1.0.0"]


def test_candidates_keep_input_order_after_filtering() -> None:
    p = policy(NewestBuildChoice(), TagFilter("^feature-"))
    assert candidates(p, ["feature-b", "main", "feature-a", "feature-c.sig"]) == ["feature-b", "feature-a"]


class TestNewestBuild:
    T0 = datetime(2024, 1, 1, tzinfo=UTC)

    def test_latest_created_wins(self) -> None:
        created = {"a": self.T0, "b": self.T0 + timedelta(hours=1), "c": self.T0 - timedelta(days=1)}
        assert choose(policy(NewestBuildChoice()), ["a", "b", "c"], created=created).tag == "b"

    def test_only_filtered_candidates_count(self) -> None:
        created = {"feature-a": self.T0, "main": self.T0 + timedelta(days=1)}
        p = policy(NewestBuildChoice(), TagFilter("^feature-"))
        assert choose(p, ["feature-a", "main"], created=created).tag == "feature-a"

    def test_equal_times_pick_greater_tag_and_mixed_timezones_compare(self) -> None:
        naive = datetime(2024, 1, 1, 0, 0)  # taken as UTC
        plus_one = datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))  # the same instant
        assert choose(policy(NewestBuildChoice()), ["x", "y"], created={"x": naive, "y": plus_one}).tag == "y"

    def test_missing_times(self) -> None:
        assert "not fetched" in choose(policy(NewestBuildChoice()), ["a"]).reason
        result = choose(policy(NewestBuildChoice()), ["a"], created={"zzz": self.T0})
        assert result.tag is None and "no build time" in result.reason


class TestDigest:
    def test_the_tag_itself(self) -> None:
        result = choose(policy(DigestChoice("latest")), ["1.0", "latest", "2.0"])
        assert (result.tag, result.digest, result.candidates) == ("latest", None, 1)

    def test_missing_tag(self) -> None:
        result = choose(policy(DigestChoice("stable")), ["latest"])
        assert result.tag is None and "'stable'" in result.reason

    def test_candidates(self) -> None:
        assert candidates(policy(DigestChoice("latest")), ["1.0", "latest"]) == ["latest"]


def test_empty_listing_chooses_nothing() -> None:
    for choice in (SemverChoice("*"), NumericalChoice(), AlphabeticalChoice(), DigestChoice("x")):
        result = choose(policy(choice), [])
        assert result.tag is None and result.seen == 0 and result.reason


def test_unknown_choice_kind() -> None:
    bogus = Policy("app", IMAGE, object(), SourceLocation("p.yaml", 1))  # type: ignore[arg-type]
    with pytest.raises(ChoiceError, match="unknown choice kind"):
        choose(bogus, ["1"])
