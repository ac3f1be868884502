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
        (CM.format(name="a") + "data:\n  k: [unclosed\n", "bad.yaml:6"),  # its last line, not past the end
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


# --------------------------------------------------------------------------- hostile trees


def test_a_symlink_out_of_the_checkout_is_refused_not_applied(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", {"secret.yaml": CM.format(name="from-outside")})
    repo = write(tmp_path / "repo", {"a.yaml": CM.format(name="a")})
    (repo / "b.yaml").symlink_to(outside / "secret.yaml")
    with pytest.raises(RenderError, match=r"^b\.yaml: is a symlink to .*outside the repository"):
        render(repo, ["."])
    (repo / "b.yaml").unlink()
    (repo / "zero.yaml").symlink_to("/dev/zero")  # would read forever
    with pytest.raises(RenderError, match=r"^zero\.yaml: is a symlink to /dev/zero, outside the repository"):
        render(repo, ["."])


def test_a_symlink_inside_the_checkout_is_read(tmp_path: Path) -> None:
    repo = write(tmp_path / "repo", {"shared/cm.yaml": CM.format(name="shared"), "apps/a.yaml": CM.format(name="a")})
    (repo / "apps" / "link.yaml").symlink_to(repo / "shared" / "cm.yaml")
    assert [m.ref.name for m in render(repo, ["apps"])] == ["a", "shared"]


def test_devices_fifos_and_huge_files_are_refused(tmp_path: Path) -> None:
    import os

    from automator.sync import render as render_module

    repo = write(tmp_path / "repo", {"a.yaml": CM.format(name="a")})
    os.mkfifo(repo / "pipe.yaml")  # opening it would block forever
    with pytest.raises(RenderError, match=r"^pipe\.yaml: is not a regular file"):
        render(repo, ["."])
    (repo / "pipe.yaml").unlink()
    with (repo / "big.yaml").open("wb") as f:
        f.truncate(render_module.MAX_FILE_BYTES + 1)
    with pytest.raises(RenderError, match=r"^big\.yaml: is 16,777,217 bytes, over the 16,777,216-byte limit"):
        render(repo, ["."])


def test_kustomize_never_follows_a_symlink_out_of_the_checkout(tmp_path: Path) -> None:
    outside = write(
        tmp_path / "outside",
        {"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": CM.format(name="from-outside")},
    )
    repo = write(tmp_path / "repo", {"a.yaml": CM.format(name="a")})
    (repo / "linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RenderError, match=r"^linked: is a symlink to .*outside the repository"):
        render(repo, ["."])
    (repo / "linked").unlink()
    write(repo, {"overlay/kustomization.yaml": "resources: [cm.yaml]\n"})
    (repo / "overlay" / "cm.yaml").symlink_to(outside / "cm.yaml")
    with pytest.raises(RenderError, match=r"^overlay/cm\.yaml: is a symlink to .*outside the repository"):
        render(repo, ["."])


def test_an_alias_bomb_fails_the_render_before_anything_expands_it(tmp_path: Path) -> None:
    lines = [CM.format(name="bomb"), "data:\n", '  a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]\n']
    lines += [f"  a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)]
    write(tmp_path, {"bomb.yaml": "".join(lines)})
    with pytest.raises(RenderError, match=r"^bomb\.yaml:1: invalid YAML: its aliases expand it to more than 1,000,000"):
        render(tmp_path, ["."])
    write(tmp_path, {"bomb.yaml": CM.format(name="fine") + "data:\n  a: &a x\n  b: *a\n"})
    assert render(tmp_path, ["."])[0].obj["data"] == {"a": "x", "b": "x"}  # aliases within bounds still work


@pytest.mark.parametrize("name", ["deep.json", "deep.yaml"])
def test_absurd_nesting_is_an_error_not_a_crash(tmp_path: Path, name: str) -> None:
    depth = 100_000
    text = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "d": ' + "[" * depth + "]" * depth
    write(tmp_path, {name: text + "}\n"})
    with pytest.raises(
        RenderError, match=rf"^{name}:1: invalid (JSON|YAML): mappings and sequences nested more than 500"
    ):
        render(tmp_path, ["."])


@pytest.mark.parametrize(
    ("written", "applied"),
    [
        ("yes", True),
        ("on", True),
        ("y", True),
        ("Off", False),
        ("'yes'", "yes"),
        ("017", 15),
        ("0x1F", 31),
        ("0o17", 15),
        ("1_000", 1000),
        ("09", 9.0),
        ("1.5", 1.5),
        ("1:30", "1:30"),  # PyYAML's YAML 1.1 reads 90; kubectl keeps the string
        ("2001-12-14", "2001-12-14"),  # PyYAML reads a date; kubectl keeps the string
        ("2001-12-14T21:59:43Z", "2001-12-14T21:59:43Z"),
        ("~", None),
        ("!!str 017", "017"),
        ("!!float 1", 1.0),
        ("v1.2", "v1.2"),
    ],
)
def test_plain_scalars_mean_what_kubectl_reads(tmp_path: Path, written: str, applied: object) -> None:
    write(tmp_path, {"x.yaml": "apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: x\nspec:\n"
                     f"  value: {written}\n"})  # fmt: skip
    [manifest] = render(tmp_path, ["."])
    value = manifest.obj["spec"]["value"]
    assert value == applied and type(value) is type(applied)


def test_a_wrongly_tagged_scalar_names_its_line(tmp_path: Path) -> None:
    write(tmp_path, {"x.yaml": CM.format(name="x") + "data:\n  n: !!int twelve\n"})
    with pytest.raises(RenderError, match=r"^x\.yaml:6: invalid YAML: 'twelve' is not a valid !!int"):
        render(tmp_path, ["."])


def test_a_kustomization_may_not_reach_out_of_the_checkout_or_onto_the_network(tmp_path: Path) -> None:
    write(tmp_path / "outside", {"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": CM.format(name="out")})
    repo = write(
        tmp_path / "repo",
        {
            "base/kustomization.yaml": "resources: [cm.yaml]\n",
            "base/cm.yaml": CM.format(name="base"),
            "overlay/kustomization.yaml": "resources: [../base]\nnamePrefix: prod-\n",
        },
    )
    assert [m.ref.name for m in render(repo, ["overlay"])] == ["prod-base"]  # a base inside the repo is fine
    write(repo, {"escape/kustomization.yaml": "resources: [../../outside]\n"})
    with pytest.raises(
        RenderError, match=r"^escape/kustomization\.yaml: resources entry '../../outside' leads outside"
    ):
        render(repo, ["escape"])
    write(
        repo,
        {"escape/kustomization.yaml": "resources: [../base]\n", "base/kustomization.yaml": "bases: [../../outside]\n"},
    )
    with pytest.raises(RenderError, match=r"^base/kustomization\.yaml: bases entry '../../outside' leads outside"):
        render(repo, ["escape"])  # checked through every kustomization it names
    remote = "github.com/acme/fleet//apps?ref=v1"
    write(repo, {"escape/kustomization.yaml": f"resources: ['{remote}']\n"})
    with pytest.raises(RenderError, match=r"is fetched from the network; the synchronizer applies only what"):
        render(repo, ["escape"])
