"""Locating scalars: exact spans, both backends agreeing, no blow-ups; rendering in a style."""

from __future__ import annotations

import time

import pytest
from ruamel.yaml import YAML

from automator.policy.model import Policy, SemverChoice, SourceLocation
from automator.refs import parse_reference
from automator.update import Decision, Decisions, rewrite_text
from automator.update import _yaml as Y
from automator.update._scalar import needs_quotes, render
from automator.yamlevents import BACKENDS

SAMPLE = (
    "\ufeff# héllo 😀\r\n"
    "a: &x 'quoted ''x'''\r\n"
    'b: [c, "déf", !!str 12]   # c\r\n'
    "m: {k: v, <<: {z: 1}}\r\n"
    "d: plain value\r\n"
    "e: *x\r\n"
    "lit: |\r\n  line\r\n"
    "---\r\n"
    "- x\r\n"
    "- - y\r\n"
)


def spans(text: str, backend: str) -> list[tuple[str, str, int, int, int, int]]:
    out = []
    for doc in Y.compose(text, backend):
        for node, _ in Y.walk(doc):
            if node.kind == Y.SCALAR:
                out.append((node.value, node.style, node.start, node.end, node.line, node.end_line))
    return out


@pytest.mark.skipif(len(BACKENDS) < 2, reason="libyaml is not available")
def test_backends_agree_on_spans() -> None:
    assert spans(SAMPLE, "libyaml") == spans(SAMPLE, "ruamel")


@pytest.mark.parametrize("backend", BACKENDS)
def test_spans_cover_the_scalar_source(backend: str) -> None:
    found = {v: (s, e) for v, _, s, e, _, _ in spans(SAMPLE, backend)}
    assert SAMPLE[slice(*found["déf"])] == '"déf"'
    assert SAMPLE[slice(*found["quoted 'x'"])] == "&x 'quoted ''x'''"
    assert SAMPLE[slice(*found["plain value"])] == "plain value"
    assert SAMPLE[slice(*found["12"])] == "!!str 12"


def test_value_start_skips_anchor_and_tag() -> None:
    text = "a: &anchor !!str value\nb: !<tag:yaml.org,2002:str> other\n"
    [doc] = Y.compose(text)
    a, b = doc.get("a"), doc.get("b")
    assert a is not None and b is not None
    assert text[Y.value_start(text, a) : a.end] == "value"
    assert text[Y.value_start(text, b) : b.end] == "other"


def test_merge_keys_are_followed_by_get() -> None:
    [doc] = Y.compose("base: &b {image: x, tag: '1'}\nsvc:\n  <<: [*b]\n  tag: '2'\n")
    svc = doc.get("svc")
    assert svc is not None
    assert svc.text("image") == "x"
    assert svc.text("tag") == "2"  # own keys win over merged ones


def test_aliases_are_not_expanded() -> None:
    """A billion-laughs document composes to one node per anchor and walks in linear time."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 12)]
    text = "\n".join(lines) + '\nimage: app:1 # {"$imagepolicy": "p"}\n'
    started = time.perf_counter()
    [doc] = Y.compose(text)
    assert sum(1 for _ in Y.walk(doc)) < 200
    result = rewrite_text(text, "laughs.yaml", decisions())
    assert time.perf_counter() - started < 5
    assert [c.new for c in result.changes] == ["app:2"]


def test_deep_flow_nesting_is_refused_and_the_file_left_untouched() -> None:
    text = "a: " + "[" * 50_000 + "]" * 50_000 + '\nb: app:1 # {"$imagepolicy": "p"}\n'
    result = rewrite_text(text, "deep.yaml", decisions())
    assert result.text == text
    assert [str(w) for w in result.warnings] == [
        "deep.yaml:1: not valid YAML, left untouched: mappings and sequences nested more than 500 levels deep"
    ]


def test_undefined_alias_is_a_syntax_error() -> None:
    with pytest.raises(Y.YAMLSyntaxError) as err:
        Y.compose("a: 1\nb: *nope\n")
    assert err.value.line == 2


@pytest.mark.skipif(len(BACKENDS) < 2, reason="libyaml is not available")
def test_libyaml_refusal_falls_back_to_ruamel() -> None:
    text = 'a: b\x85c\nimage: app:1 # {"$imagepolicy": "p"}\n'  # NEL in a plain scalar: YAML 1.2 only
    with pytest.raises(Y.YAMLSyntaxError):
        Y.compose(text, "libyaml")
    assert Y.compose(text)[0].text("a") == "b c"  # folded, as YAML 1.2 reads a NEL
    assert rewrite_text(text, "nel.yaml", decisions()).text == text.replace("app:1", "app:2")


def test_byte_order_mark_is_kept() -> None:
    text = '\ufeffimage: app:1 # {"$imagepolicy": "p"}\n'
    assert rewrite_text(text, "bom.yaml", decisions()).text == '\ufeffimage: app:2 # {"$imagepolicy": "p"}\n'


def decisions() -> Decisions:
    policy = Policy(
        name="p",
        image=parse_reference("app"),
        choice=SemverChoice(">=0"),
        source=SourceLocation("policies.yaml", 1),
    )
    return Decisions.of([Decision(policy, parse_reference("app:2"))])


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("nginx:1.27.0", False),
        ("ghcr.io/org/app:v1.2.3@sha256:" + "a" * 64, False),
        ("registry:5000/app", False),
        ("v1.2", False),
        ("1.2.3", False),
        ("1.20", True),  # a float
        ("1e3", True),
        ("10", True),
        ("0x1F", True),
        ("0777", True),
        ("1:20", True),  # sexagesimal in YAML 1.1
        ("true", True),
        ("yes", True),
        ("off", True),
        ("null", True),
        ("~", True),
        ("2024-11-02", True),  # a date
        ("2024.11.02", False),
        ("", True),
        ("-rc1", True),
        ("a b", True),
        ("a: b", True),
        ("x #y", True),
        ("[x]", True),
        ("@sha", True),
        ("app:", True),
        (".inf", True),
    ],
)
def test_needs_quotes(value: str, quoted: bool) -> None:
    assert needs_quotes(value) is quoted


@pytest.mark.parametrize(
    ("value", "style", "text"),
    [
        ("1.20", Y.PLAIN, '"1.20"'),
        ("v1.20", Y.PLAIN, "v1.20"),
        ("it's", Y.SINGLE, "'it''s'"),
        ('say "hi"\\', Y.DOUBLE, '"say \\"hi\\"\\\\"'),
        ("tab\there", Y.DOUBLE, '"tab\\u0009here"'),
    ],
)
def test_render_round_trips(value: str, style: str, text: str) -> None:
    assert render(value, style) == text
    assert YAML(typ="safe", pure=True).load(f"k: {text}\n") == {"k": value}


def test_render_refuses_block_styles() -> None:
    with pytest.raises(ValueError, match="cannot render"):
        render("x", Y.LITERAL)
