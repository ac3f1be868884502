"""User templates are bounded: output size, the size of every value they build, steps, depth, time.

A template comes from a config repository, so it is untrusted input.  Each hostile case must be
refused with a :class:`ConfigError` that names the setting and the limit, quickly and without
building the huge value first.  Cases that used to hang run in a daemon thread with a generous
join bound, so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from automator.config import load_config
from automator.errors import ConfigError, PolicyFileError
from automator.templates import (
    DEFAULT_BRANCH,
    DEFAULT_MESSAGE,
    DEFAULT_TITLE,
    SAMPLE_CONTEXT,
    RenderLimits,
    render,
    slug,
)

JOIN_SECONDS = 60.0  # a bound for a hung render, never a timing assertion
SETTING = "spec.commit.messageTemplate"


def _in_thread(call: Callable[[], str]) -> str | BaseException:
    """Run ``call`` in a daemon thread; fail (rather than hang) if it does not return."""
    outcome: list[str | BaseException] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # reported to the test below
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(JOIN_SECONDS)
    assert not thread.is_alive(), f"rendering did not stop within {JOIN_SECONDS:g} s"
    return outcome[0]


def _frozen() -> float:
    """A clock that never moves: only the deterministic limits can stop a render."""
    return 0.0


def _refused(
    source: str,
    *,
    what: str = "commit message",
    context: Mapping[str, Any] = SAMPLE_CONTEXT,
    clock: Callable[[], float] = _frozen,
) -> str:
    """Render ``source`` and return the message of the ConfigError it must raise."""
    outcome = _in_thread(lambda: render(source, context, what=what, clock=clock))
    assert isinstance(outcome, ConfigError), f"expected a ConfigError, got {outcome!r:.300}"
    return str(outcome)


def _peak_bytes(call: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- huge values are refused before they are built ------------------------------------------------------------

HUGE_VALUES = [
    pytest.param("{{ 'x' * 2000000000 }}", id="string-repetition"),
    pytest.param("{{ 2000000000 * 'x' }}", id="repetition-reversed"),
    pytest.param("{{ ([0] * 2000000000) | length }}", id="list-repetition"),
    pytest.param("{{ ('ab' * 100000) + ('ab' * 100000) }}", id="string-addition"),
    pytest.param("{% set s = 'x' * 60000 %}{{ ('%s' * 100000) % ((s,) * 100000) }}", id="percent-many-fields"),
    pytest.param("{{ '%2000000000s' % 'x' }}", id="percent-width"),
    pytest.param("{{ ('{0}' * 60000).format('x' * 60000) }}", id="format-many-fields"),
    pytest.param("{{ '{:>2000000000}'.format('x') }}", id="format-width"),
    pytest.param(
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
        "{{ ns.s | length }}",
        id="concat-doubling",
    ),
    pytest.param("{% set s = 'x' * 200000 %}{{ [s, s, s, s, s, s, s, s, s, s] }}", id="printing-a-list"),
    pytest.param("{{ 'x' | center(2000000000) }}", id="center-filter"),
    pytest.param("{{ 'x'.ljust(2000000000) }}", id="ljust-method"),
    pytest.param("{{ ('x\n' * 100000) | indent(100000) }}", id="indent-filter"),
    pytest.param("{{ ('a' * 200000) | replace('a', 'b' * 200000) }}", id="replace-filter"),
    pytest.param("{{ ('a' * 200000).replace('a', 'b' * 200000) }}", id="replace-method"),
    pytest.param("{{ ('a ' * 100000) | wordwrap(1, wrapstring='y' * 200000) }}", id="wordwrap-filter"),
    pytest.param("{% set s = 'x' * 200000 %}{{ [s, s, s, s, s, s, s, s, s, s] | join }}", id="join-filter"),
    pytest.param("{{ ('\t' * 100000).expandtabs(100000) }}", id="expandtabs"),
    pytest.param("{{ (1).to_bytes(2000000000, 'big') | length }}", id="to-bytes"),
    pytest.param("{{ [1, 2] | batch(2000000000, 0) | list }}", id="batch-fill"),
    pytest.param("{{ lipsum(1000000) }}", id="lipsum"),
    pytest.param("{% set s = 'x' * 200000 %}{{ ([s] * 200000) | unique | list | length }}", id="unique-lowercases"),
    pytest.param("{% set s = 'x' * 200000 %}{{ ([s] * 200000) | sort | first | length }}", id="sort-lowercases"),
    pytest.param("{% set ns = namespace(a='x' * 200000) %}{{ [ns, ns] }}", id="printing-namespaces"),
    pytest.param("{{ 9 ** 99999999 }}", id="power"),
    pytest.param(
        "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}",
        id="integer-squaring",
    ),
]


@pytest.mark.parametrize("source", HUGE_VALUES)
def test_huge_values_are_refused_and_the_error_names_the_template(source: str) -> None:
    message = _refused(source)
    assert SETTING in message
    assert "commit message template" in message
    assert "262144" in message or "4096 bits" in message


def test_a_two_gigabyte_string_is_never_allocated() -> None:
    peak = _peak_bytes(lambda: _refused("{{ 'x' * 2000000000 }}"))
    assert peak < 16 * 1024 * 1024


# -- output is capped while it is produced --------------------------------------------------------------------


def test_output_over_the_cap_is_refused() -> None:
    message = _refused("{% for i in range(5000) %}{{ 'y' * 100 }}{% endfor %}")  # 500,000 characters
    assert SETTING in message
    assert "262144 characters" in message


def test_output_stops_at_the_cap_instead_of_materialising() -> None:
    # 9000 x 90 x 1000 characters would be 810 MB; rendering stops after the first 256 KiB.
    source = "{% for i in range(9000) %}{% for j in range(90) %}{{ 'y' * 1000 }}{% endfor %}{% endfor %}"
    peak = _peak_bytes(lambda: _refused(source))
    assert peak < 16 * 1024 * 1024


def test_nothing_is_evaluated_when_the_template_is_compiled() -> None:
    # Stock Jinja folds constant expressions while compiling: this would build 400 MB then.
    source = "{{ (" + " ~ ".join(["('x' | center(200000))"] * 2000) + ") | length }}"
    peak = _peak_bytes(lambda: _refused(source))
    assert peak < 64 * 1024 * 1024


def test_a_block_rendered_through_self_is_bounded() -> None:
    source = (
        "{% if false %}{% block a %}{% for i in range(9000) %}{% for j in range(90) %}{{ 'y' * 1000 }}"
        "{% endfor %}{% endfor %}{% endblock %}{% endif %}{{ self.a() | length }}"
    )
    assert SETTING in _refused(source)


def test_limits_are_a_parameter() -> None:
    outcome = _in_thread(
        lambda: render("{{ 'x' * 11 }}", SAMPLE_CONTEXT, what="commit message", limits=RenderLimits(output=10))
    )
    assert isinstance(outcome, ConfigError)
    assert "output passed 10 characters" in str(outcome)


def test_output_exactly_at_the_cap_is_fine() -> None:
    assert render("{{ 'y' * 262144 }}", SAMPLE_CONTEXT, what="commit message") == "y" * 262144
    assert "output passed 262144 characters" in _refused("{{ 'y' * 262144 }}!")


def test_text_built_in_a_macro_is_bounded_too() -> None:
    source = (
        "{% macro m() %}{% for i in range(9000) %}{% for j in range(90) %}{{ 'y' * 1000 }}"
        "{% endfor %}{% endfor %}{% endmacro %}{{ m() | length }}"
    )
    message = _refused(source)
    assert SETTING in message


# -- CPU: loops, recursion, ranges, the clock ------------------------------------------------------------------


def test_nested_loops_without_output_stop() -> None:
    message = _refused("{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}")
    assert SETTING in message
    assert "1000000 steps" in message


def test_nested_loops_over_huge_ranges_stop() -> None:
    message = _refused("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
    assert SETTING in message


def test_a_test_applied_to_many_big_strings_stops() -> None:
    message = _refused("{% set s = 'x' * 200000 %}{{ ([s] * 200000) | select('in', s) | list | length }}")
    assert "1000000 steps" in message


def test_a_list_that_grows_while_it_is_looped_over_stops() -> None:
    message = _refused("{% set l = [1] %}{% for x in l %}{% set _ = l.append(x) %}{% endfor %}")
    assert SETTING in message


def test_a_huge_range_is_refused() -> None:
    for source in ("{{ range(1000000000) | list | length }}", "{{ range(10 ** 30) | length }}"):
        message = _refused(source)
        assert SETTING in message
        assert "10000" in message


def test_infinite_macro_recursion_is_refused_by_depth() -> None:
    message = _refused("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
    assert SETTING in message
    assert "64 deep" in message


def test_exponential_macro_recursion_stops() -> None:
    source = "{% macro f(n) %}{% if n < 40 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}"
    message = _refused(source)
    assert SETTING in message
    assert "1000000 steps" in message


def test_exponential_recursive_loop_stops() -> None:
    message = _refused("{% for x in [1, 2] recursive %}{{ loop([1, 2]) if loop.depth < 40 }}{% endfor %}")
    assert SETTING in message


def test_the_deadline_uses_the_injected_clock() -> None:
    ticks = iter(range(1_000_000))

    def clock() -> float:  # one "second" passes every time rendering looks at the clock
        return float(next(ticks))

    source = "{% for a in range(1000) %}{% endfor %}"
    outcome = _in_thread(lambda: render(source, SAMPLE_CONTEXT, what="commit message", clock=clock))
    assert isinstance(outcome, ConfigError)
    assert SETTING in str(outcome)
    assert "5 seconds" in str(outcome)
    assert next(ticks) < 20  # it stopped as soon as the deadline passed, not after the loop


def test_a_refused_render_leaves_no_state_behind() -> None:
    _refused("{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}")
    assert render("{% for a in range(10000) %}{% endfor %}ok", SAMPLE_CONTEXT, what="commit message") == "ok"


# -- the error names the template -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "setting"),
    [
        ("commit message", "spec.commit.messageTemplate"),
        ("pull request title", "spec.pullRequest.titleTemplate"),
        ("pull request body", "spec.pullRequest.bodyTemplate"),
        ("branch name", "spec.pullRequest.branchTemplate"),
    ],
)
def test_every_template_setting_is_named(what: str, setting: str) -> None:
    message = _refused("{{ 'x' * 2000000000 }}", what=what)
    assert f"the {what} template ({setting})" in message
    assert "check automator.yaml" in message


def test_a_hostile_template_fails_when_the_config_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "automator.yaml"
    path.write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  commit:\n"
        "    messageTemplate: '{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}'\n"
    )
    outcome = _in_thread(lambda: str(load_config(path, shown="automator.yaml")))
    assert isinstance(outcome, PolicyFileError)
    assert "automator.yaml:5:" in str(outcome)
    assert "messageTemplate" in str(outcome)
    # The real clock runs here: on a loaded machine the time backstop may stop it first.
    assert "1000000 steps" in str(outcome) or "5 seconds" in str(outcome)


# -- ordinary templates render exactly as stock Jinja renders them --------------------------------------------


def _stock(source: str, context: Mapping[str, Any]) -> str:
    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
    env.filters["slug"] = slug
    return env.from_string(source).render(**context)


def _big_context(n: int) -> dict[str, Any]:
    updates = [
        {
            "policy": f"apps:app{i}",
            "image": f"ghcr.io/example/app{i}",
            "repository": f"ghcr.io/example/app{i}",
            "tag": f"1.{i}.0",
            "digest": None,
            "old": f"1.{i - 1}.0" if i else None,
            "new": f"1.{i}.0",
            "files": [{"file": f"apps/app{i}/deployment.yaml", "line": 10 + i}],
            "source": {"file": f"apps/app{i}/policy.yaml", "line": 4},
        }
        for i in range(n)
    ]
    changes = [
        {"policy": u["policy"], "file": u["files"][0]["file"], "line": 1, "old": u["old"], "new": u["new"]}
        for u in updates
    ]
    return {"group": "apps", "prefix": "automator/", "base": "main", "updates": updates, "changes": changes}


ORDINARY = [
    DEFAULT_MESSAGE,
    DEFAULT_TITLE,
    DEFAULT_BRANCH,
    "chore(deps): update {{ updates[0].image }} to {{ updates[0].tag }}",  # README
    "deps: {{ updates[0].tag }}",  # tests/integration/test_run_direct.py
    "chore(deps): {{ updates[0].image }} {{ updates[0].old }} -> {{ updates[0].tag }}",  # tests/e2e
    "{% for u in updates %}{{ loop.index }}/{{ loop.length }} {{ u.image | upper }}{{ ', ' if not loop.last }}"
    "{% endfor %}",
    "{{ updates | map(attribute='image') | join(', ') }} ({{ updates | length }} images)",
    "{{ updates | map(attribute='files') | sum(start=[]) | map(attribute='file') | unique | sort | join('\n') }}",
    "{% macro row(u) %}| {{ u.image }} | {{ u.old or '-' }} | {{ u.new }} |{% endmacro %}"
    "| image | old | new |\n{% for u in updates %}{{ row(u) }}\n{% endfor %}",
    "{% set ns = namespace(n=0, names=[]) %}{% for u in updates %}{% set ns.n = ns.n + 1 %}"
    "{% set ns.names = ns.names + [u.image] %}{% endfor %}{{ ns.n }}: {{ ns.names | join(' ') }}",
    "{% set head %}Update {{ group }}{% endset %}{{ head | center(40) }}|{{ '%-10s|%5d' % (base, updates | length) }}",
    "{{ '{} -> {}'.format(updates[0].old, updates[0].new) }} {{ 'x' * 3 }} {{ [1, 2] * 2 }} {{ 2 ** 10 }}",
    "{{ group ~ '/' ~ base }} {{ range(3) | list }} {{ (updates | first).files | tojson }}",
    "{% filter upper %}{{ group }}{% endfilter %} {{ changes | selectattr('line') | list | length }}",
    "{% for c in changes | batch(2) %}{{ c | map(attribute='file') | join('+') }};{% endfor %}",
    "{{ ('update ' ~ group) | wordwrap(5) | indent(2) }} {{ group | replace(':', '-') | truncate(9) }}",
    "{% for x in [[1, [2]], [3]] recursive %}{% if x is iterable %}[{{ loop(x) }}]{% else %}{{ x }}{% endif %}"
    "{% endfor %}",
    "{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}{{ base }}{% endcall %}",
    "{{ updates | map(attribute='tag') | list | pprint }} {{ {'a': 1} | items | list }}",
    "{% autoescape true %}{{ '<b>' ~ group }}{{ ('<i>' | safe) ~ base }}{% endautoescape %}",
]


@pytest.mark.parametrize("source", ORDINARY)
@pytest.mark.parametrize("context", [SAMPLE_CONTEXT, _big_context(300)], ids=["sample", "300-updates"])
def test_ordinary_templates_render_as_before(source: str, context: Mapping[str, Any]) -> None:
    assert render(source, context, what="commit message") == _stock(source, context)


@pytest.mark.parametrize("source", [DEFAULT_MESSAGE, DEFAULT_TITLE, DEFAULT_BRANCH])
def test_the_defaults_still_render_a_thousand_updates(source: str) -> None:
    context = _big_context(1000)
    assert render(source, context, what="commit message") == _stock(source, context)


def test_the_defaults_render_the_expected_text() -> None:
    assert render(DEFAULT_MESSAGE, SAMPLE_CONTEXT, what="commit message") == (
        "Update ghcr.io/stefanprodan/podinfo to 6.5.0\n\n"
        "- ghcr.io/stefanprodan/podinfo: 6.4.0 -> 6.5.0 (policy apps:podinfo)\n"
    )
    assert render(DEFAULT_BRANCH, SAMPLE_CONTEXT, what="branch name") == "automator/apps-podinfo"


def test_lipsum_still_works() -> None:
    assert len(render("{{ lipsum(2, False) }}", SAMPLE_CONTEXT, what="pull request body")) > 20


def test_a_template_error_still_names_the_template() -> None:
    message = _refused("{{ updates[0].imge }}", what="pull request title")
    assert "the pull request title template (spec.pullRequest.titleTemplate) failed" in message
    assert "imge" in message
