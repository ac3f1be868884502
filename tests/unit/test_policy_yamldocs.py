"""Reading YAML documents with positions: both event backends agree, scalars are YAML 1.2."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from automator.policy.yamldocs import Document, Position, SyntaxProblem, read_documents
from automator.yamlevents import BACKENDS, MAX_DEPTH

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    [*(ROOT / "tests" / "data" / "policies").rglob("*.yaml"), *(ROOT / "policies" / "examples").glob("*.yaml")]
)
HEAD = "kind: ImagePolicy\n"


def docs(text: str, backend: str) -> list[Document | SyntaxProblem]:
    return list(read_documents(text, backend=backend))


def one(text: str, backend: str) -> Document:
    (doc,) = docs(text, backend)
    assert isinstance(doc, Document), doc
    return doc


@pytest.mark.skipif(len(BACKENDS) < 2, reason="libyaml is not available")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_backends_agree_on_real_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    fast, slow = docs(text, "libyaml"), docs(text, "ruamel")
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        assert isinstance(a, Document) and isinstance(b, Document)
        assert (a.data, a.start, a.keys, a.values) == (b.data, b.start, b.keys, b.values)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        ("yes", "yes"),
        ("on", "on"),
        ("true", True),
        ("False", False),
        ("1.2", 1.2),
        ("'1.2'", "1.2"),
        ('"5m"', "5m"),
        ("5m", "5m"),
        ("~", None),
        ("null", None),
        ("", None),
        ("010", 10),
        ("0o10", 8),
        ("0x1F", 31),
        ("1e3", 1000.0),
        (".inf", math.inf),
        ("!!str 1", "1"),
        ("! 1", "1"),
        ("!!float 1", 1.0),
        ("!custom x", "x"),
        ("|\n  block\n", "block\n"),
        ("'^.*\\.sig$'", "^.*\\.sig$"),
        ("[a, 1]", ["a", 1]),
    ],
)
def test_scalars_follow_yaml_1_2(backend: str, yaml: str, expected: Any) -> None:
    assert one(f"{HEAD}v: {yaml}\n", backend).data["v"] == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_positions(backend: str) -> None:
    doc = one(
        f"# comment\n{HEAD}spec:\n  policy: {{semver: {{range: '1.x'}}}}\n  exclude:\n    - a\n    - b\n", backend
    )
    assert doc.start == Position(2, 1)
    assert doc.keys[("spec", "policy")] == Position(4, 3)
    assert doc.values[("spec", "policy", "semver", "range")] == Position(4, 28)
    assert doc.values[("spec", "exclude", 1)] == Position(7, 7)
    assert doc.locate(("spec", "missing", "deeper")) == Position(3, 1)
    assert doc.locate(("nothing",)) == doc.start


@pytest.mark.parametrize("backend", BACKENDS)
def test_line_offsets_across_documents(backend: str) -> None:
    text = f"a: 1\n---\n{HEAD}x: 1\n---\n\n{HEAD}y: 2\n"
    first, second = docs(text, backend)
    assert isinstance(first, Document) and isinstance(second, Document)
    assert (first.keys[("x",)], second.keys[("y",)]) == (Position(4, 1), Position(8, 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_anchors_and_merge_keys(backend: str) -> None:
    doc = one(
        f"{HEAD}base: &b {{a: 1, b: 2}}\n"
        "m1: {<<: *b, b: 3}\n"
        "m2:\n  b: 4\n  <<: *b\n"
        "m3: {<<: [{a: 5}, *b], c: 6}\n"
        "m4:\n  <<: {z: 7}\n"
        "alias: *b\n",
        backend,
    )
    assert doc.data["m1"] == {"a": 1, "b": 3}
    assert doc.data["m2"] == {"b": 4, "a": 1}
    assert doc.data["m3"] == {"a": 5, "b": 2, "c": 6}
    assert doc.data["m4"] == {"z": 7}
    assert doc.data["alias"] == {"a": 1, "b": 2}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("yaml", "line", "message"),
    [
        (f"{HEAD}a: 1\nb: 2\na: 3\n", 4, "duplicate key 'a'"),
        (f"{HEAD}a: *nope\n", 2, "undefined alias"),
        (f"{HEAD}a: !!int x\n", 2, "not a valid !!int"),
        (f"{HEAD}? [a]\n: 1\n", 2, "complex"),
        (f"{HEAD}a: [1, 2\n", 2, "YAML syntax error"),
        (f"{HEAD}a: 'unclosed\n", 2, "YAML syntax error"),
        (f"{HEAD}a:\n  - 1\n - 2\n", 4, "YAML syntax error"),
    ],
)
def test_errors(backend: str, yaml: str, line: int, message: str) -> None:
    (problem,) = docs(yaml, backend)
    assert isinstance(problem, SyntaxProblem)
    assert problem.position.line == line
    assert message in problem.message


@pytest.mark.parametrize("backend", BACKENDS)
def test_broken_documents_of_other_kinds_are_skipped(backend: str) -> None:
    assert docs("kind: ConfigMap\ndata: {note: ImagePolicy\n", backend) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_alias_bombs_are_shared_not_expanded(backend: str) -> None:
    lines = [HEAD, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)]
    doc = one("".join(lines), backend)
    assert len(doc.data["a8"]) == 10
    assert doc.data["a8"][0] is doc.data["a7"]  # 10**9 leaves if expanded; here one list per anchor


@pytest.mark.parametrize("backend", BACKENDS)
def test_nesting_is_bounded_by_our_rule_whichever_parser_reads_it(backend: str) -> None:
    ok = one(f"{HEAD}deep: {'[' * (MAX_DEPTH - 1)}{']' * (MAX_DEPTH - 1)}\n", backend)
    assert isinstance(ok.data["deep"], list)
    for depth in (MAX_DEPTH, 2000, 100_000):
        (problem,) = docs(f"{HEAD}deep: {'[' * depth}{']' * depth}\n", backend)
        assert isinstance(problem, SyntaxProblem)
        assert problem.message == "YAML syntax error: mappings and sequences nested more than 500 levels deep"
        assert problem.position.line == 2
        assert 6 + MAX_DEPTH <= problem.position.column <= 7 + MAX_DEPTH  # at the bracket one too deep
