"""update stage: find image fields (setter markers, marker-less), splice new scalars, record changes.

Pure core: :func:`rewrite_text` (text + decisions -> :class:`FileResult`).  I/O edge:
:func:`update_tree` (a repository directory -> :class:`UpdateResult`, optionally written) and
:func:`locate_tree` (what every policy's fields hold now, read-only, before choosing).
Renderers: :func:`unified_diff`, :func:`to_json` / :func:`render_json`, :func:`change_rows`.
"""

from automator.update.locate import Located, current_tags, locate_tree
from automator.update.model import (
    Change,
    Decision,
    Decisions,
    FileResult,
    ObjectChanges,
    ObjectId,
    UpdateResult,
    UpdateWarning,
)
from automator.update.render import change_rows, file_diff, render_json, to_json, unified_diff
from automator.update.rewrite import parse_marker, rewrite_text
from automator.update.tree import DEFAULT_MAX_BYTES, rewrite_file, update_tree

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Change",
    "Decision",
    "Decisions",
    "FileResult",
    "Located",
    "ObjectChanges",
    "ObjectId",
    "UpdateResult",
    "UpdateWarning",
    "change_rows",
    "current_tags",
    "file_diff",
    "locate_tree",
    "parse_marker",
    "render_json",
    "rewrite_file",
    "rewrite_text",
    "to_json",
    "unified_diff",
    "update_tree",
]
