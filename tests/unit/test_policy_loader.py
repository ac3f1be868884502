"""Loading policy files: Flux fixtures (v1beta2, v1), the native format, and every error."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from automator import yamlevents
from automator.errors import PolicyFileError
from automator.policy import (
    DEFAULT_EXCLUDES,
    AlphabeticalChoice,
    DigestChoice,
    DigestMode,
    NewestBuildChoice,
    NumericalChoice,
    Order,
    PolicySet,
    SemverChoice,
    SourceLocation,
    TagFilter,
    load_policies,
)
from automator.refs import parse_reference

DATA = Path(__file__).resolve().parents[1] / "data" / "policies"


@pytest.fixture(autouse=True, params=yamlevents.BACKENDS)
def yaml_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every loader test runs with libyaml events (when available) and with ruamel.yaml's parser."""
    if request.param == yamlevents.RUAMEL:
        monkeypatch.setattr(yamlevents, "_CLoader", None)
    return str(request.param)


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def by_name(ps: PolicySet) -> dict[str, object]:
    return {p.name: p for p in ps.policies}


class TestFluxV1beta2:
    @pytest.fixture(autouse=True)
    def _load(self, yaml_backend: str) -> None:
        self.ps = load_policies(DATA / "flux-v1beta2")

    def test_loads_every_policy_without_errors(self) -> None:
        assert self.ps.errors == ()
        assert sorted(self.ps.names) == [
            "apps:podinfo",
            "apps:podinfo-main",
            "flux-system:podinfo-stable",
            "flux-system:redis",
        ]

    def test_repository_fields_reach_the_policy(self) -> None:
        p = self.ps["apps:podinfo"]
        assert p.image == parse_reference("ghcr.io/stefanprodan/podinfo")
        assert p.choice == SemverChoice(">=6.0.0 <7.0.0", allow_prerelease=False, strict=True)
        assert p.credentials == "ghcr-auth"
        assert p.cert_secret == "ghcr-ca"
        assert p.service_account == "image-reflector"
        assert p.provider == "generic"
        assert (p.interval_seconds, p.timeout_seconds) == (5400.0, 120.0)
        assert p.exclude == (*DEFAULT_EXCLUDES, r"^.*\.sig$", "^debug-")
        assert p.digest is DigestMode.IF_NOT_PRESENT and p.tracks_digest
        assert p.origin == "flux/v1beta2"
        assert p.source == SourceLocation("apps/podinfo.yaml", 59, 9)
        assert (p.suspend, p.insecure, p.marker_less, p.variant_aware) == (False, False, False, False)

    def test_filter_and_numerical(self) -> None:
        p = self.ps["apps:podinfo-main"]
        assert p.choice == NumericalChoice(Order.ASC)
        assert p.filter == TagFilter("^main-[a-fA-F0-9]+-(?P<ts>.*)", "$ts")
        assert p.digest is DigestMode.NEVER and not p.tracks_digest

    def test_default_namespace_and_cross_namespace_reference(self) -> None:
        redis = self.ps["flux-system:redis"]
        assert redis.image.repository == "docker.io/library/redis"
        assert redis.choice == AlphabeticalChoice(Order.DESC)
        assert self.ps["flux-system:podinfo-stable"].image.repository == "ghcr.io/stefanprodan/podinfo"

    def test_lookup(self) -> None:
        assert self.ps.get("redis") is self.ps["flux-system:redis"]  # unique short name
        assert self.ps.get("podinfo") is self.ps["apps:podinfo"]
        assert self.ps.get("other:podinfo") is None
        assert "apps:podinfo-main" in self.ps and "nope" not in self.ps
        assert len(self.ps) == 4 and list(self.ps) == list(self.ps.policies)
        with pytest.raises(KeyError):
            self.ps["missing"]


class TestFluxV1:
    @pytest.fixture(autouse=True)
    def _load(self, yaml_backend: str) -> None:
        self.ps = load_policies(DATA / "flux-v1")

    def test_fields(self) -> None:
        assert self.ps.errors == ()
        app = self.ps["infra:app"]
        assert app.image == parse_reference("registry.example.com:5000/team/app")
        assert app.choice == SemverChoice("~1.4", strict=True)
        assert app.filter == TagFilter("^(?P<v>[0-9.]+)-linux$", "${v}")
        assert app.digest is DigestMode.ALWAYS
        assert (app.insecure, app.provider, app.origin) == (True, "aws", "flux/v1")
        assert app.suspend  # the repository is suspended
        assert self.ps["infra:app-latest"].suspend
        assert self.ps["infra:app-latest"].choice == AlphabeticalChoice(Order.ASC)


class TestNative:
    @pytest.fixture(autouse=True)
    def _load(self, yaml_backend: str) -> None:
        self.ps = load_policies(DATA / "native")

    def test_every_field(self) -> None:
        assert self.ps.errors == ()
        web = self.ps["apps:web"]
        assert web.image.repository == "docker.io/library/nginx"
        assert web.choice == SemverChoice("^1.25", allow_prerelease=True, strict=False)
        assert web.filter == TagFilter("^(?P<v>[0-9.]+)-alpine$", "$v")
        assert web.exclude == (*DEFAULT_EXCLUDES, r"^1\.25\.0")
        assert web.digest is DigestMode.ALWAYS
        assert web.credentials == "hub"
        assert web.interval_seconds == 5400.0
        assert (web.suspend, web.variant_aware, web.allow_downgrade, web.insecure, web.marker_less) == (True,) * 5
        assert web.platform == "linux/arm64/v8"
        assert web.labels == (("team", "web"),)
        assert web.origin == "native"

    def test_defaults_and_other_kinds(self) -> None:
        tools = self.ps["tools"]
        assert tools.choice == DigestChoice("stable") and tools.exclude == () and tools.tracks_digest
        preview = self.ps["preview"]
        assert preview.choice == NewestBuildChoice()
        assert (preview.interval_seconds, preview.platform, preview.exclude) == (300.0, "linux/amd64", DEFAULT_EXCLUDES)


def test_examples_directory_loads_cleanly() -> None:
    ps = load_policies(Path(__file__).resolve().parents[2] / "policies")
    assert ps.errors == ()
    kinds = {type(p.choice) for p in ps.policies}
    assert kinds == {SemverChoice, NumericalChoice, AlphabeticalChoice, NewestBuildChoice, DigestChoice}


NATIVE_HEAD = """\
apiVersion: automator.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: app
spec:
  image: ghcr.io/example/app
"""


def column(text: str, line: int, at: str) -> int:
    """1-based column of ``at`` on ``line`` of ``text``: the tables name what an error points at."""
    found = text.splitlines()[line - 1].find(at)
    assert found >= 0, (line, at)
    return found + 1


NEWEST = "  policy: {newestBuild: {}}\n"


@pytest.mark.parametrize(
    ("body", "line", "at", "field", "message"),
    [
        ("  policy: {semver: {range: '>=1.2 <'}}\n", 7, "'>=", "spec.policy.semver.range", "invalid semver range"),
        ("  policy:\n    semver:\n      range: 1.2\n", 9, "1.2", "spec.policy.semver.range", "quote it"),
        (
            "  policy:\n    semver:\n      rnage: '1.x'\n",
            9,
            "rnage",
            "spec.policy.semver.rnage",
            "did you mean 'range'?",
        ),
        ("  policy:\n    semver: {}\n", 8, "semver", "spec.policy.semver.range", "missing required field 'range'"),
        ("  policy: {}\n", 7, "policy", "spec.policy", "set exactly one of"),
        ("  policy: {numerical: {}, alphabetical: {}}\n", 7, "policy", "spec.policy", "got numerical, alphabetical"),
        ("  policy: {numerical: {order: up}}\n", 7, "up", "spec.policy.numerical.order", "'asc' or 'desc'"),
        (
            "  policy: {semver: {range: '*', allowPrerelease: yes}}\n",
            7,
            "yes",
            "spec.policy.semver.allowPrerelease",
            "valid boolean, got str 'yes'; write true or false",
        ),
        ("  policy: {digest: {tag: 'no:tag'}}\n", 7, "'no:", "spec.policy.digest.tag", "not a valid tag"),
        (NEWEST + "  filterTags: {pattern: '(unclosed'}\n", 8, "'(", "spec.filterTags.pattern", "missing )"),
        (
            NEWEST + "  filterTags: {pattern: '^(?P<ts>[0-9]+)', extract: '$tss'}\n",
            8,
            "'$tss",
            "spec.filterTags.extract",
            "group 'tss'",
        ),
        (
            NEWEST + "  filterTags: {pattern: '^([0-9]+)', extract: '$2'}\n",
            8,
            "'$2",
            "spec.filterTags.extract",
            "refers to group 2",
        ),
        (NEWEST + "  filterTags: {pattern: '^(?=a)'}\n", 8, "'^", "spec.filterTags.pattern", "look-around"),
        (NEWEST + "  filterTags: {extract: '$1'}\n", 8, "filterTags", "spec.filterTags.pattern", "missing required"),
        (NEWEST + "  exclude: ['ok', '[z-a]']\n", 8, "'[z", "spec.exclude[1]", "invalid character class range: z-a"),
        (NEWEST + "  exclude: '^x'\n", 8, "'^x", "spec.exclude", "valid list"),
        (NEWEST + "  interval: 5\n", 8, "5", "spec.interval", "valid string"),
        (NEWEST + "  interval: 5 minutes\n", 8, "5 min", "spec.interval", "invalid duration"),
        (NEWEST + "  interval: 0s\n", 8, "0s", "spec.interval", "must be positive"),
        (NEWEST + "  platform: amd64\n", 8, "amd64", "spec.platform", "not a platform"),
        (NEWEST + "  digestReflectionPolicy: Sometimes\n", 8, "Sometimes", "spec.digestReflectionPolicy", "'Never'"),
        (NEWEST + "  credentials: ghcr\n", 8, "ghcr", "spec.credentials", "valid dictionary"),
        (NEWEST + "  markerless: true\n", 8, "markerless", "spec.markerless", "did you mean 'markerLess'?"),
        (NEWEST + "status: {}\n", 8, "status", "status", "unknown field 'status'"),
    ],
)
def test_native_errors(tmp_path: Path, *, body: str, line: int, at: str, field: str, message: str) -> None:
    text = NATIVE_HEAD + body
    write(tmp_path, "apps/p.yaml", text)
    ps = load_policies(tmp_path)
    assert ps.policies == ()
    assert len(ps.errors) == 1, ps.errors
    err = ps.errors[0]
    col = column(text, line, at)
    assert (err.path, err.line, err.column, err.field) == ("apps/p.yaml", line, col, field)
    assert message in err.reason
    assert str(err).startswith(f"apps/p.yaml:{line}:{col}: [{field}] ")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("nginx:1.25", "without a tag or digest"),
        ("ghcr.io/Example/App", "lower case"),
        ("ghcr.io/example/app@sha256:" + "a" * 64, "without a tag or digest"),
        ("", "empty"),
    ],
)
def test_invalid_image(tmp_path: Path, image: str, message: str) -> None:
    text = NATIVE_HEAD.replace("ghcr.io/example/app", f"'{image}'") + "  policy: {newestBuild: {}}\n"
    write(tmp_path, "p.yaml", text)
    (err,) = load_policies(tmp_path).errors
    assert (err.line, err.column, err.field) == (6, 10, "spec.image")
    assert message in err.reason


@pytest.mark.parametrize(
    ("name", "namespace", "field"),
    [("Bad_Name", None, "metadata.name"), ("ok", "Not_OK", "metadata.namespace"), ("a:b", None, "metadata.name")],
)
def test_invalid_names(tmp_path: Path, name: str, namespace: str | None, field: str) -> None:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    text = NATIVE_HEAD.replace("  name: app", f"  name: '{name}'{ns}") + "  policy: {newestBuild: {}}\n"
    write(tmp_path, "p.yaml", text)
    (err,) = load_policies(tmp_path).errors
    assert err.field == field


FLUX_REPO = """\
apiVersion: image.toolkit.fluxcd.io/{version}
kind: ImageRepository
metadata:
  name: app
  namespace: apps
spec:
  image: ghcr.io/example/app
  interval: 5m
"""
FLUX_POLICY = """\
apiVersion: image.toolkit.fluxcd.io/{version}
kind: ImagePolicy
metadata:
  name: app
  namespace: apps
spec:
  imageRepositoryRef:
    name: app
  policy:
    semver:
      range: 1.x
"""


@pytest.mark.parametrize("version", ["v1beta2", "v1"])
@pytest.mark.parametrize(
    ("which", "extra", "line", "at", "field", "message"),
    [
        ("repo", "  provider: oracle\n", 9, "oracle", "spec.provider", "'generic'"),
        ("repo", "  exclusionList: ['(?<=a)']\n", 9, "'(", "spec.exclusionList[0]", "look-around"),
        ("repo", "  timeout: forever\n", 9, "forever", "spec.timeout", "invalid duration"),
        ("repo", "  secretRef: {nam: x}\n", 9, "nam", "spec.secretRef.nam", "did you mean 'name'?"),
        (
            "repo",
            "  accessFrom: {namespaceSelectors: [{matchLabel: {}}]}\n",
            9,
            "matchLabel",
            "spec.accessFrom.namespaceSelectors[0].matchLabel",
            "did you mean 'matchLabels'?",
        ),
        ("repo", "  scanInterval: 5m\n", 9, "scanInterval", "spec.scanInterval", "unknown field 'scanInterval'"),
        (
            "repo",
            "  exclusionList: [" + ", ".join(["a"] * 26) + "]\n",
            9,
            "exclusionList",
            "spec.exclusionList",
            "at most 25",
        ),
        ("policy", "  filterTags: {pattern: 'x', extract: '$v'}\n", 12, "'$v", "spec.filterTags.extract", "group 'v'"),
        ("policy", "  interval: 5m\n", 12, "5m", "spec.interval", "only accepted when"),
        ("policy", "  digestReflectionPolicy: Always\n", 6, "spec", "spec", "must be set when"),
        ("policy", "  policy2: {}\n", 12, "policy2", "spec.policy2", "unknown field"),
    ],
)
def test_flux_errors(
    tmp_path: Path, *, version: str, which: str, extra: str, line: int, at: str, field: str, message: str
) -> None:
    repo, policy = FLUX_REPO.format(version=version), FLUX_POLICY.format(version=version)
    if which == "repo":
        repo += extra
    else:
        policy += extra
    write(tmp_path, "repo.yaml", repo)
    write(tmp_path, "policy.yaml", policy)
    ps = load_policies(tmp_path)
    errors = [e for e in ps.errors if e.path == f"{which}.yaml"]
    assert len(errors) == 1, ps.errors
    err = errors[0]
    assert (err.line, err.column, err.field) == (line, column(repo if which == "repo" else policy, line, at), field)
    assert message in err.reason


def test_unknown_field_that_is_no_misspelling_keeps_the_missing_error(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", NATIVE_HEAD + "  policy: {semver: {foo: 1}}\n")
    errors = load_policies(tmp_path).errors
    assert [(e.field, e.reason.split(";")[0]) for e in errors] == [
        ("spec.policy.semver.range", "missing required field 'range'"),
        ("spec.policy.semver.foo", "unknown field 'foo'"),
    ]
    assert errors[1].reason.endswith("fields allowed here: range, allowPrerelease, strict")


def test_flux_v1beta2_policy_has_no_suspend(tmp_path: Path) -> None:
    write(tmp_path, "repo.yaml", FLUX_REPO.format(version="v1beta2"))
    write(tmp_path, "policy.yaml", FLUX_POLICY.format(version="v1beta2") + "  suspend: true\n")
    (err,) = load_policies(tmp_path).errors
    assert err.field == "spec.suspend" and "unknown field" in err.reason


def test_flux_semver_range_error_has_field_path(tmp_path: Path) -> None:
    write(tmp_path, "repo.yaml", FLUX_REPO.format(version="v1"))
    write(tmp_path, "policy.yaml", FLUX_POLICY.format(version="v1").replace("1.x", "'>=1.2 ~'"))
    (err,) = load_policies(tmp_path).errors
    assert (err.path, err.line, err.column, err.field) == ("policy.yaml", 11, 14, "spec.policy.semver.range")


def test_missing_image_repository(tmp_path: Path) -> None:
    write(tmp_path, "policy.yaml", FLUX_POLICY.format(version="v1"))
    ps = load_policies(tmp_path)
    (err,) = ps.errors
    assert (err.line, err.column, err.field) == (8, 11, "spec.imageRepositoryRef.name")
    assert "ImageRepository apps/app" in err.reason
    assert ps.policies == ()


def test_repository_in_other_namespace_is_not_found_implicitly(tmp_path: Path) -> None:
    write(tmp_path, "repo.yaml", FLUX_REPO.format(version="v1").replace("namespace: apps", "namespace: other"))
    write(tmp_path, "policy.yaml", FLUX_POLICY.format(version="v1"))
    (err,) = load_policies(tmp_path).errors
    assert "apps/app" in err.reason


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2", "v1beta1"])
def test_old_flux_versions_are_reported(tmp_path: Path, version: str) -> None:
    write(tmp_path, "policy.yaml", FLUX_POLICY.format(version=version))
    (err,) = load_policies(tmp_path).errors
    assert (err.line, err.field) == (1, "apiVersion")
    assert "not supported" in err.reason and "v1beta2" in err.reason


def test_unknown_native_kind_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "apiVersion: automator.dev/v1alpha1\nkind: ImageRepository\nmetadata: {name: x}\n")
    (err,) = load_policies(tmp_path).errors
    assert "not a known kind" in err.reason


def test_other_documents_and_vendors_are_ignored(tmp_path: Path) -> None:
    write(
        tmp_path,
        "mixed.yaml",
        """
        apiVersion: portieris.cloud.ibm.com/v1
        kind: ImagePolicy
        metadata: {name: default}
        spec: {repositories: [{name: "*"}]}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: notes}
        data: {text: "ImagePolicy ImageRepository"}
        ---
        apiVersion: v1
        kind: ConfigMap
        data: {broken: [ImagePolicy
        ---
        - just
        - a list ImagePolicy
        ---
        """,
    )
    ps = load_policies(tmp_path)
    assert (ps.policies, ps.errors) == ((), ())


def test_broken_document_does_not_hide_the_others(tmp_path: Path) -> None:
    good = NATIVE_HEAD + "  policy: {newestBuild: {}}\n"
    write(
        tmp_path,
        "multi.yaml",
        good.replace("name: app", "name: one")
        + "---\n"
        + "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: [two\n"
        + "---\n"
        + good.replace("name: app", "name: three")
        + "---\n"
        + (NATIVE_HEAD + "  policy: {semver: {range: nope}}\n").replace("name: app", "name: four"),
    )
    write(tmp_path, "other.yaml", good.replace("name: app", "name: five"))
    write(tmp_path, "bad.yaml", "kind: ImagePolicy\napiVersion: automator.dev/v1alpha1\n  bad: indent: here\n")
    ps = load_policies(tmp_path)
    assert sorted(ps.names) == ["five", "one", "three"]
    assert [(e.path, e.line) for e in ps.errors] == [("bad.yaml", 3), ("multi.yaml", 11), ("multi.yaml", 27)]
    assert "YAML syntax error" in ps.errors[0].reason
    assert "YAML syntax error" in ps.errors[1].reason
    assert ps.errors[2].field == "spec.policy.semver.range"


def test_duplicate_yaml_keys_are_syntax_errors(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", NATIVE_HEAD + "  policy: {newestBuild: {}}\n  image: nginx\n")
    (err,) = load_policies(tmp_path).errors
    assert err.line == 8 and "duplicate key" in err.reason


def test_duplicate_names_report_both_locations(tmp_path: Path) -> None:
    good = NATIVE_HEAD + "  policy: {newestBuild: {}}\n"
    write(tmp_path, "a.yaml", good)
    write(tmp_path, "b/c.yaml", "# comment\n" + good)
    write(tmp_path, "d.yaml", good.replace("name: app", "name: other"))
    ps = load_policies(tmp_path)
    assert ps.names == ("other",)
    first, second = ps.errors
    assert (first.path, first.line, first.field) == ("a.yaml", 4, "metadata.name")
    assert (second.path, second.line) == ("b/c.yaml", 5)
    assert "b/c.yaml:5" in first.reason and "a.yaml:4" in second.reason


def test_native_and_flux_names_collide(tmp_path: Path) -> None:
    write(tmp_path, "repo.yaml", FLUX_REPO.format(version="v1"))
    write(tmp_path, "policy.yaml", FLUX_POLICY.format(version="v1"))
    write(
        tmp_path,
        "native.yaml",
        NATIVE_HEAD.replace("name: app", "name: app\n  namespace: apps") + "  policy: {newestBuild: {}}\n",
    )
    ps = load_policies(tmp_path)
    assert ps.policies == ()
    assert {e.path for e in ps.errors} == {"policy.yaml", "native.yaml"}


def test_duplicate_image_repositories(tmp_path: Path) -> None:
    write(tmp_path, "repo.yaml", FLUX_REPO.format(version="v1"))
    write(tmp_path, "repo2.yaml", FLUX_REPO.format(version="v1beta2"))
    write(tmp_path, "policy.yaml", FLUX_POLICY.format(version="v1"))
    ps = load_policies(tmp_path)
    assert ps.policies == ()
    assert sorted((e.path, e.field) for e in ps.errors) == [
        ("policy.yaml", "spec.imageRepositoryRef.name"),
        ("repo.yaml", "metadata.name"),
        ("repo2.yaml", "metadata.name"),
    ]


def test_walk_skips_git_hidden_non_yaml_and_symlinks(tmp_path: Path) -> None:
    good = NATIVE_HEAD + "  policy: {newestBuild: {}}\n"
    write(tmp_path, "ok.yml", good)
    write(tmp_path, ".git/p.yaml", good.replace("name: app", "name: git"))
    write(tmp_path, ".hidden/p.yaml", good.replace("name: app", "name: hidden"))
    write(tmp_path, "a/.p.yaml", good.replace("name: app", "name: dotfile"))
    write(tmp_path, "README.md", good.replace("name: app", "name: readme"))
    write(tmp_path, "p.json", good.replace("name: app", "name: json"))
    outside = write(tmp_path.parent / (tmp_path.name + "-outside"), "x.yaml", good.replace("name: app", "name: link"))
    os.symlink(outside, tmp_path / "link.yaml")
    ps = load_policies(tmp_path)
    assert (ps.names, ps.errors) == (("app",), ())


def test_paths_limit_the_walk(tmp_path: Path) -> None:
    good = NATIVE_HEAD + "  policy: {newestBuild: {}}\n"
    write(tmp_path, "a/p.yaml", good.replace("name: app", "name: a"))
    write(tmp_path, "b/p.yaml", good.replace("name: app", "name: b"))
    write(tmp_path, "c.yaml", good.replace("name: app", "name: c"))
    assert load_policies(tmp_path, [Path("a"), Path("c.yaml")]).names == ("a", "c")
    assert load_policies(tmp_path, [tmp_path / "b"]).names == ("b",)
    assert load_policies(tmp_path, []).names == ()


def test_missing_root_or_path_is_an_error(tmp_path: Path) -> None:
    (err,) = load_policies(tmp_path / "nope").errors
    assert (err.path, err.line) == (".", None) and "no such directory" in err.reason
    (err,) = load_policies(tmp_path, [Path("gone.yaml")]).errors
    assert err.path == "gone.yaml" and "no such file or directory" in err.reason


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"kind: ImagePolicy # caf\xe9\n")
    (err,) = load_policies(tmp_path).errors
    assert (err.path, err.line) == ("latin1.yaml", None)
    assert "UTF-8" in err.reason


def test_errors_are_policy_file_errors_and_sorted(tmp_path: Path) -> None:
    write(tmp_path, "z.yaml", NATIVE_HEAD + "  policy: {}\n")
    write(tmp_path, "a.yaml", NATIVE_HEAD + "  policy: {}\n  bogus: 1\n")
    ps = load_policies(tmp_path)
    assert all(isinstance(e, PolicyFileError) for e in ps.errors)
    assert [(e.path, e.line) for e in ps.errors] == [("a.yaml", 7), ("a.yaml", 8), ("z.yaml", 7)]
    assert not ps.ok


def test_a_policy_file_over_the_size_cap_is_refused_by_name_without_loading_it(tmp_path: Path) -> None:
    from automator.policy import loader

    one = "apiVersion: automator.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: p{i}\n"
    one += "spec:\n  image: ghcr.io/o/a\n  policy:\n    semver:\n      range: '>=1'\n---\n"
    big = tmp_path / "big.yaml"
    with big.open("w") as f:
        i = 0
        while f.tell() <= loader.MAX_FILE_BYTES:
            f.write(one.format(i=i))
            i += 1
    write(tmp_path, "small.yaml", one.format(i="small"))
    os.mkfifo(tmp_path / "pipe.yaml")  # opening it would block the loader forever
    # a CRD bundle names the kinds (indented) and is simply none of ours, however large
    crd = "kind: CustomResourceDefinition\nspec:\n  names:\n    kind: ImagePolicy\n" + "# padding\n" * 500_000
    write(tmp_path, "crds.yaml", crd)
    result = load_policies(tmp_path)
    assert [p.name for p in result.policies] == ["psmall"]
    messages = sorted(str(e) for e in result.errors)
    assert len(messages) == 2, messages
    assert messages[0].startswith("big.yaml: file is ") and "-byte limit for a policy file" in messages[0]
    assert messages[1].startswith("pipe.yaml: not a regular file")
