"""The pull-request lifecycle decision, path by path."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from automator.forge.base import PRState, PRStatus, PullRequest, render_marker
from automator.forge.lifecycle import DesiredPR, PRDecision, plan_pull_requests
from automator.forge.none import NoneForge

V1 = {"app": "r/app:1.0.0@sha256:1"}
V2 = {"app": "r/app:2.0.0@sha256:2"}


def pr(
    number: int,
    state: PRStatus = "open",
    versions: dict[str, str] | None = None,
    *,
    group: str = "app",
    branch: str = "automator/app",
    by_us: bool = False,
    marker: bool = True,
) -> PullRequest:
    mark = PRState(group, versions or V1, closed_by_automator=by_us) if marker else None
    body = render_marker(mark) if mark else "user deleted the marker"
    return PullRequest(number, f"u/{number}", branch, "main", "t", body, state, "sha", marker=mark)


def want(versions: dict[str, str], branch: str = "automator/app", group: str = "app") -> DesiredPR:
    return DesiredPR(group, branch, versions)


def brief(decisions: list[PRDecision]) -> list[tuple[str, str, int | None]]:
    return [(d.action, d.branch, d.pr.number if d.pr else None) for d in decisions]


@pytest.mark.parametrize(
    ("desired", "existing", "settled", "expected"),
    [
        pytest.param([want(V1)], [], (), [("open", "automator/app", None)], id="nothing-open-opens"),
        pytest.param([want(V1)], [pr(1)], (), [("noop", "automator/app", 1)], id="same-versions-noop"),
        pytest.param([want(V2)], [pr(1)], (), [("update", "automator/app", 1)], id="newer-version-updates-same-pr"),
        pytest.param(
            [want(V2)], [pr(1, marker=False)], (), [("update", "automator/app", 1)], id="marker-edited-away-by-branch"
        ),
        pytest.param([want(V2)], [pr(1, "merged")], (), [("open", "automator/app", None)], id="merged-starts-clean"),
        pytest.param([want(V1)], [pr(1, "merged")], (), [("open", "automator/app", None)], id="merged-same-reopens"),
        pytest.param([want(V1)], [pr(1, "closed")], (), [("skip", "automator/app", 1)], id="user-closed-never-reopen"),
        pytest.param([want(V2)], [pr(1, "closed")], (), [("open", "automator/app", None)], id="closed-newer-opens"),
        pytest.param(
            [want(V1)], [pr(1, "closed", by_us=True)], (), [("open", "automator/app", None)], id="we-closed-may-reopen"
        ),
        pytest.param(
            [want(V1)], [pr(1, "closed", marker=False)], (), [("open", "automator/app", None)], id="closed-no-marker"
        ),
        pytest.param(
            [want(V2)],
            [pr(2, "open", V2), pr(1, "closed", V1)],
            (),
            [("noop", "automator/app", 2)],
            id="rejected-older-ignored",
        ),
        pytest.param(
            [want(V1)],
            [pr(2, "open", V2), pr(1, "closed", V1)],
            (),
            [("close", "automator/app", 2), ("skip", "automator/app", 1)],
            id="back-to-rejected-closes-open",
        ),
        pytest.param(
            [want(V2, branch="automator/new")],
            [pr(1, branch="automator/old")],
            (),
            [("close", "automator/old", 1), ("open", "automator/new", None)],
            id="branch-changed-superseded",
        ),
        pytest.param(
            [want(V2, branch="automator/new")],
            [pr(1, branch="automator/old"), pr(2, branch="automator/new")],
            (),
            [("close", "automator/old", 1), ("update", "automator/new", 2)],
            id="duplicate-closed-keeps-current",
        ),
        pytest.param([], [pr(1)], ("app",), [("close", "automator/app", 1)], id="settled-closes"),
        pytest.param([], [pr(1)], (), [("noop", "automator/app", 1)], id="not-evaluated-left"),
        pytest.param([], [pr(1, "merged"), pr(2, "closed")], ("app",), [], id="settled-history-ignored"),
        pytest.param(
            [want(V1, group="a", branch="automator/a")],
            [pr(1, group="b", branch="automator/b")],
            ("b",),
            [("open", "automator/a", None), ("close", "automator/b", 1)],
            id="groups-independent",
        ),
        pytest.param(
            [], [pr(1, marker=False, branch="automator/x")], ("app",), [("noop", "automator/x", 1)], id="unknown-kept"
        ),
        pytest.param(
            [want({**V1, "web": "r/web:1"}, group="all", branch="automator/all")],
            [pr(1)],
            (),
            [("open", "automator/all", None), ("close", "automator/app", 1)],
            id="regrouped-superseded",
        ),
        pytest.param(
            [want({"web": "r/web:1"}, group="web", branch="automator/web")],
            [pr(1)],
            (),
            [("open", "automator/web", None), ("noop", "automator/app", 1)],
            id="other-policies-kept",
        ),
    ],
)
def test_plan(
    desired: list[DesiredPR],
    existing: list[PullRequest],
    settled: tuple[str, ...],
    expected: list[tuple[str, str, int | None]],
) -> None:
    assert brief(plan_pull_requests(desired, existing, settled)) == expected


def test_decisions_carry_reasons_and_groups() -> None:
    [decision] = plan_pull_requests([want(V1)], [pr(7, "closed")])
    assert decision.group == "app"
    assert "#7" in decision.reason and "not reopening" in decision.reason


def test_lifecycle_end_to_end_on_the_none_forge() -> None:
    forge = NoneForge()

    def cycle(desired: list[DesiredPR], settled: tuple[str, ...] = ()) -> list[str]:
        actions: list[str] = []
        for d in plan_pull_requests(desired, forge.list_pull_requests("automator/"), settled):
            actions.append(d.action)
            versions = {x.group: x.versions for x in desired}.get(d.group, {})
            body = render_marker(PRState(d.group, versions))
            if d.action == "open":
                forge.open_pull_request(d.branch, "main", "Update app", body)
            elif d.action == "update" and d.pr:
                forge.update_pull_request(d.pr, "Update app", body)
            elif d.action == "close" and d.pr:
                forge.close_pull_request(d.pr, d.reason)
        return actions

    assert cycle([want(V1)]) == ["open"]
    assert cycle([want(V1)]) == ["noop"]
    assert cycle([want(V2)]) == ["update"]
    assert cycle([], ("app",)) == ["close"]
    assert forge.pull_requests[0].marker is not None and forge.pull_requests[0].marker.closed_by_automator
    assert cycle([want(V2)]) == ["open"]
    assert "Pull request local#2 (open)" in forge.render(forge.pull_requests[1])


GROUPS = ["a", "b", "c"]
VERSIONS = [{"p": "img:1"}, {"p": "img:2"}, {"p": "img:3"}]
STATES: list[PRStatus] = ["open", "closed", "merged"]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[DesiredPR], list[PullRequest], list[str]]:
    desired = [
        DesiredPR(g, draw(st.sampled_from([f"automator/{g}", f"automator/{g}-v2"])), draw(st.sampled_from(VERSIONS)))
        for g in draw(st.lists(st.sampled_from(GROUPS), unique=True))
    ]
    existing: list[PullRequest] = []
    open_branches: set[str] = set()
    for number in range(1, draw(st.integers(0, 8)) + 1):
        group = draw(st.sampled_from(GROUPS))
        branch = draw(st.sampled_from([f"automator/{group}", f"automator/{group}-v2"]))
        state = draw(st.sampled_from(STATES))
        if state == "open" and branch in open_branches:  # a forge holds one open PR per branch
            state = "merged"
        if state == "open":
            open_branches.add(branch)
        made = pr(
            number,
            state,
            draw(st.sampled_from(VERSIONS)),
            group=group,
            branch=branch,
            by_us=draw(st.booleans()),
            marker=draw(st.booleans()) or state != "open",
        )
        existing.insert(0, made)
    settled = draw(st.lists(st.sampled_from(GROUPS), unique=True))
    return desired, existing, [g for g in settled if g not in {d.group for d in desired}]


@given(scenarios())
def test_plan_invariants(case: tuple[list[DesiredPR], list[PullRequest], list[str]]) -> None:
    desired, existing, settled = case
    decisions = plan_pull_requests(desired, existing, settled)
    main = [d for d in decisions if d.action in ("open", "update", "skip") or (d.action == "noop" and d.group)]
    per_group = {d.group: [x.action for x in decisions if x.group == d.group and x.action != "close"] for d in desired}
    for want in desired:  # one main decision per desired group
        assert len(per_group[want.group]) == 1, (want, decisions)
    acted = [d.pr.number for d in decisions if d.pr is not None and d.action != "skip"]
    assert sorted(acted) == sorted(p.number for p in existing if p.state == "open")  # each open PR once
    for d in main:
        wanted = next((w for w in desired if w.group == d.group), None)
        if wanted is None:
            continue
        rejected = [
            p
            for p in existing
            if p.state == "closed"
            and p.marker
            and not p.marker.closed_by_automator
            and p.marker.group == wanted.group
            and dict(p.marker.versions) == dict(wanted.versions)
        ]
        assert (d.action == "skip") == bool(rejected), (d, existing)
        if d.action == "open":
            assert not any(p.state == "open" and p.branch == wanted.branch for p in existing)
        if d.action in ("update", "noop"):
            assert d.pr is not None and d.pr.state == "open" and d.pr.branch == wanted.branch
