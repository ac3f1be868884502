"""The fast path means exactly what RE2 means, on the patterns it takes, for every tag it takes."""

from __future__ import annotations

import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from automator.policy.fastregex import linear, safe_text
from automator.policy.goregex import compile_go

TAKEN = [
    r"^main-(?P<ts>\d+)-",
    r"^main-[a-f0-9]+-(?P<ts>[0-9]+)",
    r"^v?[0-9]+\.[0-9]+\.[0-9]+$",
    r"^(?P<major>\d+)\.(?P<minor>\d+)$",
    r"^[0-9]+$",
    r"-rc\d+$",
    r"^[^-]+-(?P<n>\d+)$",
    r"^\w+-\d+$",
    r"a|b",
    r"^release-(?P<v>[0-9]{1,3})\.x",
    r"^[a-z]{3}[0-9]{2,4}-",
    "",
]
LEFT_TO_RE2 = [
    r"^(a+)+$",  # nested quantifiers: exponential backtracking in re
    r"\d+\d+",  # two runs that can share a character
    r"^.*\.sig$",  # '.' overlaps everything
    r"(?i)abc",  # flags: case folding differs
    r"[[:digit:]]+",  # POSIX classes: re reads them otherwise
    r"x{,3}",  # Go reads "{,3}" as text
    r"^(ab)+$",  # a quantified group
    r"^a+?b",  # lazy
    r"\bword\b",  # word boundaries
    r"^v?\d*\.\d+",  # an optional run before an overlapping one
]
ALPHABET = "abcdefv0123456789.-_xrcmainlsRE"


def test_the_class_takes_the_simple_patterns_and_leaves_the_rest() -> None:
    assert [p for p in TAKEN if linear(p) is None] == []
    assert [p for p in LEFT_TO_RE2 if linear(p) is not None] == []


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TAKEN), st.text(alphabet=ALPHABET, max_size=40))
def test_fast_spans_equal_re2_spans(pattern: str, tag: str) -> None:
    fast = linear(pattern)
    assert fast is not None
    m = fast.search(tag)
    r = re2.search(pattern, tag)
    assert (m is None) == (r is None)
    if m is not None and r is not None:
        assert list(m.regs) == [r.span(i) for i in range(r.re.groups + 1)]


@given(st.text(max_size=200))
def test_only_printable_ascii_tags_of_spec_length_take_the_fast_path(text: str) -> None:
    expected = 0 < len(text) <= 128 and all(0x21 <= ord(c) <= 0x7E for c in text)
    assert safe_text(text) is expected


def test_a_compiled_go_pattern_answers_the_same_on_either_path() -> None:
    regex = compile_go(r"^main-(?P<ts>\d+)-")
    tags = ["main-17-abc", "main-x-1", "main-99-", "main-1-\u00e9", "main-1-" + "a" * 200]
    assert [s for _, s in regex.scan(tags)] == [[(0, 8), (5, 7)], [(0, 8), (5, 7)], [(0, 7), (5, 6)], [(0, 7), (5, 6)]]


ATOMS = ["a", "b", "-", r"\.", r"\d", r"\w", "[a-c]", "[^-]", "[0-9a-f]", "(?P<g>x)", "(y)"]
QUANTIFIERS = ["", "", "?", "*", "+", "{2}", "{1,3}"]


@st.composite
def patterns(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(ATOMS)) + draw(st.sampled_from(QUANTIFIERS)) for _ in range(draw(st.integers(1, 5)))]
    names = iter(range(100))
    body = "".join(p.replace("(?P<g>", f"(?P<g{next(names)}>") for p in parts)
    return draw(st.sampled_from(["", "^"])) + body + draw(st.sampled_from(["", "$"]))


@settings(max_examples=500, deadline=None)
@given(patterns(), st.lists(st.text(alphabet="abcxy-.09fz_", max_size=24), min_size=1, max_size=8))
def test_whatever_the_class_takes_means_what_re2_means(pattern: str, tags: list[str]) -> None:
    fast = linear(pattern)
    if fast is None:
        return  # left to RE2
    for tag in tags:
        m, r = fast.search(tag), re2.search(pattern, tag)
        assert (m is None) == (r is None), (pattern, tag)
        if m is not None and r is not None:
            assert list(m.regs) == [r.span(i) for i in range(r.re.groups + 1)], (pattern, tag)
