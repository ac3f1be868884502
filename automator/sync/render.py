"""Render the config repo's paths into manifests: plain YAML/JSON trees and kustomize directories.

Plain files are parsed with PyYAML's libyaml loader (``CSafeLoader``) rather than ruamel's
round-trip mode: nothing is written back, and the C loader parses thousands of objects an order
of magnitude faster while still giving each document's line for ``file:line`` messages.
Kustomize directories are rendered by ``kubectl kustomize`` so the result matches what users get
from kubectl.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from automator.errors import RenderError
from automator.sync.model import Manifest

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUFFIXES = (".yaml", ".yml", ".json")


def render(root: Path, paths: list[str], *, kubectl: str = "kubectl") -> list[Manifest]:
    """Every object under ``paths`` (relative to ``root``), in a stable order; duplicates fail."""
    root = root.resolve()
    manifests: list[Manifest] = []
    for rel in paths or ["."]:
        target = (root / rel).resolve()
        if target != root and root not in target.parents:
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
        yield from parse_file(target, _display(root, target))
        return
    if _is_kustomization(target):
        yield from kustomize(target, _display(root, target), kubectl)
        return
    for dirpath, dirnames, filenames in os.walk(target):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in list(dirnames):
            if _is_kustomization(here / d):
                dirnames.remove(d)
                yield from kustomize(here / d, _display(root, here / d), kubectl)
        for name in sorted(filenames):
            if name.startswith(".") or not name.endswith(SUFFIXES):
                continue
            yield from parse_file(here / name, _display(root, here / name))


def _display(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return rel or "."


def _is_kustomization(directory: Path) -> bool:
    return any((directory / name).is_file() for name in KUSTOMIZATION_FILES)


def parse_file(path: Path, display: str) -> Iterator[Manifest]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RenderError(f"{display}: cannot read: {exc}") from exc
    if path.suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RenderError(f"{display}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
        yield from _objects(doc, display, 1)
        return
    yield from parse_yaml(text, display)


def parse_yaml(text: str, display: str) -> Iterator[Manifest]:
    """Each document of a multi-document YAML stream, located by its first line."""
    loader = yaml.CSafeLoader(text)
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
                if node is None:
                    break
                line = node.start_mark.line + 1
                doc = loader.construct_document(node)
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                where = f"{display}:{mark.line + 1}" if mark is not None else display
                raise RenderError(f"{where}: invalid YAML: {exc.problem or exc.context}; fix the file") from exc
            except yaml.YAMLError as exc:
                raise RenderError(f"{display}: invalid YAML: {exc}") from exc
            yield from _objects(doc, display, line)
    finally:
        loader.dispose()


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


def kustomize(directory: Path, display: str, kubectl: str = "kubectl") -> Iterator[Manifest]:
    binary = shutil.which(kubectl)
    if binary is None:
        raise RenderError(
            f"{display}: is a kustomize directory and rendering it needs {kubectl!r} (kubectl kustomize),"
            " which is not on PATH; install kubectl"
        )
    proc = subprocess.run([binary, "kustomize", str(directory)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RenderError(f"{display}: kubectl kustomize failed: {proc.stderr.strip()}")
    for m in parse_yaml(proc.stdout, f"{display} (kustomize)"):
        yield Manifest(m.obj, f"{display} (kustomize)")
