"""The one YAML event layer: the nesting rule and the fallback, the same for every reader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from automator.yamlevents import BACKENDS, LIBYAML, MAX_DEPTH, TooDeep, describe, events, parse_with_fallback


def block(depth: int) -> str:
    """``depth`` nested block mappings."""
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth - 1)) + f"{'  ' * (depth - 1)}leaf: 1\n"


def flow(depth: int) -> str:
    return "[" * depth + "]" * depth + "\n"


def count(stream: Iterator[Any]) -> int:
    return sum(1 for _ in stream)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [block, flow], ids=["block", "flow"])
def test_the_nesting_rule_is_ours_and_the_same_in_every_backend(backend: str, shape: Any) -> None:
    assert count(events(shape(MAX_DEPTH), backend)) > MAX_DEPTH  # libyaml 0.2.6 alone allows ~1,000
    with pytest.raises(TooDeep) as err:
        count(events(shape(MAX_DEPTH + 1), backend))
    message, mark = describe(err.value)
    assert message == f"mappings and sequences nested more than {MAX_DEPTH} levels deep"
    assert mark is not None
    # block: the line of the first mapping too deep; flow: its column on line 1
    assert (mark.line, mark.column) == ((MAX_DEPTH, 2 * MAX_DEPTH) if shape is block else (0, MAX_DEPTH))


@pytest.mark.parametrize("backend", BACKENDS)
def test_far_too_deep_is_refused_before_the_parser_gives_up(backend: str) -> None:
    with pytest.raises(TooDeep):
        count(events(flow(100_000), backend))  # libyaml 0.2.6 would say "exceeded maximum nesting depth"


@pytest.mark.skipif(len(BACKENDS) < 2, reason="libyaml is not available")
def test_ruamel_has_the_last_word_on_what_libyaml_refuses() -> None:
    text = "a: b\x85c\n"  # NEL in a plain scalar: YAML 1.1 (libyaml) refuses it
    used: list[str] = []

    def build(stream: Iterator[Any]) -> list[str]:
        return [e.value for e in stream if type(e).__name__ == "ScalarEvent"]

    assert parse_with_fallback(text, build) == ["a", "b c"]  # a NEL is a line break in YAML 1.2
    with pytest.raises(Exception) as err:
        parse_with_fallback(text, build, LIBYAML)
    assert "could not find expected ':'" in describe(err.value)[0]
    # the nesting rule is not a refusal to retry: the answer is the same from either backend
    with pytest.raises(TooDeep):
        parse_with_fallback(flow(MAX_DEPTH + 1), lambda s: used.append(str(count(s))))
    assert used == []
