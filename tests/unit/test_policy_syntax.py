"""The small languages inside policy files: Go regexps and templates, Go durations, ranges."""

from __future__ import annotations

import re
import threading

import pytest

from automator.duration import parse_duration
from automator.policy.goregex import GoRegexError, compile_go, parse_template
from automator.policy.versions import RangeError, parse_range, parse_version


@pytest.mark.parametrize(
    ("pattern", "tag", "found"),
    [
        (r"^(?P<ts>\d+)$", "123", "123"),
        (r"^(?<ts>\d+)$", "123", "123"),  # Go 1.22's spelling of a named group
        (r"^[[:digit:]]+[[:alpha:]_]*$", "12ab_", "12ab_"),
        (r"^[[:^alpha:]]+$", "12-3", "12-3"),
        (r"\pL+", "v1.2-alpine", "v"),
        (r"a\z", "xa", "a"),
        (r"\Q1.2+\E$", "v1.2+", "1.2+"),
        (r"\Q1.2+\E$", "v1x2+", None),
        (r"[]a]+", "]a]", "]a]"),
        (r"(?i)ABC", "xabc", "abc"),
        (r"1\.2$", "1.2\n", None),  # '$' is the end of the text, as in Go (Python's re also matches before \n)
        (r"a|ab", "ab", "a"),  # leftmost-first, as Go (not leftmost-longest)
    ],
)
def test_go_syntax_and_semantics(pattern: str, tag: str, found: str | None) -> None:
    m = compile_go(pattern).search(tag)
    assert (m.group(0) if m is not None else None) == found


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(?=a)", "look-around"),
        ("(?!a)", "look-around"),
        ("(?<=a)b", "look-around"),
        ("(?<!a)b", "look-around"),
        (r"(a)\1", "back-references are not supported"),
        (r"a\Z", "not valid in Go"),
        (r"a\C", "invalid escape sequence: \\C"),
        ("[[:nope:]]", "invalid character class range"),
        ("(", "missing )"),
        ("a\\", "trailing \\"),
        ("a{1001}", "invalid repetition size"),
        ("(a{999}){999}", "invalid repetition size"),
        ("a" * 5000, "at most 4,096 are read"),
    ],
)
def test_refused_patterns(pattern: str, message: str) -> None:
    with pytest.raises(GoRegexError, match=re.escape(message)):
        compile_go(pattern)


def test_catastrophic_backtracking_patterns_run_in_linear_time() -> None:
    """Python's re takes minutes on this (and 2**n steps for n a's); RE2 answers at once."""
    regex = compile_go(r"^(a+)+$")
    answers: list[object] = []
    worker = threading.Thread(target=lambda: answers.append(regex.search("a" * 64 + "!")), daemon=True)
    worker.start()
    worker.join(60)  # a bound for a hang, not a timing: the answer takes microseconds
    assert answers == [None]
    assert compile_go(r"^(a|aa)*$").search("a" * 100_000) is not None


def test_go_classes_are_ascii() -> None:
    assert compile_go(r"^\d+$").search("١٢") is None  # Arabic-Indic digits are not \d in Go


@pytest.mark.parametrize(
    ("template", "tag", "expected"),
    [
        ("$ts", "main-123-abc", "123"),
        ("${ts}", "main-123-abc", "123"),
        ("$1", "main-123-abc", "123"),
        ("${1}x", "main-123-abc", "123x"),
        ("$ts.$sha", "main-123-abc", "123.abc"),
        ("$$ts", "main-123-abc", "$ts"),
        ("v$", "main-123-abc", "v$"),
        ("${", "main-123-abc", "${"),
        ("a$-b", "main-123-abc", "a$-b"),
    ],
)
def test_templates(template: str, tag: str, expected: str) -> None:
    regex = compile_go(r"^main-(?P<ts>\d+)-(?P<sha>[a-f]+)$")
    m = regex.search(tag)
    assert m is not None
    assert parse_template(template, regex).expand(m) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [("$tsx", "group 'tsx'"), ("${nope}", "group 'nope'"), ("$3", "refers to group 3"), ("$1x", "group '1x'")],
)
def test_template_errors(template: str, message: str) -> None:
    with pytest.raises(GoRegexError, match=re.escape(message)):
        parse_template(template, compile_go(r"^(?P<ts>\d+)-(?P<sha>\w+)$"))


def test_unmatched_optional_group_expands_empty() -> None:
    regex = compile_go(r"^(?P<a>x)?(?P<b>\d+)$")
    m = regex.search("12")
    assert m is not None and parse_template("$a$b", regex).expand(m) == "12"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("90s", 90),
        ("250ms", 0.25),
        ("1h0m0s", 3600),
        ("0", 0),
        ("2us", 2e-6),
        ("3µs", 3e-6),
        ("10ns", 1e-8),
        ("-1m", -60),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "1d", "", "m5", "5 m", "1h 30m", "five minutes"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("tag", "strict", "key", "precision"),
    [
        ("1.2.3", True, (1, 2, 3, 1, ()), 3),
        ("v1.2.3", True, (1, 2, 3, 1, ()), 3),
        ("1.2", False, (1, 2, 0, 1, ()), 2),
        ("1", False, (1, 0, 0, 1, ()), 1),
        ("1.0.0+build", True, (1, 0, 0, 1, ()), 3),
        ("1.2.3-alpine", True, (1, 2, 3, 0, ((1, "alpine"),)), 3),
        ("1.0.0-rc.10", True, (1, 0, 0, 0, ((1, "rc"), (0, 10))), 3),
        ("20240101-abc1234", False, (20240101, 0, 0, 0, ((1, "abc1234"),)), 1),
    ],
)
def test_parse_version(tag: str, strict: bool, key: tuple[object, ...], precision: int) -> None:
    v = parse_version(tag, strict=strict)
    assert v is not None
    assert (v.key, v.precision) == (key, precision)


@pytest.mark.parametrize(
    ("tag", "strict"),
    [
        ("latest", False),
        ("1.2", True),
        ("v1", True),  # Flux's ParseVersion wants two dots (01.2.3 is 1.2.3 there, as in Masterminds)
        ("1.2.3.4", False),
        ("1.0.0-01", False),
        ("V1.0.0", False),
        ("1.0.0-", False),
        ("20240101-abc1234", True),
        ("", False),
    ],
)
def test_not_versions(tag: str, strict: bool) -> None:
    assert parse_version(tag, strict=strict) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1.2 ||", "empty constraint"),
        (">=1.2 <", "cannot read '<'"),
        (">=1.2<2", "cannot read"),
        ("latest", "cannot read 'latest'"),
        (">=x1", "neither a number nor a wildcard"),
        (">=1.2.3-01", "must not start with 0"),
        (">=18446744073709551616", "larger than"),  # past uint64 (a leading zero is coerced, as Masterminds)
        ("^1.2.3-", "cannot read"),
        ("=> 1.2 !", "cannot read '!'"),
    ],
)
def test_bad_ranges(text: str, message: str) -> None:
    with pytest.raises(RangeError, match=re.escape(message)):
        parse_range(text)


@pytest.mark.parametrize(
    "text",
    [
        ">=1.2 <2",
        ">=1.2, <2",
        "^1.2",
        "~1.2.3",
        "1.2.x",
        "*",
        "x",
        "1 || 2",
        "=1.2.3",
        "!=1.2.3",
        "1.2 - 1.4",
        "~>1.2",
        "=>1.0 =<2.0",
        "v1.2.3",
        ">= 1.2, < 2.0",
        "^1.2.3+b",
    ],
)
def test_good_ranges(text: str) -> None:
    assert parse_range(text).text == text
