"""Flux ImageUpdateAutomations as the loader reads them: every field, and every refusal with file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from automator.errors import PolicyFileError
from automator.policy import load_policies
from automator.policy.automation import Requirement, Selector, UpdateAutomation, normalise_path
from automator.policy.model import Policy, SourceLocation
from automator.refs import parse_reference

FULL_V1 = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m
  url: https://github.com/example/fleet
  ref:
    branch: main
  secretRef:
    name: flux-system
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata:
  name: staging
  namespace: flux-system
spec:
  interval: 30m
  sourceRef:
    kind: GitRepository
    name: flux-system
  git:
    checkout:
      ref:
        branch: main
    commit:
      author:
        email: fluxcdbot@users.noreply.github.com
        name: fluxcdbot
      signingKey:
        type: ssh
        secretRef:
          name: signing-key
      messageTemplate: |
        Automated image update
        {{ .Values.cluster }}
      messageTemplateValues:
        cluster: staging
    push:
      branch: image-updates
      refspec: refs/heads/image-updates:refs/heads/review
      options:
        merge_request.create: ""
        merge_request.target: main
  update:
    path: ./apps/staging
    strategy: Setters
  policySelector:
    matchLabels:
      env: staging
    matchExpressions:
      - {key: tier, operator: NotIn, values: [experimental]}
  suspend: false
"""


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def automation(text: str, tmp_path: Path) -> tuple[UpdateAutomation | None, tuple[PolicyFileError, ...]]:
    write(tmp_path, "clusters/auto.yaml", text)
    ps = load_policies(tmp_path)
    return (ps.automations[0] if ps.automations else None), ps.errors


def test_every_field_of_a_v1_automation_is_read(tmp_path: Path) -> None:
    auto, errors = automation(FULL_V1, tmp_path)
    assert errors == ()
    assert auto == UpdateAutomation(
        name="flux-system/staging",
        namespace="flux-system",
        source=SourceLocation("clusters/auto.yaml", 17, 9),
        source_ref=("flux-system", "flux-system"),
        author_name="fluxcdbot",
        author_email="fluxcdbot@users.noreply.github.com",
        interval_seconds=1800.0,
        path="apps/staging",
        checkout_branch="main",
        push_branch="image-updates",
        refspec="refs/heads/image-updates:refs/heads/review",
        push_options=(("merge_request.create", ""), ("merge_request.target", "main")),
        signing=auto.signing if auto else None,
        message_template="Automated image update\n{{ .Values.cluster }}\n",
        template_values=(("cluster", "staging"),),
        selector=Selector((("env", "staging"),), (Requirement("tier", "NotIn", ("experimental",)),)),
        suspend=False,
        origin="flux/v1",
        git_url="https://github.com/example/fleet",
    )
    assert auto is not None and auto.signing is not None
    assert (auto.signing.type, auto.signing.secret) == ("ssh", "signing-key")


def test_the_checkout_branch_defaults_to_the_git_repositorys(tmp_path: Path) -> None:
    text = FULL_V1.replace("    checkout:\n      ref:\n        branch: main\n", "").replace(
        "branch: main", "branch: trunk"
    )
    auto, errors = automation(text, tmp_path)
    assert errors == ()
    assert auto is not None and auto.checkout_branch == "trunk"


def test_v1beta2_loads_and_has_no_signing_key_type(tmp_path: Path) -> None:
    text = FULL_V1.replace("image.toolkit.fluxcd.io/v1\n", "image.toolkit.fluxcd.io/v1beta2\n")
    auto, errors = automation(text, tmp_path)
    assert auto is None
    assert [(e.line, e.field) for e in errors] == [(33, "spec.git.commit.signingKey.type")]
    auto, errors = automation(text.replace("        type: ssh\n", ""), tmp_path)
    assert errors == ()
    assert auto is not None and auto.origin == "flux/v1beta2"
    assert auto.signing is not None and auto.signing.type == "gpg"


def test_v1beta1_gets_the_migrate_error(tmp_path: Path) -> None:
    auto, errors = automation(
        FULL_V1.replace("image.toolkit.fluxcd.io/v1\n", "image.toolkit.fluxcd.io/v1beta1\n"), tmp_path
    )
    assert auto is None
    [error] = errors
    assert (error.path, error.line, error.field) == ("clusters/auto.yaml", 14, "apiVersion")
    assert "migrate it to image.toolkit.fluxcd.io/v1beta2 or image.toolkit.fluxcd.io/v1" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("strategy: Setters", "strategy: Replace", 49, "spec.update.strategy", "the only strategy is 'Setters'"),
        ("path: ./apps/staging", "path: ../elsewhere", 48, "spec.update.path", "leaves the repository"),
        ("path: ./apps/staging", "path: /etc", 48, "spec.update.path", "leaves the repository"),
        (
            "        branch: main\n    commit",
            "        tag: v1.0.0\n    commit",
            27,
            "spec.git.checkout.ref.tag",
            "branches only",
        ),
        ("        name: fluxcdbot\n", "", 29, "spec.git.commit.author", "author without a name"),
        (
            "refspec: refs/heads/image-updates:",
            "refspec: refs/heads/other:",
            43,
            "spec.git.push.refspec",
            "commit is made on",
        ),
        (
            "refspec: refs/heads/image-updates:refs/heads/review",
            "refspec: image-updates",
            43,
            "spec.git.push.refspec",
            "is not <branch>",
        ),
        ("kind: GitRepository\n    name", "kind: OCIRepository\n    name", 22, "spec.sourceRef.kind", "not supported"),
        (
            "operator: NotIn, values: [experimental]",
            "operator: In",
            54,
            "spec.policySelector.matchExpressions[0]",
            "non-empty values",
        ),
        ("interval: 30m", "interval: soon", 20, "spec.interval", "invalid duration 'soon'"),
        ("  suspend: false\n", "  suspend: false\n  extra: 1\n", 56, "spec.extra", "unknown field 'extra'"),
        ("branch: image-updates\n", "branch: 'bad branch'\n", 42, "spec.git.push.branch", "not a valid branch"),
    ],
)
def test_what_cannot_be_honoured_fails_at_load(
    tmp_path: Path, *, old: str, new: str, line: int, field: str, words: str
) -> None:
    assert old in FULL_V1
    auto, errors = automation(FULL_V1.replace(old, new, 1), tmp_path)
    assert auto is None
    assert [(e.path, e.line, e.field) for e in errors] == [("clusters/auto.yaml", line, field)], errors
    assert words in str(errors[0])


def test_update_is_required_as_flux_stalls_without_it(tmp_path: Path) -> None:
    text = FULL_V1.replace("  update:\n    path: ./apps/staging\n    strategy: Setters\n", "")
    auto, errors = automation(text, tmp_path)
    assert auto is None
    assert [(e.line, e.field) for e in errors] == [(19, "spec")]
    assert "spec.update is required" in str(errors[0])


def test_a_git_repository_checking_out_a_tag_needs_a_checkout_branch(tmp_path: Path) -> None:
    text = FULL_V1.replace("    checkout:\n      ref:\n        branch: main\n", "").replace(
        "    branch: main", "    tag: v1"
    )
    auto, errors = automation(text, tmp_path)
    assert auto is None
    assert [(e.line, e.field) for e in errors] == [(23, "spec.sourceRef.name")]
    assert "commits on branches only" in str(errors[0])


def test_two_automations_with_one_name_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", FULL_V1)
    write(tmp_path, "b.yaml", FULL_V1.split("---\n", 1)[1])
    ps = load_policies(tmp_path)
    assert len(ps.automations) == 1
    assert [(e.path, e.line) for e in ps.errors] == [("b.yaml", 4)]
    assert "defined more than once (also at a.yaml:17)" in str(ps.errors[0])


def policy(name: str, labels: dict[str, str] | None = None) -> Policy:
    from automator.policy.model import SemverChoice

    return Policy(
        name=name,
        image=parse_reference("ghcr.io/example/app"),
        choice=SemverChoice(">=1.0.0"),
        source=SourceLocation("p.yaml", 1),
        labels=tuple(sorted((labels or {}).items())),
    )


def test_selects_policies_of_its_namespace_matching_its_selector(tmp_path: Path) -> None:
    auto, _ = automation(FULL_V1, tmp_path)
    assert auto is not None
    assert auto.selects(policy("flux-system:a", {"env": "staging"}))
    assert auto.selects(policy("flux-system:a", {"env": "staging", "tier": "web"}))
    assert not auto.selects(policy("flux-system:a", {"env": "staging", "tier": "experimental"}))
    assert not auto.selects(policy("flux-system:a", {"env": "production"}))
    assert not auto.selects(policy("apps:a", {"env": "staging"}))  # another namespace
    assert not auto.selects(policy("a", {"env": "staging"}))  # a native policy without a namespace


@pytest.mark.parametrize(
    ("op", "values", "labels", "expected"),
    [
        ("In", ("a", "b"), {"k": "a"}, True),
        ("In", ("a",), {}, False),
        ("NotIn", ("a",), {}, True),
        ("NotIn", ("a",), {"k": "a"}, False),
        ("Exists", (), {"k": ""}, True),
        ("Exists", (), {}, False),
        ("DoesNotExist", (), {}, True),
        ("DoesNotExist", (), {"k": "x"}, False),
    ],
)
def test_label_selector_operators_as_kubernetes(
    op: str, values: tuple[str, ...], labels: dict[str, str], expected: bool
) -> None:
    assert Requirement("k", op, values).matches(labels) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (None, "."),
        ("", "."),
        ("./", "."),
        ("./apps/staging", "apps/staging"),
        ("apps//x/", "apps/x"),
        ("apps/../x", "x"),
        ("..", None),
        ("../x", None),
        ("/abs", None),
        ("a/../../b", None),
    ],
)
def test_update_paths_stay_inside_the_repository(path: str | None, expected: str | None) -> None:
    assert normalise_path(path) == expected


def test_owns_files_under_its_path_only(tmp_path: Path) -> None:
    auto, _ = automation(FULL_V1, tmp_path)
    assert auto is not None
    assert auto.owns("apps/staging/deploy.yaml")
    assert auto.owns("apps/staging/sub/x.yaml")
    assert not auto.owns("apps/staging-2/x.yaml")
    assert not auto.owns("apps/base/deploy.yaml")


@pytest.mark.parametrize(
    ("template", "line", "column", "words"),
    [
        # a block scalar: the template's line 2 is the file's line 38
        ('      messageTemplate: |\n        Automated image update\n        {{ template "x" }}\n', 38, 12, "template"),
        ("      messageTemplate: 'update {{ .Values.cluster '\n", 36, 32, "unclosed action"),
    ],
)
def test_a_message_template_that_cannot_render_fails_at_its_line(
    tmp_path: Path, template: str, line: int, column: int, words: str
) -> None:
    old = "      messageTemplate: |\n        Automated image update\n        {{ .Values.cluster }}\n"
    assert old in FULL_V1
    auto, errors = automation(FULL_V1.replace(old, template), tmp_path)
    assert auto is None
    [error] = errors
    assert (error.path, error.line, error.field) == ("clusters/auto.yaml", line, "spec.git.commit.messageTemplate")
    assert error.column == column, error
    assert words in str(error)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            "{{ range .Updated.Images }}{{ . }}{{ end }}",
            "template uses removed '.Updated' field. Please use '.Changed'",
        ),
        ("{{ .Changed.ImageResult.Files }}", "template uses removed '.Changed.ImageResult' field"),
        ("{{ .Changed.Chnages }}", "can't evaluate field Chnages"),
    ],
)
def test_a_field_flux_does_not_have_fails_at_load(tmp_path: Path, body: str, words: str) -> None:
    old = "{{ .Values.cluster }}"
    auto, errors = automation(FULL_V1.replace(old, body), tmp_path)
    assert auto is None
    [error] = errors
    assert (error.line, error.field) == (38, "spec.git.commit.messageTemplate")
    assert words in str(error)
