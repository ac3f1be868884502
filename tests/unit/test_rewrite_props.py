"""Property: for generated manifests, only the targeted scalars' bytes change, and the data
read back equals the expected data.

The generator writes Deployments as text itself (random indentation, sequence style, flow or
block containers, quoting, comments, blank lines, CRLF, final newline or not), remembering the
exact span of every scalar a policy should rewrite and what it should become.  The expected
output is the original with exactly those spans replaced; anything else that moved is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from automator.policy.model import Policy, SemverChoice, SourceLocation
from automator.refs import parse_reference
from automator.update import Decision, Decisions, rewrite_text


def _decision(name: str, image: str, chosen: str, marker_less: bool) -> Decision:
    policy = Policy(
        name=name,
        image=parse_reference(image),
        choice=SemverChoice(">=0"),
        source=SourceLocation("policies.yaml", 1),
        marker_less=marker_less,
    )
    return Decision(policy, parse_reference(chosen))


DECISIONS = Decisions.of(
    [
        _decision("flux-system:app", "ghcr.io/org/app", "ghcr.io/org/app:9.9.9", False),
        _decision("nginx", "docker.io/library/nginx", "nginx:1.99.0", True),
    ]
)
# (spelling, policy name or None) - nginx is marker-less, so it moves even without a marker
REPOS = [
    ("ghcr.io/org/app", "flux-system:app"),
    ("nginx", "nginx"),
    ("docker.io/library/nginx", "nginx"),
    ("library/nginx", "nginx"),
    ("quay.io/other/thing", None),
]
NEW_TAG = {"flux-system:app": "9.9.9", "nginx": "1.99.0"}
TAGS = ["1.0.0", "v2.3.4", "2024.10.01", "latest", "1.2.3-rc.1"]
MARKERS = ["none", "full", "unknown", "full-other"]


@dataclass
class Container:
    repo: int
    tag: str
    style: str  # "", "'", '"'
    marker: str
    flow: bool
    tag_env: bool  # an env var carrying just the tag, with a ':tag' marker
    comment: bool


@dataclass
class Doc:
    name: str
    containers: list[Container]
    indent: int
    indent_seq: bool
    blank_lines: bool


@dataclass
class Emitter:
    newline: str
    parts: list[str] = field(default_factory=list)
    length: int = 0
    edits: list[tuple[int, int, str]] = field(default_factory=list)  # start, end, replacement

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def line(self, text: str = "") -> None:
        self.write(text + self.newline)

    def scalar(self, value: str, style: str, new: str | None) -> None:
        start = self.length
        self.write(f"{style}{value}{style}")
        if new is not None and new != value:
            self.edits.append((start, self.length, f"{style}{new}{style}"))


def emit(docs: list[Doc], newline: str, final_newline: bool) -> tuple[str, str, list[dict[str, Any]]]:
    out = Emitter(newline)
    data: list[dict[str, Any]] = []
    for d, doc in enumerate(docs):
        if d:
            out.line("---")
        i = " " * doc.indent
        out.line("apiVersion: apps/v1")
        out.line("kind: Deployment")
        out.line("metadata:")
        out.line(f"{i}name: {doc.name}")
        if doc.blank_lines:
            out.line()
        out.line("spec:")
        out.line(f"{i}template:")
        out.line(f"{i * 2}spec:")
        out.line(f"{i * 3}containers:  # the workload")
        seq = i * 3 + (i if doc.indent_seq else "")
        containers: list[dict[str, Any]] = []
        for n, c in enumerate(doc.containers):
            spelled, policy = REPOS[c.repo]
            image = f"{spelled}:{c.tag}"
            new_image: str | None = None
            marker = ""
            if c.marker == "full":
                marker = ' # {"$imagepolicy": "flux-system:app"}'
                new_image = (spelled if policy == "flux-system:app" else "ghcr.io/org/app") + ":9.9.9"
            elif c.marker == "full-other":
                marker = ' # {"$imagepolicy": "nginx"}'
                new_image = (spelled if policy == "nginx" else "nginx") + ":1.99.0"
            elif c.marker == "unknown":
                marker = ' # {"$imagepolicy": "flux-system:nope"}'
            elif policy == "nginx":
                new_image = f"{spelled}:1.99.0"  # marker-less
            container: dict[str, Any] = {"name": f"c{n}", "image": new_image or image}
            if c.flow:
                out.write(f"{seq}- {{name: c{n}, image: ")
                out.scalar(image, c.style, new_image)
                out.write("}")
                out.line(marker)
            else:
                out.write(f"{seq}- name: c{n}")
                out.line("   # a comment" if c.comment else "")
                out.write(f"{seq}  image: ")
                out.scalar(image, c.style, new_image)
                out.line(marker)
            if c.tag_env:
                body = seq + "  "
                if c.flow:
                    # a flow container cannot take a block env list: add a sibling container
                    out.line(f"{seq}- name: env{n}")
                    env_holder: dict[str, Any] = {"name": f"env{n}"}
                    containers.append(container)
                    container = env_holder
                out.line(f"{body}env:")
                out.write(f"{body}- name: TAG{n}{newline}{body}  value: ")
                out.scalar(c.tag, '"', "9.9.9")
                out.line(' # {"$imagepolicy": "flux-system:app:tag"}')
                container["env"] = [{"name": f"TAG{n}", "value": "9.9.9"}]
            containers.append(container)
        data.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": doc.name},
                "spec": {"template": {"spec": {"containers": containers}}},
            }
        )
    text = "".join(out.parts)
    if not final_newline:
        text = text.removesuffix(newline)
    expected = text
    for start, end, replacement in sorted(out.edits, reverse=True):
        expected = expected[:start] + replacement + expected[end:]
    return text, expected, data


containers = st.builds(
    Container,
    repo=st.integers(0, len(REPOS) - 1),
    tag=st.sampled_from(TAGS),
    style=st.sampled_from(["", "'", '"']),
    marker=st.sampled_from(MARKERS),
    flow=st.booleans(),
    tag_env=st.booleans(),
    comment=st.booleans(),
)
docs = st.builds(
    Doc,
    name=st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True),
    containers=st.lists(containers, min_size=1, max_size=4),
    indent=st.sampled_from([2, 4]),
    indent_seq=st.booleans(),
    blank_lines=st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(docs, min_size=1, max_size=3), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_only_targeted_scalars_change(documents: list[Doc], newline: str, final_newline: bool) -> None:
    text, expected_text, expected_data = emit(documents, newline, final_newline)

    result = rewrite_text(text, "deploy.yaml", DECISIONS)

    assert result.text == expected_text
    assert list(YAML(typ="safe", pure=True).load_all(result.text)) == expected_data
    assert result.changed == (expected_text != text)
    again = rewrite_text(result.text, "deploy.yaml", DECISIONS)
    assert not again.changed
