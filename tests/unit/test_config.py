"""The automation config and templates: validation with positions, overrides, grouping."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from automator.config import (
    DEFAULT,
    PullRequestSpec,
    completed,
    git_token_fits_forge,
    group_policies,
    load_config,
    repository_from_url,
    with_overrides,
)
from automator.errors import ConfigError, PolicyFileError
from automator.templates import render, slug

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_is_valid(tmp_path: Path) -> None:
    block = re.search(
        r"```yaml\n(apiVersion: automator.dev/v1alpha1\nkind: Automation.*?)```", README.read_text(), re.S
    )
    assert block is not None
    path = tmp_path / "automator.yaml"
    path.write_text(block.group(1))
    config = load_config(path)
    assert config.spec.forge.provider == "github"
    assert config.spec.pull_request.auto_merge is True


@pytest.mark.parametrize(
    ("body", "where", "field"),
    [
        ("spec:\n  mdoe: direct\n", ":4:3", "spec.mdoe"),
        ("spec:\n  mode: sideways\n", ":4:9", "spec.mode"),
        ("spec:\n  pullRequest:\n    draft: 'yes'\n", ":5:12", "spec.pullRequest.draft"),
        ("spec:\n  commit:\n    messageTemplate: 'Update {{ updates[0].image '\n", ":5:22", "messageTemplate"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, body: str, where: str, field: str) -> None:
    path = tmp_path / "automator.yaml"
    path.write_text("apiVersion: automator.dev/v1alpha1\nkind: Automation\n" + body)
    with pytest.raises(PolicyFileError) as info:
        load_config(path, shown="automator.yaml")
    assert f"automator.yaml{where}" in str(info.value)
    assert field in str(info.value)


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    path = tmp_path / "automator.yaml"
    path.write_text("apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  git: [unclosed\n")
    with pytest.raises(PolicyFileError, match=r"automator.yaml:\d+"):
        load_config(path, shown="automator.yaml")


def test_overrides_win_and_are_validated() -> None:
    config = with_overrides(DEFAULT, {"spec.git.url": "/srv/repo.git", "spec.mode": "direct", "spec.git.branch": None})
    assert config.spec.git.url == "/srv/repo.git"
    assert config.spec.mode == "direct"
    assert config.spec.git.branch == "main"
    with pytest.raises(ValueError, match="mode"):
        with_overrides(DEFAULT, {"spec.mode": "sideways"})


def test_grouping_first_matching_group_else_own() -> None:
    spec = PullRequestSpec.model_validate(
        {"groups": [{"name": "infra", "policies": ["infra:*"]}, {"name": "all", "policies": ["*"]}]}
    )
    groups = group_policies(["infra:a", "apps:b", "infra:c"], spec)
    assert [(g.name, g.policies) for g in groups] == [("infra", ("infra:a", "infra:c")), ("all", ("apps:b",))]
    assert [g.name for g in group_policies(["x", "y"], PullRequestSpec())] == ["x", "y"]


def test_templates_are_sandboxed_and_strict() -> None:
    assert render("{{ group | slug }}", {"group": "apps:pod info"}, what="branch") == "apps-pod-info"
    with pytest.raises(ConfigError, match="branch name template"):
        render("{{ nope }}", {}, what="branch name")
    with pytest.raises(ConfigError):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {}, what="title")


@pytest.mark.parametrize(("raw", "want"), [("a:b", "a-b"), ("..x..", "x"), ("a//b", "a-b"), ("", "update")])
def test_slug(raw: str, want: str) -> None:
    assert slug(raw) == want


def test_misspelt_template_variable_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "automator.yaml"
    path.write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  pullRequest:\n"
        "    titleTemplate: '{{ updates[0].imge }}'\n"
    )
    with pytest.raises(PolicyFileError, match=r"automator.yaml:5:\d+.*titleTemplate.*imge"):
        load_config(path, shown="automator.yaml")


def test_a_flag_token_source_replaces_the_files() -> None:
    config = with_overrides(DEFAULT, {"spec.forge.auth.tokenEnv": "GH_TOKEN"})
    config = with_overrides(config, {"spec.forge.auth.tokenFile": "/run/secrets/token"})
    assert config.spec.forge.auth.token_env is None
    assert config.spec.forge.auth.token_file == "/run/secrets/token"


def test_both_token_sources_in_one_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "automator.yaml"
    path.write_text(
        "apiVersion: automator.dev/v1alpha1\nkind: Automation\nspec:\n  forge:\n"
        "    auth: {tokenEnv: A, tokenFile: /b}\n"
    )
    with pytest.raises(PolicyFileError, match="not both"):
        load_config(path, shown="automator.yaml")


@pytest.mark.parametrize(
    ("url", "repository"),
    [
        ("https://github.com/acme/config.git", "acme/config"),
        ("https://github.com/acme/config", "acme/config"),
        ("git@github.com:acme/config.git", "acme/config"),
        ("ssh://git@gitlab.example.com:2222/platform/infra/config.git", "platform/infra/config"),
        ("https://gitlab.example.com/group/sub/project.git/", "group/sub/project"),
        ("https://github.com/acme", None),
        ("/srv/git/config.git", None),
        ("file:///srv/git/config.git", None),
        ("./config", None),
    ],
)
def test_the_forge_repository_follows_from_the_git_url(url: str, repository: str | None) -> None:
    assert repository_from_url(url) == repository


def test_completed_fills_only_what_is_missing() -> None:
    github = with_overrides(
        DEFAULT, {"spec.git.url": "git@github.com:acme/config.git", "spec.forge.provider": "github"}
    )
    assert completed(github).spec.forge.repository == "acme/config"
    explicit = with_overrides(github, {"spec.forge.repository": "other/repo"})
    assert completed(explicit).spec.forge.repository == "other/repo"
    local = with_overrides(DEFAULT, {"spec.git.url": "/srv/git/config.git", "spec.forge.provider": "github"})
    assert completed(local).spec.forge.repository is None
    none = with_overrides(DEFAULT, {"spec.git.url": "https://github.com/acme/config.git"})
    assert completed(none).spec.forge.repository is None
    prefixed = with_overrides(
        DEFAULT,
        {
            "spec.git.url": "https://acme.example/gitlab/platform/config.git",
            "spec.forge.provider": "gitlab",
            "spec.forge.url": "https://acme.example/gitlab",
        },
    )
    assert completed(prefixed).spec.forge.repository == "platform/config"


@pytest.mark.parametrize(
    ("git_url", "provider", "forge_url", "fits"),
    [
        ("https://github.com/acme/config.git", "github", None, True),  # api.github.com is github.com's API
        ("git@github.com:acme/config.git", "github", None, True),
        ("https://ghe.acme.example/acme/config.git", "github", "https://ghe.acme.example/api/v3", True),
        ("https://github.com/acme/config.git", "github", "https://ghe.acme.example/api/v3", False),
        ("https://gitlab.com/g/p.git", "gitlab", None, True),
        ("https://gitlab.acme.example/g/p.git", "gitlab", None, False),
        ("/srv/git/config.git", "github", None, False),
    ],
)
def test_the_git_token_goes_to_the_forge_api_only_on_the_same_host(
    git_url: str, provider: str, forge_url: str | None, fits: bool
) -> None:
    config = with_overrides(
        DEFAULT, {"spec.git.url": git_url, "spec.forge.provider": provider, "spec.forge.url": forge_url}
    )
    assert git_token_fits_forge(config) is fits


@pytest.mark.parametrize(
    ("text", "size"), [("16MiB", 16 << 20), ("64MB", 64_000_000), ("1048576", 1 << 20), ("2 GiB", 2 << 30)]
)
def test_the_registry_answer_cap_can_be_raised_from_the_command_line(text: str, size: int) -> None:
    """The error for a listing of millions of tags names the flag; the flag reaches the client."""
    from automator.cli import _access, build_parser

    args = build_parser("scan").parse_args(["scan", "--max-response-size", text])
    assert _access(args).base.max_response_bytes == size


@pytest.mark.parametrize("text", ["lots", "12 parsecs", "100", "-5MiB"])
def test_a_bad_answer_cap_is_a_usage_error(text: str) -> None:
    from automator.cli import _access, build_parser

    args = build_parser("scan").parse_args(["scan", f"--max-response-size={text}"])
    with pytest.raises(ConfigError, match="--max-response-size"):
        _access(args)
