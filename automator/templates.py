"""User templates for commit messages, PR titles, bodies and branch names.

Rendered with Jinja2's ``SandboxedEnvironment`` (a template from a config repo cannot reach
Python internals) and ``StrictUndefined`` (a misspelt variable is an error, not an empty
string).  The context is built from the change record, never re-derived from files:

    group     the group (or policy) name          prefix   the branch prefix
    base      the base branch                      updates  one entry per policy:
              {policy, image, old, new, tag, digest, files}
    changes   one entry per changed scalar: {policy, file, line, object, old, new}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from automator.errors import ConfigError

DEFAULT_MESSAGE = (
    "{% if updates | length == 1 %}Update {{ updates[0].image }} to {{ updates[0].tag }}"
    "{% else %}Update {{ updates | length }} images ({{ group }}){% endif %}\n\n"
    "{% for u in updates %}- {{ u.image }}: {{ u.old or '(unset)' }} -> {{ u.new }} (policy {{ u.policy }})\n"
    "{% endfor %}"
)
DEFAULT_TITLE = (
    "{% if updates | length == 1 %}Update {{ updates[0].image }} to {{ updates[0].tag }}"
    "{% else %}Update {{ updates | length }} images ({{ group }}){% endif %}"
)
DEFAULT_BRANCH = "{{ prefix }}{{ group | slug }}"


def slug(value: object) -> str:
    """A branch-safe form of ``value``: ``apps:podinfo`` -> ``apps-podinfo``."""
    text = re.sub(r"[^A-Za-z0-9._/-]+", "-", str(value)).strip("-./")
    return re.sub(r"/{2,}|\.{2,}", "-", text) or "update"


@lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
    env.filters["slug"] = slug
    return env


@lru_cache(maxsize=64)
def compile_template(source: str) -> Template:
    """Parse ``source`` once; raises jinja2's TemplateSyntaxError for the config loader to place."""
    return _env().from_string(source)


# What every template can rely on; config loading renders each template against it, so a
# misspelt variable is reported when automator.yaml is read, not after a branch was pushed.
SAMPLE_CONTEXT: Mapping[str, Any] = {
    "group": "apps:podinfo",
    "prefix": "automator/",
    "base": "main",
    "updates": [
        {
            "policy": "apps:podinfo",
            "image": "ghcr.io/stefanprodan/podinfo",
            "repository": "ghcr.io/stefanprodan/podinfo",
            "tag": "6.5.0",
            "digest": None,
            "old": "6.4.0",
            "new": "6.5.0",
            "files": [{"file": "apps/podinfo/deployment.yaml", "line": 19}],
            "source": {"file": "apps/podinfo/policy.yaml", "line": 4},
        }
    ],
    "changes": [
        {"policy": "apps:podinfo", "file": "apps/podinfo/deployment.yaml", "line": 19, "old": "6.4.0", "new": "6.5.0"}
    ],
}


def render(source: str, context: Mapping[str, Any], *, what: str) -> str:
    """Render a template; any failure is a :class:`ConfigError` naming the template."""
    try:
        return compile_template(source).render(**context)
    except TemplateError as exc:
        raise ConfigError(f"the {what} template failed: {exc}; check automator.yaml") from None
    except Exception as exc:  # a template can divide by zero or index past a list: still the user's input
        raise ConfigError(f"the {what} template failed: {type(exc).__name__}: {exc}; check automator.yaml") from None
