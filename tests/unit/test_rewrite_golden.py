"""Golden directories: tests/data/rewrite/<case>/original -> expected, byte for byte.

Each case has a ``decisions.yaml``::

    policies:            # one Decision each
      - name: flux-system:podinfo
        image: ghcr.io/stefanprodan/podinfo     # the policy's repository
        chosen: ghcr.io/stefanprodan/podinfo:6.7.1[@sha256:...]
        digest: Always                          # optional DigestMode
        markerLess: true                        # optional
    warnings:            # optional: "file:line: text" prefixes every one of which must be reported
      - "deployment.yaml:10: unknown policy"

Every case runs through both YAML backends (libyaml and ruamel.yaml), which must agree.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from automator import yamlevents
from automator.policy.model import DigestMode, Policy, SemverChoice, SourceLocation
from automator.refs import parse_reference
from automator.update import Decision, Decisions, update_tree

DATA = Path(__file__).resolve().parents[1] / "data" / "rewrite"
CASES = sorted(p.name for p in DATA.iterdir() if (p / "original").is_dir())


def test_the_golden_cases_are_there() -> None:
    """An empty case list would make every golden test vanish silently."""
    assert len(CASES) >= 15, CASES
    assert all((DATA / case / "expected").is_dir() and (DATA / case / "decisions.yaml").is_file() for case in CASES)


def load_case(case: Path) -> tuple[Decisions, list[str]]:
    spec: dict[str, Any] = YAML(typ="safe", pure=True).load((case / "decisions.yaml").read_text())
    decisions = []
    for i, item in enumerate(spec["policies"]):
        policy = Policy(
            name=item["name"],
            image=parse_reference(item["image"]),
            choice=SemverChoice(">=0"),
            source=SourceLocation(str(case / "decisions.yaml"), i + 1),
            digest=DigestMode(item.get("digest", "Never")),
            marker_less=bool(item.get("markerLess", False)),
        )
        decisions.append(Decision(policy, parse_reference(item["chosen"])))
    return Decisions.of(decisions), list(spec.get("warnings") or [])


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(params=yamlevents.BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "ruamel":
        monkeypatch.setattr(yamlevents, "_CLoader", None)
    return str(request.param)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, backend: str, tmp_path: Path) -> None:
    decisions, expected_warnings = load_case(DATA / case)
    work = tmp_path / "repo"
    shutil.copytree(DATA / case / "original", work)

    result = update_tree(work, decisions, write=True)

    expected = files_under(DATA / case / "expected")
    actual = files_under(work)
    assert sorted(actual) == sorted(expected)
    for name, want in expected.items():
        assert actual[name] == want, f"{case}/{name} differs from the golden file"
    changed = {f.path for f in result.files}
    original = files_under(DATA / case / "original")
    assert changed == {name for name in original if original[name] != expected[name]}
    assert result.empty == (not changed)

    reported = [str(w) for w in result.warnings]
    for want in expected_warnings:
        assert any(want in got for got in reported), f"warning {want!r} not in {reported}"


@pytest.mark.parametrize("case", CASES)
def test_golden_is_idempotent(case: str, tmp_path: Path) -> None:
    """Running again over the expected tree changes nothing: the rewrite has converged."""
    decisions, _ = load_case(DATA / case)
    work = tmp_path / "repo"
    shutil.copytree(DATA / case / "expected", work)
    result = update_tree(work, decisions, write=True)
    assert result.empty
    assert files_under(work) == files_under(DATA / case / "expected")


def test_every_case_has_expected_files() -> None:
    for case in CASES:
        assert (DATA / case / "expected").is_dir(), case
        assert (DATA / case / "decisions.yaml").is_file(), case
