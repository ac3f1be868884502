"""Markers checked against the loaded policies: each unknown name an error with file:line and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from automator.policy import load_policies
from automator.update.markercheck import Marker, check_markers, check_tree, find_markers, overlay_names

NATIVE = (
    "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: {name}\n{ns}"
    "spec:\n  image: nginx\n  policy:\n    semver:\n      range: '*'\n"
)
FLUX = (
    "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\nmetadata:\n  name: {name}\n"
    "spec:\n  image: ghcr.io/acme/{name}\n  interval: 5m\n---\n"
    "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata:\n  name: {name}\n"
    "spec:\n  imageRepositoryRef:\n    name: {name}\n  policy:\n    semver:\n      range: 1.x\n"
)


def native(name: str, namespace: str | None = None) -> str:
    return NATIVE.format(name=name, ns=f"  namespace: {namespace}\n" if namespace else "")


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_find_markers_reads_file_line_column_and_reference() -> None:
    text = (
        "a: 1\n"
        'image: nginx:1.0 # {"$imagepolicy": "apps:web"}\n'
        '  tag: "1.0"   # {"$imagepolicy": "apps:web:tag"}\n'
        "# a comment about $imagepolicy that is no marker\n"
        'url: "http://x/#{"\n'
    )
    assert find_markers(text, "d.yaml") == (
        Marker("d.yaml", 2, 18, "apps:web"),
        Marker("d.yaml", 3, 16, "apps:web:tag"),
    )


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("apps:web", None),  # exact
        ("web", None),  # the one policy with that short name
        ("apps:web:tag", None),  # a setter suffix
        ("apps:wbe", "did you mean 'apps:web'"),
        ("apps:wbe:tag", "did you mean 'apps:web:tag'"),
        ("aps:web", "did you mean 'apps:web'"),
        ("zz:web", "did you mean 'apps:web'"),  # the namespace far off, the name the one policy's
        ("zzzz:qqqq", "no policy is close"),
    ],
)
def test_unknown_policy_is_an_error_with_the_closest_name(tmp_path: Path, ref: str, expected: str | None) -> None:
    write(tmp_path, {"policies/web.yaml": native("web", "apps")})
    policies = load_policies(tmp_path)
    errors = check_markers([Marker("deploy.yaml", 7, 20, ref)], policies, {})
    if expected is None:
        assert errors == ()
        return
    (err,) = errors
    assert (err.path, err.line, err.column) == ("deploy.yaml", 7, 20)
    assert str(err).startswith(f"deploy.yaml:7:20: marker names policy {ref!r}")
    assert expected in str(err)
    if "did you mean" in expected:
        assert "policies/web.yaml:4" in str(err)  # where the policy that does exist is declared


def test_ambiguous_short_name_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": native("web", "apps"), "b.yaml": native("web", "prod")})
    (err,) = check_markers([Marker("d.yaml", 1, 10, "web")], load_policies(tmp_path), {})
    assert "ambiguous" in str(err)
    assert "apps:web" in str(err)
    assert "prod:web" in str(err)


def test_a_refused_policy_is_left_to_the_loader_error(tmp_path: Path) -> None:
    bad = native("web", "apps").replace("range: '*'", "range: '>=1 <<2'")
    write(tmp_path, {"p.yaml": bad})
    policies = load_policies(tmp_path)
    assert policies.errors  # the loader reports it
    assert check_markers([Marker("d.yaml", 1, 10, "apps:web")], policies, {}) == ()


def test_overlay_namespace_is_named(tmp_path: Path) -> None:
    """A Flux policy without a namespace is flux-system:web as written; an overlay puts it in staging."""
    write(
        tmp_path,
        {
            "base/policy.yaml": FLUX.format(name="web"),
            "base/kustomization.yaml": "resources:\n  - policy.yaml\n",
            "overlays/staging/kustomization.yaml": "namespace: staging\nresources:\n  - ../../base\n",
            "overlays/prod/kustomization.yaml": "namespace: prod\nresources:\n  - ../../base/policy.yaml\n",
            "deploy.yaml": 'image: ghcr.io/acme/web:1.0 # {"$imagepolicy": "staging:web"}\n'
            'other: ghcr.io/acme/web:1.0 # {"$imagepolicy": "prod:wbe"}\n',
        },
    )
    policies = load_policies(tmp_path)
    assert policies.names == ("flux-system:web",)
    overlays = overlay_names(
        policies.policies,
        {
            "base/kustomization.yaml": {"resources": ["policy.yaml"]},
            "overlays/staging/kustomization.yaml": {"namespace": "staging", "resources": ["../../base"]},
            "overlays/prod/kustomization.yaml": {"namespace": "prod", "resources": ["../../base/policy.yaml"]},
        },
    )
    assert {name: o.kustomization for name, o in overlays.items()} == {
        "staging:web": "overlays/staging/kustomization.yaml",
        "prod:web": "overlays/prod/kustomization.yaml",
    }
    exact, near = check_tree(tmp_path, policies)
    assert (exact.path, exact.line) == ("deploy.yaml", 1)
    assert "'flux-system:web'" in str(exact)
    assert "overlays/staging/kustomization.yaml" in str(exact)
    assert "namespace: staging" in str(exact)
    assert (near.path, near.line) == ("deploy.yaml", 2)
    assert "did you mean 'prod:web'" in str(near)
    assert "overlays/prod/kustomization.yaml" in str(near)


def test_overlays_are_bounded_and_never_leave_the_repository() -> None:
    loop = {
        "a/kustomization.yaml": {"namespace": "x", "resources": ["../b"]},
        "b/kustomization.yaml": {"namespace": "y", "resources": ["../a", "../../outside", "https://x/y"]},
    }
    assert overlay_names((), loop) == {}


def test_check_tree_reads_only_regular_yaml_and_skips_git(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "p.yaml": native("web", "apps"),
            "ok.yaml": 'a: nginx:1 # {"$imagepolicy": "apps:web"}\n',
            "bad.yml": 'a: nginx:1 # {"$imagepolicy": "apps:nope"}\n',
            ".git/x.yaml": 'a: nginx:1 # {"$imagepolicy": "apps:nope"}\n',
            "notes.txt": 'a: nginx:1 # {"$imagepolicy": "apps:nope"}\n',
        },
    )
    errors = check_tree(tmp_path, load_policies(tmp_path))
    assert [(e.path, e.line) for e in errors] == [("bad.yml", 1)]
    assert check_tree(tmp_path, load_policies(tmp_path), only={"ok.yaml"}) == ()
