"""Gates that need memory: how policies declare them, and the pure functions over the state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from automator.config import load_config
from automator.errors import PolicyFileError
from automator.policy import PolicySet, load_policies
from automator.policy.model import MinAgeFrom
from automator.state import PolicyChoice, StateStore
from automator.state.gates import cooldown, holds

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

NATIVE = """\
apiVersion: automator.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: app
spec:
  image: ghcr.io/example/app
  policy: {semver: {range: '>=1'}}
"""
FLUX = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: app
  namespace: apps
spec:
  image: ghcr.io/example/app
  interval: 5m
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata:
  name: app
  namespace: apps
  annotations:
{annotations}
spec:
  imageRepositoryRef:
    name: app
  policy:
    semver:
      range: 1.x
"""


def load_policies_text(tmp_path: Path, text: str) -> PolicySet:
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    return load_policies(tmp_path)


def test_native_min_age_and_its_clock(tmp_path: Path) -> None:
    ps = load_policies_text(tmp_path, NATIVE + "  minAge: 72h\n  minAgeFrom: buildTime\n")
    [p] = ps.policies
    assert p.min_age_seconds == 72 * 3600 and p.min_age_from is MinAgeFrom.BUILD_TIME
    [q] = load_policies_text(tmp_path, NATIVE).policies
    assert q.min_age_seconds == 0 and q.min_age_from is MinAgeFrom.FIRST_SEEN


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ("  minAge: 3d\n", "spec.minAge", "invalid duration '3d'"),
        ("  minAge: 72\n", "spec.minAge", "quote it"),
        ("  minAgeFrom: pushTime\n", "spec.minAgeFrom", "'firstSeen' or 'buildTime'"),
    ],
)
def test_native_min_age_errors_name_file_line_and_field(tmp_path: Path, extra: str, field: str, message: str) -> None:
    ps = load_policies_text(tmp_path, NATIVE + extra)
    assert not ps.policies
    [err] = ps.errors
    assert err.field == field and err.path == "p.yaml" and err.line == 8
    assert message in str(err)


def test_flux_reads_min_age_from_annotations(tmp_path: Path) -> None:
    notes = "    automator.dev/min-age: 36h\n    automator.dev/min-age-from: buildTime\n"
    ps = load_policies_text(tmp_path, FLUX.format(annotations=notes))
    assert not ps.errors
    [p] = ps.policies
    assert p.min_age_seconds == 36 * 3600 and p.min_age_from is MinAgeFrom.BUILD_TIME


@pytest.mark.parametrize(
    ("notes", "field", "message"),
    [
        ("    automator.dev/min-age: soon\n", "metadata.annotations.automator.dev/min-age", "invalid duration"),
        ("    automator.dev/min-age-from: never\n", "metadata.annotations.automator.dev/min-age-from", "buildTime"),
    ],
)
def test_flux_annotation_errors_name_the_annotation(tmp_path: Path, notes: str, field: str, message: str) -> None:
    ps = load_policies_text(tmp_path, FLUX.format(annotations=notes))
    assert not ps.policies
    [err] = ps.errors
    assert err.field == field and err.line == 16 and message in str(err)
    assert "apps:app" in ps.refused  # its markers are left alone, never handed to a look-alike


def test_cooldown_is_due_min_age_after_first_seen(tmp_path: Path) -> None:
    [p] = load_policies_text(tmp_path, NATIVE + "  minAge: 72h\n").policies
    assert cooldown(p, T0, T0 + timedelta(hours=71)) == T0 + timedelta(hours=72)
    assert cooldown(p, T0, T0 + timedelta(hours=72)) is None
    [q] = load_policies_text(tmp_path, NATIVE).policies
    assert cooldown(q, T0, T0) is None


def test_a_pin_is_read_from_the_native_field_and_the_flux_annotation(tmp_path: Path) -> None:
    [p] = load_policies_text(tmp_path, NATIVE + "  pin: 1.2.3\n").policies
    assert (p.pin, p.pin_field) == ("1.2.3", "spec.pin")
    [f] = load_policies_text(tmp_path, FLUX.format(annotations="    automator.dev/pin: 1.2.3\n")).policies
    assert (f.pin, f.pin_field) == ("1.2.3", "annotation automator.dev/pin")
    bad = load_policies_text(tmp_path, FLUX.format(annotations="    automator.dev/pin: 'a b'\n"))
    [err] = bad.errors
    assert err.field == "metadata.annotations.automator.dev/pin" and "not a valid tag" in str(err)
    [err] = load_policies_text(tmp_path, NATIVE + "  pin: 'a:b'\n").errors
    assert err.field == "spec.pin" and "not a valid tag" in str(err)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("spec:\n  pullRequest:\n    maxOpen: 0\n", "spec.pullRequest.maxOpen"),
        ("spec:\n  pullRequest:\n    maxOpenedPerHour: -1\n", "spec.pullRequest.maxOpenedPerHour"),
        ("spec:\n  pullRequest:\n    maxOpen: '3'\n", "spec.pullRequest.maxOpen"),
    ],
)
def test_pull_request_limits_are_validated_with_their_field(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "automator.yaml"
    path.write_text("apiVersion: automator.dev/v1alpha1\nkind: Automation\n" + body)
    with pytest.raises(PolicyFileError) as info:
        load_config(path, shown="automator.yaml")
    assert "automator.yaml:5:" in str(info.value) and field in str(info.value)


def test_pull_request_limits_default_to_none(tmp_path: Path) -> None:
    path = tmp_path / "automator.yaml"
    path.write_text("apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  pullRequest:\n    maxOpen: 3\n")
    pr = load_config(path).spec.pull_request
    assert (pr.max_open, pr.max_opened_per_hour) == (3, None)


class Clock:
    def __init__(self) -> None:
        self.when = T0

    def __call__(self) -> datetime:
        return self.when

    def tick(self) -> datetime:
        self.when += timedelta(minutes=5)
        return self.when


def history(tmp_path: Path, tags: list[str], base: list[str], chose: str = "1.1.0") -> StateStore:
    """A store whose registry listed ``tags`` (in that order), that chose ``chose`` over 1.0.0
    once, and whose base branch held each of ``base`` in turn."""
    clock = Clock()
    store = StateStore(tmp_path / "state", now=clock)
    for i in range(len(tags)):
        store.record_listing("r.example/app", tags[: i + 1])
        clock.tick()
    cycle = store.begin_cycle("c0")
    store.record_choices(cycle, [PolicyChoice("app", "r.example/app", chose, None, "1.0.0")])
    for n, tag in enumerate(base):
        store.record_merge(f"rev{n}", clock.tick(), {"app": [tag]})
    return store


def test_a_version_of_ours_the_base_went_back_from_is_held(tmp_path: Path) -> None:
    with history(tmp_path, ["1.0.0", "1.0.5", "1.1.0"], ["1.0.0", "1.1.0", "1.0.0"]) as store:
        [(policy, (hold,))] = holds(store).items()
        assert (policy, hold.tag, hold.back_to, hold.revision) == ("app", "1.1.0", ("1.0.0",), "rev2")
        assert "back from it to 1.0.0" in hold.reason and "lift the hold" in hold.reason


def test_a_hand_edit_to_an_older_tag_never_deployed_is_a_rollback_too(tmp_path: Path) -> None:
    with history(tmp_path, ["1.0.0", "1.0.5", "1.1.0"], ["1.0.0", "1.1.0", "1.0.5"]) as store:
        assert [h.back_to for h in holds(store)["app"]] == [("1.0.5",)]


def test_the_fields_as_the_cycle_located_them_are_the_last_point_of_the_history(tmp_path: Path) -> None:
    with history(tmp_path, ["1.0.0", "1.1.0"], ["1.0.0", "1.1.0"]) as store:
        assert holds(store) == {}
        assert [h.tag for h in holds(store, {"app": ("1.0.0",)})["app"]] == ["1.1.0"]


@pytest.mark.parametrize(
    ("base", "why"),
    [
        (["1.0.0", "1.1.0", "1.0.0", "1.1.0"], "set back to the held version by hand: the hold is lifted"),
        (["1.0.0", "1.1.0", "1.0.0", "1.2.0"], "a newer version reached the base branch"),
        (["1.0.0", "1.2.0", "1.1.0"], "moved from a version that was not ours"),
        (["1.0.0", "1.1.0", "1.2.0"], "moved forward, not back"),
    ],
)
def test_no_hold(tmp_path: Path, base: list[str], why: str) -> None:
    with history(tmp_path, ["1.0.0", "1.1.0", "1.2.0"], base) as store:
        assert holds(store) == {}, why
