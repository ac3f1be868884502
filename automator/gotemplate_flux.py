"""The data Flux's image-automation-controller gives a commit message template, as Python values.

Flux (``internal/source/source.go``) executes ``spec.git.commit.messageTemplate`` with
``text/template`` and Sprig's ``HermeticTxtFuncMap`` over::

    type TemplateData struct {
        AutomationObject types.NamespacedName        // {Namespace, Name}; prints "namespace/name"
        Changed          update.Result               // {FileChanges map[string]ObjectChanges}
        Values           map[string]string           // spec.git.commit.messageTemplateValues
    }
    type ObjectChanges map[ObjectIdentifier][]Change
    type ObjectIdentifier struct{ yaml.ResourceIdentifier }      // kyaml: embeds TypeMeta, NameMeta
    type ResourceIdentifier struct{ TypeMeta; NameMeta }         // {APIVersion, Kind} {Name, Namespace}
    type Change struct{ OldValue, NewValue, Setter string }
    func (r Result) Changes() []Change          // every change once, in the order met
    func (r Result) Objects() ObjectChanges     // the objects of every file, changes appended

The classes below have those fields in that order, so Go's printing (``{{ .Changed.Objects }}``
is ``map[{{{apps/v1 Deployment} {podinfo default}}}:[{old new setter}]]``), map order (struct
keys compare field by field: APIVersion, Kind, Name, Namespace), promoted fields
(``$resource.Kind``) and errors (``.Updated`` is "can't evaluate field Updated in type
source.TemplateData") come out as Flux's.  Flux walks Go maps in ``Changes`` and ``Objects``, so
its order there is random; ours is one of its orders: files sorted, objects in map order,
changes as recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from automator.gotemplate_fmt import GoMap, sorted_items


@dataclass(frozen=True)
class NamespacedName:
    """``k8s.io/apimachinery/pkg/types.NamespacedName``: a ``fmt.Stringer`` printing ``ns/name``."""

    __go_type__: ClassVar[str] = "types.NamespacedName"
    Namespace: str = ""
    Name: str = ""

    def String(self) -> str:
        return f"{self.Namespace}/{self.Name}"


@dataclass(frozen=True)
class TypeMeta:
    __go_type__: ClassVar[str] = "yaml.TypeMeta"
    APIVersion: str = ""
    Kind: str = ""


@dataclass(frozen=True)
class NameMeta:
    __go_type__: ClassVar[str] = "yaml.NameMeta"
    Name: str = ""
    Namespace: str = ""


@dataclass(frozen=True)
class ResourceIdentifier:
    __go_type__: ClassVar[str] = "yaml.ResourceIdentifier"
    __go_embedded__: ClassVar[tuple[str, ...]] = ("TypeMeta", "NameMeta")
    TypeMeta: TypeMeta = field(default_factory=TypeMeta)
    NameMeta: NameMeta = field(default_factory=NameMeta)


@dataclass(frozen=True)
class ObjectIdentifier:
    """Flux's ``update.ObjectIdentifier``: ``.Kind``, ``.Name``, ``.Namespace``, ``.APIVersion`` promoted."""

    __go_type__: ClassVar[str] = "update.ObjectIdentifier"
    __go_embedded__: ClassVar[tuple[str, ...]] = ("ResourceIdentifier",)
    ResourceIdentifier: ResourceIdentifier = field(default_factory=ResourceIdentifier)

    @classmethod
    def of(cls, *, kind: str = "", name: str = "", namespace: str = "", api_version: str = "") -> ObjectIdentifier:
        return cls(ResourceIdentifier(TypeMeta(api_version, kind), NameMeta(name, namespace)))


@dataclass(frozen=True)
class Change:
    """Flux's ``update.Change``: one scalar the automation rewrote, and the setter (policy) that did."""

    __go_type__: ClassVar[str] = "update.Change"
    OldValue: str = ""
    NewValue: str = ""
    Setter: str = ""


def _object_changes(items: Mapping[ObjectIdentifier, Sequence[Change]] | None = None) -> GoMap:
    return GoMap({k: list(v) for k, v in (items or {}).items()}, zero=[], go_type="update.ObjectChanges")


@dataclass(frozen=True)
class Result:
    """Flux's ``update.Result``; ``Changes`` and ``Objects`` are its methods."""

    __go_type__: ClassVar[str] = "update.Result"
    FileChanges: GoMap = field(
        default_factory=lambda: GoMap(zero=_object_changes(), go_type="map[string]update.ObjectChanges")
    )

    def Changes(self) -> list[Change]:
        seen: set[Change] = set()
        out: list[Change] = []
        for _file, objects in sorted_items(self.FileChanges):
            for _obj, changes in sorted_items(objects):
                for change in changes:
                    if change not in seen:
                        seen.add(change)
                        out.append(change)
        return out

    def Objects(self) -> GoMap:
        merged: dict[ObjectIdentifier, list[Change]] = {}
        for _file, objects in sorted_items(self.FileChanges):
            for obj, changes in objects.items():
                merged.setdefault(obj, []).extend(changes)
        return _object_changes(merged)


@dataclass(frozen=True)
class TemplateData:
    """Flux's ``source.TemplateData``, the dot of a commit message template."""

    __go_type__: ClassVar[str] = "source.TemplateData"
    AutomationObject: NamespacedName = field(default_factory=NamespacedName)
    Changed: Result = field(default_factory=Result)
    Values: GoMap = field(default_factory=lambda: GoMap(zero="", go_type="map[string]string"))


def flux_template_data(
    automation: Mapping[str, str],
    file_changes: Mapping[str, Mapping[ObjectIdentifier, Sequence[Change]]],
    values: Mapping[str, str] | None = None,
) -> TemplateData:
    """Flux's template data from plain values.

    ``automation`` has ``namespace`` and ``name`` (the ImageUpdateAutomation); ``file_changes``
    maps a file (relative to the repository root, ``/``-separated) to its objects and their
    changes; ``values`` is ``messageTemplateValues``.
    """
    files = GoMap(
        {path: _object_changes(objects) for path, objects in file_changes.items()},
        zero=_object_changes(),
        go_type="map[string]update.ObjectChanges",
    )
    return TemplateData(
        AutomationObject=NamespacedName(automation.get("namespace", ""), automation.get("name", "")),
        Changed=Result(files),
        Values=GoMap(dict(values or {}), zero="", go_type="map[string]string"),
    )
