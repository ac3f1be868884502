"""Static checks of the Dockerfile and .dockerignore, fast enough for every `make test`.

`make image` builds the image and `make image-test` runs it (tests/image/), but those take
minutes; these tests read the Dockerfile the way the builder would (continuation lines, ARG
defaults, stages, .dockerignore) and check in a second what would otherwise only show up on a
build or in the first pod: files `pip install .` needs that never reach the build context, a user
or writable directories that disagree with the Helm chart, an unpinned base, package or kubectl.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import helm_python as helm
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CHART_DIR = ROOT / "helm" / "automator"


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, each with its instructions (continuations joined)."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction is dropped by the builder
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = args.split()
            image = substitute(words[0], global_args)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif not stages and instruction == "ARG":
            for word in shlex.split(args):
                key, _, default = word.partition("=")
                global_args[key] = default
        else:
            stages[-1].instructions.append((instruction, args.strip()))
    return global_args, stages


def substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables[m.group(1) or m.group(2)], text)


def stage_args(stage: Stage) -> dict[str, str]:
    result = {}
    for arg in stage.args_of("ARG"):
        for word in shlex.split(arg):  # `ARG A B=1 C=""` declares three
            key, _, default = word.partition("=")
            result[key] = default
    return result


def apt_installs(stage: Stage) -> list[str]:
    """The packages (with their `=version`) every `apt-get install` of the stage names."""
    packages: list[str] = []
    for run in stage.args_of("RUN"):
        for command in re.findall(r"apt-get install ([^&;]+)", run):
            packages.extend(w for w in command.split() if not w.startswith("-"))
    return packages


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether the builder leaves `path` out of the context (last matching pattern wins; a match on a
    parent directory counts, as in moby's patternmatcher)."""

    def to_regex(pattern: str) -> re.Pattern[str]:
        out = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out += "(.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                out += ".*"
                i += 2
            elif pattern[i] == "*":
                out += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                out += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out += pattern[i : end + 1]
                i = end + 1
            else:
                out += re.escape(pattern[i])
                i += 1
        return re.compile(out + "$")

    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = to_regex(pattern.lstrip("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


@pytest.fixture(scope="module")
def parsed() -> tuple[dict[str, str], list[Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(parsed: tuple[dict[str, str], list[Stage]]) -> Stage:
    return parsed[1][-1]


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_stage_builds_from_the_debian_base_pinned_by_digest(
    parsed: tuple[dict[str, str], list[Stage]],
) -> None:
    global_args, stages = parsed
    assert [s.name for s in stages] == ["build", "kubectl", None]
    base = global_args["BASE_IMAGE"]
    assert re.fullmatch(r"docker\.io/library/debian:bookworm-slim@sha256:[0-9a-f]{64}", base), base
    for stage in stages:
        assert stage.image == base, stage.name
    # scripts/base-image.sh makes the base locally under the same name, without the digest
    made = re.search(r"^NAME=(\S+)$", (ROOT / "scripts" / "base-image.sh").read_text(), re.M)
    assert made is not None
    assert made.group(1) == base.split("@")[0]


def test_python_is_debians_311_that_the_runtime_lock_is_for(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    build, _, final = parsed[1]
    assert re.search(r"\bpython3=3\.11\.", " ".join(apt_installs(build))), apt_installs(build)
    assert re.search(r"\bpython3=3\.11\.", " ".join(apt_installs(final))), apt_installs(final)
    assert "--python-version 3.11" in (ROOT / "scripts" / "lock.sh").read_text()


def test_every_debian_package_is_pinned_and_alike_in_every_stage(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    pins: dict[str, set[str]] = {}
    for stage in parsed[1]:
        for package in apt_installs(stage):
            name, sep, version = package.partition("=")
            assert sep and version, f"{stage.name or 'final'}: {name} is not pinned to a version"
            pins.setdefault(name, set()).add(version)
    assert pins
    assert {name: versions for name, versions in pins.items() if len(versions) > 1} == {}


def test_the_build_context_holds_what_pip_install_reads(
    parsed: tuple[dict[str, str], list[Stage]], ignore_patterns: list[str], pyproject: dict[str, object]
) -> None:
    build = parsed[1][0]
    sources: list[str] = []
    for args in build.args_of("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        sources.extend(words[:-1])
    project = pyproject["project"]
    assert isinstance(project, dict)
    # setuptools fails without the readme pyproject.toml names, and without the package itself.
    assert {"pyproject.toml", project["readme"], "automator"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not dockerignore_excludes(source, ignore_patterns), f"COPY {source}: excluded by .dockerignore"
    runs = build.args_of("RUN")
    # every dependency from the hashed runtime lock; the project itself adds none of its own
    # as wheels only: nothing is compiled, so the same lock gives the same files
    assert any(
        "--require-hashes" in run
        and "--no-deps" in run
        and "--only-binary :all:" in run
        and "-r requirements/runtime.txt" in run
        for run in runs
    ), runs
    assert "requirements/runtime.txt" in sources
    install = [run for run in runs if re.search(r"pip install .*--no-deps .*\.(\s|$)", run)]
    assert install and all("--no-build-isolation" in run for run in install), runs


def test_dockerignore_keeps_the_package_and_drops_the_rest(ignore_patterns: list[str]) -> None:
    kept_paths = ["automator/__init__.py", "automator/py.typed", "automator/sync/command.py", "README.md"]
    for kept in [*kept_paths, "requirements/runtime.txt"]:
        assert not dockerignore_excludes(kept, ignore_patterns), kept
    for dropped in [
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "helm/automator/values.yaml",
        "requirements/dev.txt",
        "automator/__pycache__/cli.cpython-311.pyc",
        "automator/sync/__pycache__/engine.cpython-311.pyc",
    ]:
        assert dockerignore_excludes(dropped, ignore_patterns), dropped


def test_entrypoint_is_the_console_script(final: Stage, pyproject: dict[str, object]) -> None:
    assert [json.loads(a) for a in final.args_of("ENTRYPOINT")] == [["automator"]]
    project = pyproject["project"]
    assert isinstance(project, dict)
    assert "automator" in project["scripts"]


def chart_values() -> dict[str, object]:
    loaded: dict[str, object] = YAML(typ="safe", pure=True).load(CHART_DIR / "values.yaml")
    return loaded


def test_image_user_is_the_one_the_chart_runs_as(final: Stage) -> None:
    assert final.args_of("USER") == ["65532:65532"]  # numeric, so runAsNonRoot can verify it
    creates_user = " ".join(final.args_of("RUN"))
    assert "--uid 65532" in creates_user and "--gid 65532" in creates_user
    pod = chart_values()["podSecurityContext"]
    assert isinstance(pod, dict)
    assert (pod["runAsUser"], pod["runAsGroup"]) == (65532, 65532)


def test_writable_directories_match_the_chart_emptydirs(final: Stage) -> None:
    env = {}
    for args in final.args_of("ENV"):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            env[key] = value
    with helm.Chart.load(CHART_DIR) as chart:
        # the one value the chart requires: the config repository
        rendered = chart.render(
            {"automator": {"git": {"url": "https://example.com/config.git"}}}, name="rel", namespace="ns"
        )
    yaml = YAML(typ="safe", pure=True)
    for component in ("automator", "synchronizer"):
        deployment = yaml.load(rendered[f"automator/templates/{component}/deployment.yaml"])
        pod = deployment["spec"]["template"]["spec"]
        (c,) = [c for c in pod["containers"] if c["name"] == component]  # not a sidecar
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        writable = {m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty_dirs}
        # Everything the image points programs at for writing is writable under a read-only root.
        assert {"/tmp", env["HOME"], env["XDG_CACHE_HOME"], env["AUTOMATOR_CACHE_DIR"]} <= writable
        chart_env = {e["name"]: e.get("value") for e in c["env"]}
        assert chart_env["HOME"] == env["HOME"]
    # Created in the image and owned by the user, so they are writable without a volume as well.
    assert any(
        f"-o 65532 -g 65532 -m 0750 {env['HOME']} {env['AUTOMATOR_CACHE_DIR']}" in run for run in final.args_of("RUN")
    )
    assert env["PATH"].startswith("/opt/automator/bin:")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_runtime_has_git_ssh_gnupg_and_kubectl(final: Stage) -> None:
    runs = " ".join(final.args_of("RUN"))
    assert "--no-install-recommends" in runs
    packages = {package.partition("=")[0] for package in apt_installs(final)}
    assert {"git", "openssh-client", "gnupg", "ca-certificates", "python3"} <= packages
    assert "rm -rf /var/lib/apt/lists/*" in runs
    copies = [shlex.split(c) for c in final.args_of("COPY")]
    assert ["--from=kubectl", "/kubectl", "/usr/local/bin/kubectl"] in copies
    assert ["--from=build", "/opt/automator", "/opt/automator"] in copies
    # The build fails, not the first pod, when a tool or the entry point is missing.
    for smoke in ("automator --help", "kubectl version --client", "git --version", "ssh -V", "gpg --version"):
        assert smoke in runs


def test_kubectl_is_a_pinned_release_checked_against_its_sha256(
    parsed: tuple[dict[str, str], list[Stage]],
) -> None:
    stage = next(s for s in parsed[1] if s.name == "kubectl")
    args = stage_args(stage)
    assert re.fullmatch(r"v\d+\.\d+\.\d+", args["KUBECTL_VERSION"])
    for arch in ("AMD64", "ARM64"):
        assert re.fullmatch(r"[0-9a-f]{64}", args[f"KUBECTL_SHA256_{arch}"]), arch
    assert args["KUBECTL_SHA256_AMD64"] != args["KUBECTL_SHA256_ARM64"]
    # the checksum is checked through a pipe: only pipefail lets a failed download stop the build
    assert [json.loads(s) for s in stage.args_of("SHELL")] == [["/bin/bash", "-o", "pipefail", "-c"]]
    (run,) = stage.args_of("RUN")
    assert "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl" in run
    assert 'echo "${sum}  /kubectl" | sha256sum -c -' in run
    assert run.index("sha256sum -c") < run.index("chmod")
    assert "set -eu" in run  # a failed check stops the build instead of falling through


def test_image_carries_oci_labels(final: Stage, pyproject: dict[str, object]) -> None:
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[\w.]+)="([^"]*)"', " ".join(final.args_of("LABEL"))))
    for key in ("title", "description", "version", "revision", "created", "source", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}" in labels, key
    project = pyproject["project"]
    assert isinstance(project, dict)
    assert labels["org.opencontainers.image.licenses"] == project["license"]
    assert stage_args(final)["VERSION"] == project["version"]


def test_exposed_port_is_the_charts_listener(final: Stage) -> None:
    values = chart_values()
    ports = {section["port"] for section in (values["automator"], values["synchronizer"]) if isinstance(section, dict)}
    ports.add(values["automator"]["webhookPort"])
    exposed = {int(p) for args in final.args_of("EXPOSE") for p in args.split()}
    assert ports <= exposed


def test_run_instructions_are_valid_shell(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    """Each shell-form RUN, joined the way the builder joins it, parses under /bin/sh (dash in the image)."""
    runs = [run for stage in parsed[1] for run in stage.args_of("RUN")]
    assert runs
    for run in runs:
        checked = subprocess.run(["sh", "-n", "-c", run], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, f"{run}\n{checked.stderr}"
