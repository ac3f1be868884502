"""Rendering plain trees: order, hidden files, multi-document files, JSON, Lists, file:line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from automator.errors import RenderError
from automator.sync.render import render

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_walks_the_tree_in_order_and_skips_hidden_and_foreign_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "b/one.yaml": CM.format(name="b1") + "---\n" + CM.format(name="b2") + "---\n",
            "a.yml": CM.format(name="a"),
            "c.json": '{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Secret",'
            ' "metadata": {"name": "c"}}]}',
            ".hidden.yaml": "not: parsed: at: all",
            ".git/config.yaml": CM.format(name="git"),
            "notes.txt": "ignored",
        },
    )
    manifests = render(tmp_path, ["."])
    assert [m.ref.name for m in manifests] == ["a", "c", "b1", "b2"]
    assert [m.source for m in manifests] == ["a.yml:1", "c.json:1", "b/one.yaml:1", "b/one.yaml:6"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (CM.format(name="a") + "data:\n  k: [unclosed\n", "bad.yaml:7"),
        (CM.format(name="a") + "---\n- a list\n", "bad.yaml:6"),
        ("apiVersion: v1\nmetadata:\n  name: x\n", "bad.yaml:1"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "bad.yaml:1"),
        ("a: b\n  c: d\n", "bad.yaml:2"),
    ],
    ids=["unclosed-flow", "not-a-mapping", "no-kind", "no-name", "bad-indent"],
)
def test_a_broken_file_fails_with_file_and_line(tmp_path: Path, text: str, where: str) -> None:
    write(tmp_path, {"ok.yaml": CM.format(name="ok"), "bad.yaml": text})
    with pytest.raises(RenderError, match=rf"^{where}:"):
        render(tmp_path, ["."])


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, {"x.json": '{\n  "apiVersion": "v1",\n  oops\n}'})
    with pytest.raises(RenderError, match=r"^x\.json:3: invalid JSON"):
        render(tmp_path, ["."])


def test_duplicates_and_paths_outside_the_repo_are_refused(tmp_path: Path) -> None:
    write(tmp_path, {"repo/a.yaml": CM.format(name="same"), "repo/b.yaml": CM.format(name="same")})
    with pytest.raises(RenderError, match=r"b\.yaml:1: ConfigMap same is also defined at a\.yaml:1"):
        render(tmp_path / "repo", ["."])
    with pytest.raises(RenderError, match="leaves the repository"):
        render(tmp_path / "repo", ["../"])
    with pytest.raises(RenderError, match="does not exist"):
        render(tmp_path / "repo", ["missing"])


def test_kustomize_directories_render_through_kubectl(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "plain.yaml": CM.format(name="plain"),
            "overlay/kustomization.yaml": "namePrefix: x-\nresources: [cm.yaml]\n",
            "overlay/cm.yaml": CM.format(name="k"),
        },
    )
    manifests = render(tmp_path, ["."])
    assert [(m.ref.name, m.source) for m in manifests] == [("x-k", "overlay (kustomize)"), ("plain", "plain.yaml:1")]
    with pytest.raises(RenderError, match=r"overlay: is a kustomize directory.*'no-such-kubectl'.*not on PATH"):
        render(tmp_path, ["overlay"], kubectl="no-such-kubectl")
    write(tmp_path, {"broken/kustomization.yaml": "resources: [missing.yaml]\n"})
    with pytest.raises(RenderError, match="broken: kubectl kustomize failed"):
        render(tmp_path, ["broken"])


def test_kubectl_is_installed_for_these_tests() -> None:
    assert shutil.which("kubectl"), "kubectl is expected on PATH (see DEVELOPERS.md)"


def test_render_cache_round_trips_a_revision_and_ignores_damage(tmp_path: Path) -> None:
    from automator.sync.engine import RenderCache

    write(tmp_path / "repo", {"a.yaml": CM.format(name="a") + "data:\n  k: v\n"})
    manifests = render(tmp_path / "repo", ["."])
    cache = RenderCache(tmp_path / "cache")
    assert cache.load("rev1", (".",)) is None
    cache.store("rev1", (".",), manifests)
    assert cache.load("rev1", (".",)) == manifests
    assert cache.load("rev1", ("other",)) is None
    cache.store("rev2", (".",), [])
    assert cache.load("rev1", (".",)) is None  # only the latest revision is kept
    for f in (tmp_path / "cache").iterdir():
        f.write_text("{not json")
    assert cache.load("rev2", (".",)) is None
