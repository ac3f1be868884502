"""The hidden state marker and the default PR body: round trips, user edits, escaping."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automator.forge.base import PRState, closed_body, parse_marker, render_marker, strip_marker, with_marker
from automator.forge.body import BodyRow, Location, build_body, render_table

STATE = PRState("podinfo", {"podinfo": "ghcr.io/stefanprodan/podinfo:6.5.0@sha256:" + "a" * 64})


def test_marker_round_trips_and_is_a_hidden_comment() -> None:
    text = render_marker(STATE)
    assert text.startswith("<!-- automator:state {") and text.endswith("} -->")
    assert parse_marker(f"Some body\n\n{text}\n") == STATE


def test_versions_are_sorted_and_read_only() -> None:
    state = PRState("g", {"b": "2", "a": "1"})
    assert list(state.versions) == ["a", "b"]
    with pytest.raises(TypeError):
        state.versions["c"] = "3"  # type: ignore[index]
    assert render_marker(state) == render_marker(PRState("g", {"a": "1", "b": "2"}))
    assert hash(state) == hash(PRState("g", {"a": "1", "b": "2"}))


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "no marker at all",
        "<!-- automator:state not json -->",
        '<!-- automator:state {"v": 2, "group": "g", "versions": {}} -->',
        '<!-- automator:state {"v": 1, "group": "", "versions": {}} -->',
        '<!-- automator:state {"v": 1, "group": "g", "versions": {"a": 1}} -->',
        '<!-- automator:state {"v": 1, "group": "g", "versions": ["a"]} -->',
        '<!-- automator:state ["v", 1] -->',
        '<!-- automator:state {"v": 1, "group": "g", "versions": {"a": "1"} ',
        "<!-- automator:state {" + "[" * 5000 + "} -->",
        "<!-- automator:state {" + '"x": "' + "y" * 70_000 + '"} -->',
    ],
)
def test_malformed_markers_read_as_none(body: str | None) -> None:
    assert parse_marker(body) is None


def test_user_edits_around_the_marker_keep_it() -> None:
    body = with_marker("| table |", STATE)
    edited = "I reworded this.\r\n\r\n" + body.replace("| table |", "> quoted\r\n") + "\r\nThanks!"
    assert parse_marker(edited) == STATE


def test_last_good_marker_wins_when_a_user_pastes_another() -> None:
    other = PRState("other", {"x": "1"})
    body = f"{render_marker(other)}\n<!-- automator:state {{broken -->\n{render_marker(STATE)}"
    assert parse_marker(body) == STATE
    assert parse_marker(f"{render_marker(STATE)}\n<!-- automator:state {{broken -->") == STATE


def test_strings_cannot_close_the_comment_early() -> None:
    evil = PRState("g--><script>", {"a-->b": "x--y<!--z", "---": ">"})
    text = render_marker(evil)
    inner = text[len("<!-- automator:state ") : -len(" -->")]
    assert "--" not in inner and "<" not in inner and ">" not in inner
    assert parse_marker(f"before {text} after") == evil


@given(
    group=st.text(min_size=1, max_size=30),
    versions=st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5),
)
def test_any_state_round_trips(group: str, versions: dict[str, str]) -> None:
    state = PRState(group, versions)
    assert parse_marker("x\n" + with_marker("body", state)) == state


def test_with_marker_replaces_the_old_marker() -> None:
    body = with_marker(with_marker("hello", PRState("g", {"a": "1"})), STATE)
    assert body.count("automator:state") == 1
    assert parse_marker(body) == STATE
    assert strip_marker(body) == "hello\n"


def test_closed_body_flags_the_marker_and_leaves_unmarked_bodies() -> None:
    closed = parse_marker(closed_body(with_marker("x", STATE)))
    assert closed is not None and closed.closed_by_automator and closed.versions == STATE.versions
    assert closed_body("no marker") == "no marker"
    assert json.loads(render_marker(closed)[len("<!-- automator:state ") : -4])["closed_by"] == "automator"


def test_body_table_lists_image_change_files_and_policy_links() -> None:
    rows = [
        BodyRow(
            image="ghcr.io/x/app",
            old="1.0.0",
            new="1.1.0",
            locations=(Location("apps/app.yaml", 12, "https://h/blob/main/apps/app.yaml#L12"), Location("b|c.yaml")),
            policy="app",
            policy_url="https://h/blob/main/policies/app.yaml",
        ),
        BodyRow(image="nginx", old="1.25", new="1.27", locations=(Location("web.yaml", 3),)),
    ]
    body = build_body(rows, STATE)
    assert body.startswith("This pull request updates 2 images")
    assert "| Image | Change | Files | Policy |" in body
    assert "| `ghcr.io/x/app` | `1.0.0` → `1.1.0` | [`apps/app.yaml:12`](https://h/blob/main/apps/app.yaml#L12)" in body
    assert "`b\\|c.yaml`" in body
    assert "[`app`](https://h/blob/main/policies/app.yaml)" in body
    assert "| `nginx` | `1.25` → `1.27` | `web.yaml:3` |  |" in body
    assert parse_marker(body) == STATE


def test_table_without_policies_has_no_policy_column() -> None:
    table = render_table([BodyRow("a", "1", "2")])
    assert table.splitlines()[0] == "| Image | Change | Files |"


def test_huge_bodies_drop_rows_but_keep_the_marker() -> None:
    rows = [BodyRow(f"img{i}", "1", "2", (Location("x" * 200, i),)) for i in range(1000)]
    body = build_body(rows, STATE, intro="Intro", footer="Footer")
    assert len(body) <= 60_000
    assert "more changes not shown." in body and "Footer" in body
    assert parse_marker(body) == STATE
