"""Setter markers and policy references, as Flux's kyaml reads them."""

from __future__ import annotations

import pytest

from automator.policy.model import DigestMode, Policy, SemverChoice, SourceLocation, TagChoice
from automator.refs import parse_reference
from automator.update import Decision, Decisions, parse_marker, rewrite_text


def decision(name: str, image: str, chosen: str, **kw: object) -> Decision:
    policy = Policy(
        name=name,
        image=parse_reference(image),
        choice=SemverChoice(">=0"),
        source=SourceLocation("policies.yaml", 1),
        **kw,  # type: ignore[arg-type]
    )
    return Decision(policy, parse_reference(chosen))


@pytest.mark.parametrize(
    ("comment", "ref"),
    [
        ('# {"$imagepolicy": "flux-system:app"}', "flux-system:app"),
        ('#{"$imagepolicy":"flux-system:app"}', "flux-system:app"),
        ('## {"$imagepolicy": "app:tag"}', "app:tag"),
        ('#\t{ "$imagepolicy" :\t"ns:app:digest" }\t', "ns:app:digest"),
        ('# {"$imagepolicy": "ns:app", "other": "x"}', "ns:app"),
        ('# {"$imagepolicy": ""}', None),
        ('# {"$imagepolicy": "ns:app", "n": 1}', None),  # kyaml wants map[string]string
        ('# {"$imagepolicy": "ns:app"} and words', None),
        ("# {'$imagepolicy': 'ns:app'}", None),
        ('# {"$ref": "#/definitions/io.k8s.cli.setters.x"}', None),
        ("# just a comment", None),
        ('# ["$imagepolicy"]', None),
    ],
)
def test_parse_marker(comment: str, ref: str | None) -> None:
    assert parse_marker(comment) == ref


@pytest.fixture
def decisions() -> Decisions:
    return Decisions.of(
        [
            decision("flux-system:app", "ghcr.io/org/app", "ghcr.io/org/app:2.0.0"),
            decision("staging:app", "ghcr.io/org/app", "ghcr.io/org/app:2.1.0-rc.1"),
            decision("flux-system:db", "postgres", "postgres:16.4"),
            decision("plain", "nginx", "nginx:1.27.0"),
            decision("tag", "ghcr.io/org/tag", "ghcr.io/org/tag:1.0.0"),
        ]
    )


@pytest.mark.parametrize(
    ("ref", "policy", "setter"),
    [
        ("flux-system:app", "flux-system:app", "image"),
        ("flux-system:app:tag", "flux-system:app", "tag"),
        ("flux-system:app:name", "flux-system:app", "name"),
        ("flux-system:app:digest", "flux-system:app", "digest"),
        ("db", "flux-system:db", "image"),  # no namespace: the one policy with that short name
        ("db:tag", "flux-system:db", "tag"),
        ("plain", "plain", "image"),
        ("any-namespace:plain", "plain", "image"),  # a policy without namespace matches any
        ("tag", "tag", "image"),  # a policy may be called "tag"
        ("tag:tag", "tag", "tag"),
        ("flux-system:tag", "tag", "image"),
    ],
)
def test_resolve(decisions: Decisions, ref: str, policy: str, setter: str) -> None:
    resolution = decisions.resolve(ref)
    assert resolution.decision is not None, resolution.problem
    assert (resolution.decision.name, resolution.setter) == (policy, setter)


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("app", "ambiguous"),
        ("app:tag", "ambiguous"),
        ("other:db", "unknown policy"),  # namespaced policies only match their namespace
        ("flux-system:missing", "unknown policy"),
        ("flux-system:app:version", "unknown policy"),
    ],
)
def test_resolve_refuses(decisions: Decisions, ref: str, problem: str) -> None:
    resolution = decisions.resolve(ref)
    assert resolution.decision is None
    assert problem in resolution.problem


def test_decision_needs_a_tag() -> None:
    with pytest.raises(ValueError, match="has no tag"):
        decision("p", "nginx", "nginx")


def test_decisions_refuse_duplicate_names() -> None:
    d = decision("p", "nginx", "nginx:1")
    with pytest.raises(ValueError, match="two decisions"):
        Decisions.of([d, d])


def test_from_choices_pairs_by_name_and_drops_empty_choices() -> None:
    a = decision("ns:a", "ghcr.io/org/a", "ghcr.io/org/a:1").policy
    b = decision("ns:b", "ghcr.io/org/b", "ghcr.io/org/b:1").policy
    choices = [
        TagChoice("ns:a", a.image, "1.2.0", "sha256:" + "a" * 64),
        TagChoice("ns:b", b.image, None, reason="nothing qualifies"),
        TagChoice("ns:gone", b.image, "9"),
    ]
    decisions = Decisions.from_choices([a, b], choices)
    assert [d.name for d in decisions] == ["ns:a"]
    assert str(decisions["ns:a"].image) == "ghcr.io/org/a:1.2.0@sha256:" + "a" * 64


DIGEST = "sha256:" + "e" * 64


@pytest.mark.parametrize(
    ("line", "tracks", "expected"),
    [
        # the full setter writes name:tag, plus @digest only when the policy tracks digests
        ('image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "ns:app"}', False, "ghcr.io/org/app:2.0.0"),
        ('image: ghcr.io/org/app:1.0.0 # {"$imagepolicy": "ns:app"}', True, f"ghcr.io/org/app:2.0.0@{DIGEST}"),
        ('tag: 1.0.0 # {"$imagepolicy": "ns:app:tag"}', True, "2.0.0"),
        ('name: ghcr.io/org/old # {"$imagepolicy": "ns:app:name"}', False, "ghcr.io/org/app"),
        ('digest: sha256:00 # {"$imagepolicy": "ns:app:digest"}', False, DIGEST),
        # the file's own spelling of the same repository is kept
        ('image: "{{ .Values.image }}" # {"$imagepolicy": "ns:app"}', False, "ghcr.io/org/app:2.0.0"),
    ],
)
def test_setters(line: str, tracks: bool, expected: str) -> None:
    d = decision(
        "ns:app",
        "ghcr.io/org/app",
        f"ghcr.io/org/app:2.0.0@{DIGEST}",
        digest=DigestMode.ALWAYS if tracks else DigestMode.NEVER,
    )
    result = rewrite_text(line + "\n", "values.yaml", Decisions.of([d]))
    assert [c.new for c in result.changes] == [expected]
    assert result.changes[0].policy == "ns:app"
    assert result.changes[0].line == 1


def test_docker_hub_names_keep_their_short_spelling() -> None:
    d = decision("ns:nginx", "docker.io/library/nginx", "nginx:1.27.0")
    text = (
        'a: nginx:1.25 # {"$imagepolicy": "ns:nginx"}\n'
        'b: docker.io/library/nginx:1.25 # {"$imagepolicy": "ns:nginx"}\n'
        'c: library/nginx # {"$imagepolicy": "ns:nginx:name"}\n'
        'd: bitnami/nginx # {"$imagepolicy": "ns:nginx:name"}\n'
    )
    result = rewrite_text(text, "v.yaml", Decisions.of([d]))
    assert result.text == (
        'a: nginx:1.27.0 # {"$imagepolicy": "ns:nginx"}\n'
        'b: docker.io/library/nginx:1.27.0 # {"$imagepolicy": "ns:nginx"}\n'
        'c: library/nginx # {"$imagepolicy": "ns:nginx:name"}\n'
        'd: nginx # {"$imagepolicy": "ns:nginx:name"}\n'
    )


def test_digest_setter_without_a_digest_is_reported_and_left() -> None:
    d = decision("ns:app", "ghcr.io/org/app", "ghcr.io/org/app:2.0.0")
    text = 'digest: sha256:00 # {"$imagepolicy": "ns:app:digest"}\n'
    result = rewrite_text(text, "v.yaml", Decisions.of([d]))
    assert result.text == text
    assert [str(w) for w in result.warnings] == [
        "v.yaml:1: policy ns:app has no digest for ghcr.io/org/app:2.0.0; ':digest' left as it is"
    ]


@pytest.mark.parametrize(
    "text",
    [
        # a marker on a line of its own (a head comment) is ignored, with a warning
        'containers:\n  # {"$imagepolicy": "ns:app"}\n  - image: ghcr.io/org/app:1\n',
        # after a key with its value on the next line
        'image: # {"$imagepolicy": "ns:app"}\n  ghcr.io/org/app:1\n',
    ],
)
def test_markers_not_after_a_value_are_reported(text: str) -> None:
    d = decision("ns:app", "ghcr.io/org/app", "ghcr.io/org/app:2")
    result = rewrite_text(text, "v.yaml", Decisions.of([d]))
    assert result.text == text
    assert any("not after an inline scalar value" in w.message for w in result.warnings)


def test_marker_on_a_block_scalar_is_reported() -> None:
    d = decision("ns:app", "ghcr.io/org/app", "ghcr.io/org/app:2")
    text = 'image: >- # {"$imagepolicy": "ns:app"}\n  ghcr.io/org/app:1\n'
    result = rewrite_text(text, "v.yaml", Decisions.of([d]))
    assert result.text == text
    assert any("not after an inline scalar value" in w.message for w in result.warnings)


def test_marker_text_inside_a_value_is_data() -> None:
    d = decision("ns:app", "ghcr.io/org/app", "ghcr.io/org/app:2")
    text = 'note: "image: x:1 # {\\"$imagepolicy\\": \\"ns:app\\"}"\nscript: |\n  # {"$imagepolicy": "ns:app"}\n'
    result = rewrite_text(text, "v.yaml", Decisions.of([d]))
    assert result.text == text
    assert result.warnings == ()


@pytest.mark.parametrize(
    "text",
    [
        'image: # {"$imagepolicy": "ns:app"}\nother: 1\n',
        '- # {"$imagepolicy": "ns:app"}\n- b\n',
        'a: {image: } # {"$imagepolicy": "ns:app"}\n',
    ],
)
def test_marker_on_an_empty_value_is_reported_and_left(text: str) -> None:
    d = decision("ns:app", "ghcr.io/org/app", "ghcr.io/org/app:2")
    result = rewrite_text(text, "v.yaml", Decisions.of([d]))
    assert result.text == text
    assert len(result.warnings) == 1
    assert "empty" in result.warnings[0].message or "not after an inline scalar" in result.warnings[0].message


# A marker belongs to the policy it names. When that policy has no decision (refused at load,
# its scan failed, it chose nothing) or its decision is another pull request's, the marker must
# be left alone: falling back to a namespace-less policy of the same short name once pushed
# 5.9.0 -> 7.0.0 where the named policy allowed only <6.
def test_a_marker_naming_a_withheld_policy_is_left_alone_and_says_why() -> None:
    loose = decision("app", "ghcr.io/org/app", "ghcr.io/org/app:7.0.0")
    decisions = Decisions.of([loose], others={"apps:app": "was refused when the policies loaded"})
    text = 'image: ghcr.io/org/app:5.9.0 # {"$imagepolicy": "apps:app"}\n'
    result = rewrite_text(text, "d.yaml", decisions)
    assert result.text == text
    assert [w.message for w in result.warnings] == [
        "policy 'apps:app' was refused when the policies loaded; the marker is left as it is"
    ]
    tag_only = 'tag: 5.9.0 # {"$imagepolicy": "apps:app:tag"}\n'
    assert rewrite_text(tag_only, "d.yaml", decisions).text == tag_only
    assert Decisions.of([loose]).resolve("apps:app").decision is loose  # Flux-style fallback otherwise


def test_a_subset_never_reaches_for_a_policy_it_leaves_out() -> None:
    strict = decision("apps:app", "ghcr.io/org/app", "ghcr.io/org/app:5.9.1")
    loose = decision("app", "ghcr.io/org/app", "ghcr.io/org/app:7.0.0")
    only_loose = Decisions.of([strict, loose]).subset(["app"])
    text = 'image: ghcr.io/org/app:5.9.0 # {"$imagepolicy": "apps:app"}\n'
    result = rewrite_text(text, "d.yaml", only_loose)
    assert result.text == text and result.warnings == ()  # another pull request's business
    assert [d.name for d in only_loose] == ["app"]


def test_a_short_reference_shared_with_a_withheld_policy_is_ambiguous() -> None:
    loose = decision("other:app", "ghcr.io/org/app", "ghcr.io/org/app:7.0.0")
    decisions = Decisions.of([loose], others={"apps:app": "its scan failed: 503"})
    resolution = decisions.resolve("app")
    assert resolution.decision is None
    assert "ambiguous (apps:app, other:app)" in resolution.problem
