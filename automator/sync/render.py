"""Render the config repo's paths into manifests: plain YAML/JSON trees and kustomize directories.

Plain files are read through the project's one YAML event layer (:mod:`automator.yamlevents`,
via :func:`automator.policy.yamldocs.read_values`): the same backends, nesting rule and error
wording as the policy loader, an iterative builder that no nesting can overflow, and a bound on
how far aliases may expand a document (it is serialised as JSON for the API server, and by the
render cache, so a "billion laughs" must fail here, not in memory later).  Plain scalars are
resolved the way kubectl reads a manifest (sigs.k8s.io/yaml, go-yaml v2, YAML 1.1 style):
``yes``/``on``/``y`` are booleans, ``0x1F`` and ``017`` are integers, a timestamp or
``1:30`` stays a string, so what we apply is what ``kubectl apply -f`` would.

Only regular files inside the checkout are read, each at most :data:`MAX_FILE_BYTES`: a symlink
is followed only when it resolves inside the checkout, and a device, a FIFO or a link out of
the checkout fails the render (skipping it would prune its objects).  Kustomize directories
are rendered by ``kubectl kustomize`` so the result matches what users get from kubectl,
after the same symlink check over the directory.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from automator.errors import RenderError
from automator.policy.yamldocs import SyntaxProblem, read_values
from automator.sync.model import Manifest
from automator.yamlevents import TooDeep, check_flow_depth

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 16 << 20  # 16 MiB: far above any manifest file; bounds what one file costs
MAX_VALUES = 1_000_000  # per document, aliases expanded: ~100 MB of JSON at most


def render(root: Path, paths: list[str], *, kubectl: str = "kubectl") -> list[Manifest]:
    """Every object under ``paths`` (relative to ``root``), in a stable order; duplicates fail."""
    root = root.resolve()
    manifests: list[Manifest] = []
    for rel in paths or ["."]:
        target = (root / rel).resolve()
        if not _within(root, target):
            raise RenderError(f"path {rel!r} leaves the repository; give a path inside it")
        if not target.exists():
            raise RenderError(f"path {rel!r} does not exist at this revision; check --path")
        manifests.extend(_render_target(root, target, kubectl))
    seen: dict[tuple[str, str, str, str], str] = {}
    for m in manifests:
        key = (m.ref.group, m.ref.kind, m.ref.namespace, m.ref.name)
        if key in seen:
            raise RenderError(f"{m.source}: {m.ref} is also defined at {seen[key]}; keep one definition")
        seen[key] = m.source
    return manifests


def _render_target(root: Path, target: Path, kubectl: str) -> Iterator[Manifest]:
    if target.is_file():
        yield from parse_file(target, _display(root, target), root)
        return
    if _is_kustomization(target):
        yield from kustomize(target, _display(root, target), kubectl, root)
        return
    for dirpath, dirnames, filenames in os.walk(target):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in list(dirnames):
            if (here / d).is_symlink():
                _inside(root, here / d, _display(root, here / d))
            if _is_kustomization(here / d):
                dirnames.remove(d)
                yield from kustomize(here / d, _display(root, here / d), kubectl, root)
        for name in sorted(filenames):
            if name.startswith(".") or not name.endswith(SUFFIXES):
                continue
            yield from parse_file(here / name, _display(root, here / name), root)


def _within(root: Path, resolved: Path) -> bool:
    return resolved == root or root in resolved.parents


def _inside(root: Path, path: Path, display: str) -> Path:
    """``path`` resolved, when that stays inside ``root``; a :class:`RenderError` otherwise."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise RenderError(f"{display}: cannot read: {exc}") from exc
    if not _within(root, real):
        raise RenderError(f"{display}: is a symlink to {real}, outside the repository; only files inside it are read")
    return real


def _display(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return rel or "."


def _is_kustomization(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


def _read(path: Path, display: str, root: Path) -> str:
    """The text of a regular file inside ``root`` (symlinks only to such files), bounded in size."""
    real = _inside(root, path, display)
    try:
        info = real.stat()
    except OSError as exc:
        raise RenderError(f"{display}: cannot read: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise RenderError(f"{display}: is not a regular file (a device, FIFO or socket); remove it from the path")
    if info.st_size > MAX_FILE_BYTES:
        raise RenderError(
            f"{display}: is {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for a manifest"
        )
    try:
        with real.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # a file that grew since stat() is still bounded
        if len(data) > MAX_FILE_BYTES:
            raise RenderError(f"{display}: is over the {MAX_FILE_BYTES:,}-byte limit for a manifest")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RenderError(f"{display}: cannot read: {exc}") from exc


def parse_file(path: Path, display: str, root: Path) -> Iterator[Manifest]:
    """The objects of one YAML or JSON file inside ``root`` (a resolved path)."""
    text = _read(path, display, root)
    if path.suffix == ".json":
        try:
            check_flow_depth(text)  # json.loads recurses: 100,000 levels would overflow the stack
            doc = json.loads(text)
        except TooDeep as exc:
            raise RenderError(f"{display}:{exc.mark.line + 1}: invalid JSON: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise RenderError(f"{display}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
        yield from _objects(doc, display, 1)
        return
    yield from parse_yaml(text, display)


def parse_yaml(text: str, display: str) -> Iterator[Manifest]:
    """Each document of a multi-document YAML stream, located by its first line."""
    for doc in read_values(text, kube_scalar, max_values=MAX_VALUES):
        if isinstance(doc, SyntaxProblem):
            what = doc.message.removeprefix("YAML syntax error: ")
            raise RenderError(f"{display}:{doc.position.line}: invalid YAML: {what}; fix the file")
        yield from _objects(doc.data, display, doc.start.line)


# --------------------------------------------------------------------------- kubectl's scalars

_GO_BOOL = dict.fromkeys(
    ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True
) | dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False)
_GO_SPECIAL: dict[str, Any] = dict.fromkeys(("", "~", "null", "Null", "NULL")) | {
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_YAML_TAG = "tag:yaml.org,2002:"
_INT64 = range(-(1 << 63), 1 << 64)  # int64, or uint64 when positive, as go-yaml v2 falls back


def _go_plain(value: str) -> Any:
    """A plain scalar as go-yaml v2's ``resolve`` reads it into ``interface{}``."""
    if value in _GO_BOOL:
        return _GO_BOOL[value]
    if value in _GO_SPECIAL:
        return _GO_SPECIAL[value]
    if not value or value[0] not in "+-.0123456789":
        return value
    plain = value.replace("_", "")
    if _GO_INT.fullmatch(plain):
        digits = plain.lstrip("+-")
        legacy_octal = digits[:1] == "0" and digits[1:2].isdigit()  # Go's "017" (Python wants "0o17")
        number = int(digits, 8 if legacy_octal else 0) * (-1 if plain[0] == "-" else 1)
        if number in _INT64:
            return number
    if _GO_FLOAT.fullmatch(plain):
        return float(plain)
    return value  # a timestamp, "1:30" and the like stay strings, as kubectl keeps them


def kube_scalar(event: Any) -> Any:
    """A scalar event's value as kubectl would send it (see the module docstring)."""
    tag, value = event.tag, event.value
    if tag is None:
        return value if event.style else _go_plain(value)
    name = str(tag).removeprefix(_YAML_TAG)
    if name == str(tag) or name in ("str", "binary", "timestamp"):
        return value  # "!" and local tags, !!str; !!binary and !!timestamp as their text
    resolved = _go_plain(value)
    wanted: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "null": (type(None),)}
    types = wanted.get(name)
    if types is None or (isinstance(resolved, bool) and name != "bool") or not isinstance(resolved, types):
        raise ValueError(f"{value!r} is not a valid !!{name}")
    return float(cast(float, resolved)) if name == "float" else resolved


def _objects(doc: Any, display: str, line: int) -> Iterator[Manifest]:
    where = f"{display}:{line}"
    if doc is None:
        return
    if not isinstance(doc, dict):
        raise RenderError(f"{where}: expected a Kubernetes object (a mapping), got {type(doc).__name__}")
    if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from _objects(item, display, line)
        return
    meta = doc.get("metadata")
    if not doc.get("apiVersion") or not doc.get("kind"):
        raise RenderError(f"{where}: object lacks apiVersion or kind")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise RenderError(f"{where}: {doc.get('kind')} lacks metadata.name (generateName is not supported)")
    yield Manifest(doc, where)


def kustomize(directory: Path, display: str, kubectl: str, root: Path) -> Iterator[Manifest]:
    binary = shutil.which(kubectl)
    if binary is None:
        raise RenderError(
            f"{display}: is a kustomize directory and rendering it needs {kubectl!r} (kubectl kustomize),"
            " which is not on PATH; install kubectl"
        )
    _check_kustomization(root, directory, set())
    argv = [binary, "kustomize", "--load-restrictor", "LoadRestrictionsRootOnly", str(directory)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=KUSTOMIZE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{display}: kubectl kustomize ran longer than {KUSTOMIZE_TIMEOUT:.0f}s; stopped") from exc
    if proc.returncode != 0:
        raise RenderError(f"{display}: kubectl kustomize failed: {proc.stderr.strip()}")
    for m in parse_yaml(proc.stdout, f"{display} (kustomize)"):
        yield Manifest(m.obj, f"{display} (kustomize)")


# What a kustomization lists as other kustomizations or resource files: kustomize loads them as
# roots of their own, so its load restrictor (which keeps patches and generator files inside a
# root) does not stop a ``../../..`` from leaving the checkout; these are checked here.
_ROOT_LISTS = ("resources", "bases", "components", "crds")
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/|gitlab\.com/|bitbucket\.org/)", re.IGNORECASE)
KUSTOMIZE_TIMEOUT = 120.0


def _check_kustomization(root: Path, directory: Path, seen: set[Path]) -> None:
    """Every directory and file the kustomization in ``directory`` (and those it names) lists stays
    inside the checkout, reached by no symlink leading out, and none is fetched from the network."""
    real = _inside(root, directory, _display(root, directory))
    if real in seen:
        return
    seen.add(real)
    for dirpath, dirnames, filenames in os.walk(real):  # kustomize follows symlinks: none may leave
        here = Path(dirpath)
        for name in (*dirnames, *filenames):
            if (here / name).is_symlink():
                _inside(root, here / name, _display(root, here / name))
    file = next((real / n for n in KUSTOMIZATION_FILES if (real / n).is_file()), None)
    if file is None:
        return
    display = _display(root, file)
    for doc in read_values(_read(file, display, root), kube_scalar, max_values=MAX_VALUES):
        if isinstance(doc, SyntaxProblem) or not isinstance(doc.data, dict):
            continue  # kustomize itself reports a broken kustomization
        for key in _ROOT_LISTS:
            entries = doc.data.get(key)
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, str):
                    continue
                if _REMOTE.match(entry) or "?ref=" in entry or "//" in entry:
                    raise RenderError(
                        f"{display}: {key} entry {entry!r} is fetched from the network; the synchronizer"
                        " applies only what the repository holds: vendor it into the repository"
                    )
                target = (real / entry).resolve()
                if not _within(root, target):
                    raise RenderError(
                        f"{display}: {key} entry {entry!r} leads outside the repository; only files inside it"
                        " are applied"
                    )
                if target.is_dir():
                    _check_kustomization(root, target, seen)
