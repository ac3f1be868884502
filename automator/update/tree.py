"""The I/O edge: walk a config repository, rewrite what needs rewriting, write atomically.

Only regular ``*.yaml``/``*.yml``/``Kustomization`` files inside ``root`` are read; a
symlink is never followed (one that leads outside the root is reported as refused), ``.git``
is never entered, files over ``max_bytes`` or not UTF-8 are skipped with a warning.  A byte
search for the marker token or a candidate repository name runs before any YAML parsing, so
a large repository costs little more than reading it.  Writes go to a temporary file in the
same directory, keep the original's mode, and replace the original with ``os.replace``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import tempfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from automator.errors import UnsafePathError, UpdateError
from automator.update.model import Decisions, FileResult, UpdateResult, UpdateWarning
from automator.update.rewrite import KUSTOMIZATION_FILES, MARKER_TOKEN, rewrite_text

DEFAULT_MAX_BYTES = 1 << 20  # 1 MiB: far above any hand-written manifest
YAML_SUFFIXES = (".yaml", ".yml")
_WORD = re.compile(rb"[A-Za-z0-9._-]+")
_MARKER_REF = re.compile(rb'"\$imagepolicy"[ \t]*:[ \t]*"([^"\\\r\n]+)"')  # the reference a marker names


def _is_yaml(name: str) -> bool:
    return name.endswith(YAML_SUFFIXES) or name in KUSTOMIZATION_FILES


class _Prefilter:
    """Cheap byte test: could this file hold anything we would rewrite?"""

    def __init__(self, decisions: Decisions, marker_less_all: bool, marker_less_paths: Sequence[str]) -> None:
        self.decisions = decisions
        self.marker = MARKER_TOKEN.encode()
        self.patterns = tuple(marker_less_paths)
        self.all_words = self._words(decisions, everyone=True)
        self.words = self.all_words if marker_less_all else self._words(decisions, everyone=False)

    @staticmethod
    def _words(decisions: Decisions, *, everyone: bool) -> frozenset[bytes]:
        # The last path component appears whatever the spelling: nginx, library/nginx,
        # docker.io/library/nginx, {registry: docker.io, repository: library/nginx}.
        return frozenset(repo.rsplit("/", 1)[-1].encode() for repo in decisions.marker_less(everyone=everyone))

    def marker_less_for(self, rel: str) -> bool:
        return any(fnmatch.fnmatchcase(rel, p) for p in self.patterns)

    def wants(self, data: bytes, everyone: bool) -> bool:
        words = self.all_words if everyone else self.words
        if words and b"image" in data and not words.isdisjoint(_WORD.findall(data)):
            return True
        if self.marker in data:
            return not self._only_others(data)
        return False

    def _only_others(self, data: bytes) -> bool:
        """Whether every marker in ``data`` names a policy left alone silently (another shard's,
        another job's, another pull request's): such a file is that one's to read, and nothing
        here would change in it or warn about it. A marker the byte pattern does not take whole
        (odd spacing, escapes) or one naming an unknown policy is read as usual."""
        refs = _MARKER_REF.findall(data)
        if not refs or len(refs) != data.count(self.marker):
            return False
        for ref in refs:
            try:
                found = self.decisions.resolve(ref.decode("utf-8"))
            except UnicodeDecodeError:
                return False
            if found.decision is not None or found.problem:
                return False
        return True


def _walk(root: Path, start: Path, warnings: list[UpdateWarning]) -> Iterator[tuple[Path, str]]:
    """Regular YAML files under ``start`` as (absolute path, root-relative posix path), sorted."""
    todo = [start]
    while todo:
        directory = todo.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            warnings.append(UpdateWarning(_rel(root, Path(directory)), 0, f"cannot list directory: {exc.strerror}"))
            continue
        subdirs = []
        for entry in entries:
            path = Path(entry.path)
            rel = _rel(root, path)
            if entry.name == ".git":
                continue
            if entry.is_symlink():
                if entry.is_dir() or _is_yaml(entry.name):
                    target = os.path.realpath(path)
                    if not _inside(root, Path(target)):
                        warnings.append(UpdateWarning(rel, 0, "refused: symlink leads outside the repository"))
                continue  # never followed; a target inside the tree is visited under its own path
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(path)
            elif entry.is_file(follow_symlinks=False) and _is_yaml(entry.name):
                yield path, rel
        todo.extend(reversed(subdirs))


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _inside(root: Path, path: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def update_tree(
    root: Path,
    decisions: Decisions,
    *,
    write: bool,
    max_bytes: int = DEFAULT_MAX_BYTES,
    subpath: str = "",
    marker_less: bool = False,
    marker_less_paths: Sequence[str] = (),
    only: Collection[str] | None = None,
    splice: bool = True,
) -> UpdateResult:
    """Rewrite every file under ``root`` (or ``root/subpath``) for ``decisions``.

    ``only`` (root-relative ``/`` paths) limits the rewrite to files a plan already found,
    so committing one group of a large repo reads just the files that group changes.

    With ``write=False`` nothing on disk changes: the result still carries each file's
    original and updated text, which is what ``automator plan`` renders.
    ``marker_less=True`` turns marker-less discovery on for every policy;
    ``marker_less_paths`` does so for files matching these globs (root-relative, ``/``).
    ``splice=False`` reports the changes each file would get without making them (never
    written), as :func:`automator.update.locate.locate_tree` uses it.
    Raises :class:`UnsafePathError` when ``subpath`` leaves the root.
    """
    root = Path(os.path.realpath(root))
    start = Path(os.path.realpath(root / subpath)) if subpath else root
    if not _inside(root, start):
        raise UnsafePathError(f"path {subpath!r} leads outside the repository {root}; give a path inside it")
    if not start.is_dir():
        raise UnsafePathError(f"path {subpath!r} is not a directory in {root}")

    prefilter = _Prefilter(decisions, marker_less, marker_less_paths)
    warnings: list[UpdateWarning] = []
    files: list[FileResult] = []
    scanned = parsed = 0
    for path, rel in _walk(root, start, warnings):
        if only is not None and rel not in only:
            continue
        scanned += 1
        everyone = marker_less or prefilter.marker_less_for(rel)
        read = _read(path, rel, max_bytes, warnings)
        if read is None:
            continue
        data, st = read
        if not prefilter.wants(data, everyone):
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            warnings.append(UpdateWarning(rel, line, f"skipped: not UTF-8 (byte offset {exc.start})"))
            continue
        parsed += 1
        result = rewrite_text(text, rel, decisions, marker_less=everyone, splice=splice)
        warnings.extend(result.warnings)
        if not (result.changed or (not splice and result.objects)):
            continue
        if write and splice and not _write(root, path, rel, result.text, before=st, warnings=warnings):
            continue
        files.append(result)
    return UpdateResult(tuple(files), tuple(warnings), scanned, parsed)


def _read(path: Path, rel: str, max_bytes: int, warnings: list[UpdateWarning]) -> tuple[bytes, os.stat_result] | None:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        warnings.append(UpdateWarning(rel, 0, f"skipped: cannot open ({exc.strerror})"))
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            warnings.append(UpdateWarning(rel, 0, "skipped: not a regular file"))
            return None
        if st.st_size > max_bytes:
            warnings.append(UpdateWarning(rel, 0, f"skipped: {st.st_size} bytes is over the {max_bytes}-byte limit"))
            return None
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        warnings.append(UpdateWarning(rel, 0, f"skipped: over the {max_bytes}-byte limit"))
        return None
    return data, st


def _write(
    root: Path, path: Path, rel: str, text: str, *, before: os.stat_result, warnings: list[UpdateWarning]
) -> bool:
    """Atomically replace ``path`` unless it changed (or became a symlink) since it was read.

    Raises :class:`UpdateError` when the file cannot be written (permissions, disk full):
    a half-applied update must stop the run, not pass as a warning.
    """
    if not _inside(root, Path(os.path.realpath(path.parent))):
        warnings.append(UpdateWarning(rel, 0, "refused: its directory now leads outside the repository"))
        return False
    try:
        now = os.lstat(path)
    except OSError as exc:
        warnings.append(UpdateWarning(rel, 0, f"not written: {exc.strerror}"))
        return False
    if not stat.S_ISREG(now.st_mode) or (now.st_ino, now.st_size, now.st_mtime_ns) != (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    ):
        warnings.append(UpdateWarning(rel, 0, "not written: the file changed while it was being rewritten"))
        return False
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UpdateError(f"{rel}: cannot write next to it ({exc.strerror}); check the directory") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            # No fsync: like git's own checkout, a working tree is not made crash-durable
            # (the commit that follows is); fsync per file made a 1,000-file run 5x slower.
        os.chmod(tmp, stat.S_IMODE(before.st_mode))
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UpdateError(f"{rel}: cannot write ({exc.strerror}); the file is unchanged") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def rewrite_file(
    data: bytes,
    rel: str,
    decisions: Decisions,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    marker_less: bool = False,
    marker_less_paths: Sequence[str] = (),
) -> bytes | None:
    """The bytes :func:`update_tree` would write for the file ``rel`` holding ``data``; pure.

    None when it would leave the file alone: not a YAML name, over ``max_bytes``, no marker and no candidate
    name (the same byte prefilter), not UTF-8, or nothing to change. ``rel`` is the path the
    rewrite sees, as :func:`update_tree` gives it (root-relative, ``/``), and
    ``marker_less_paths`` match it as they do there. This is what lets the git stage build a
    commit from blobs without checking a worktree out: the same decisions give the same bytes.
    """
    if len(data) > max_bytes or not _is_yaml(rel.rsplit("/", 1)[-1]):
        return None
    prefilter = _Prefilter(decisions, marker_less, marker_less_paths)
    everyone = marker_less or prefilter.marker_less_for(rel)
    if not prefilter.wants(data, everyone):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    result = rewrite_text(text, rel, decisions, marker_less=everyone)
    return result.text.encode("utf-8") if result.changed else None
