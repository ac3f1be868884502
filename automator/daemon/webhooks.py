"""Registry push webhooks: authenticate a delivery and turn it into the repositories it names.

Pure: bytes and headers in, a :class:`Delivery` out (or :class:`WebhookRejected`). Each source
is read the way its registry documents it; every one is reduced to :class:`PushEvent` values
``(host, repository, tag, digest)`` so the service only has to match repositories to policies.

Authentication, per source (one shared secret, from ``--webhook-secret-file``):

=============  ======================================================================
source         accepted proof
=============  ======================================================================
github         ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`` (GHCR packages)
generic        ``X-Signature-256: sha256=<HMAC-SHA256 of the body>``
nexus          ``X-Nexus-Webhook-Signature: <HMAC-SHA1 hex>``, or the path token
distribution   ``Authorization: Bearer <secret>`` (or the bare secret), or the path token
acr, harbor    the same as distribution (Harbor's "Auth Header", ACR's custom headers)
jfrog          ``X-JFrog-Event-Auth``: the secret or its HMAC-SHA256, or the path token
dockerhub      the path token only: Docker Hub, Quay and Pub/Sub push cannot send headers
quay, gcr      the path token only
=============  ======================================================================

The path token is the secret itself as the last path segment: ``/hooks/dockerhub/<secret>``
(percent-encoding is undone). Paths are never logged and an unknown source is never echoed:
a secret put in the source's place must not come back in an answer or a log line.
:func:`preauthenticate` refuses what it can from the path and headers alone, so the listener
does not read bodies for strangers.

Deletes (Distribution and ACR ``delete``, Harbor ``DELETE_ARTIFACT``, Nexus ``DELETED``, JFrog
``deleted``) are reported as events without a tag: the repository must be listed again, a
retracted tag must stop being the choice.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from automator.errors import InvalidReference
from automator.httpd import PROOFS
from automator.policy.model import Policy
from automator.refs import DOCKER_HUB, parse_reference

SOURCES = ("distribution", "acr", "harbor", "github", "dockerhub", "quay", "gcr", "nexus", "jfrog", "generic")
_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
_MANIFEST_TYPES = ("manifest", "image.index", "manifest.list")


@dataclass(frozen=True)
class PushEvent:
    """One pushed tag (or, without a tag, a delete): ``host`` is None when the payload does not say."""

    host: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        name = f"{self.host}/{self.repository}" if self.host else self.repository
        return name + (f":{self.tag}" if self.tag else "")


@dataclass(frozen=True)
class Delivery:
    """What one authenticated request asks for."""

    source: str
    events: tuple[PushEvent, ...] = ()
    everything: bool = False  # a generic hook with no image: rescan every policy
    ignored: str = ""  # why the delivery triggers nothing (a ping, a pull, a delete...)


class WebhookRejected(Exception):
    """The request is not authentic or not readable; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- authentication


def _unknown(source: str) -> WebhookRejected:
    # never echo ``source``: a secret configured in its place would come back in the answer
    return WebhookRejected(404, f"unknown webhook source; known: {', '.join(SOURCES)}")


def _refused(source: str) -> WebhookRejected:
    return WebhookRejected(401, f"{source}: not authenticated; send {PROOFS[source].how}")


def preauthenticate(source: str, token: str, headers: Mapping[str, str], secret: bytes) -> WebhookRejected | None:
    """Refuse from the path and headers alone when that is possible; None: the body decides."""
    if source not in _PARSERS:
        return _unknown(source)
    return None if PROOFS[source].may_prove(token, headers, secret) else _refused(source)


def receive(source: str, token: str, headers: Mapping[str, str], body: bytes, secret: bytes) -> Delivery:
    """Authenticate and parse one delivery; ``headers`` have lower-case names."""
    parse = _PARSERS.get(source)
    if parse is None:
        raise _unknown(source)
    if not PROOFS[source].proved(token, headers, body, secret):
        raise _refused(source)
    if source == "github" and headers.get("x-github-event") == "ping":
        return Delivery(source, ignored="ping")
    if source == "generic" and not body.strip():
        return Delivery(source, everything=True)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WebhookRejected(400, f"{source}: the body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise WebhookRejected(400, f"{source}: the body is not a JSON object")
    try:
        return parse(doc, headers)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise WebhookRejected(400, f"{source}: unexpected payload shape ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------- payloads


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _split_host(name: str) -> tuple[str | None, str]:
    """``host/path`` -> (host, path) when the first segment looks like a host, else (None, name)."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower(), rest
    return None, name


def _distribution_events(events: Iterable[object]) -> Iterator[PushEvent]:
    for raw in events:
        event = _dict(raw)
        target = _dict(event.get("target"))
        media = str(target.get("mediaType", ""))
        host = str(_dict(event.get("request")).get("host") or "") or None
        if event.get("action") == "delete" and target.get("repository"):
            yield PushEvent(host, str(target["repository"]))
            continue
        if event.get("action") != "push" or not target.get("tag"):
            continue  # pulls, mounts, blobs and untagged (per-platform) manifests
        if media and not any(kind in media for kind in _MANIFEST_TYPES):
            continue
        yield PushEvent(host, str(target["repository"]), str(target["tag"]), target.get("digest") or None)


def _distribution(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    events = doc.get("events") if "events" in doc else [doc]  # ACR posts one event, not an envelope
    if not isinstance(events, list):
        raise TypeError("'events' is not a list")
    found = tuple(_distribution_events(events))
    return Delivery("distribution", found, ignored="" if found else "no tagged manifest push or delete in the events")


def _acr(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    if doc.get("action") == "ping":
        return Delivery("acr", ignored="ping")
    if doc.get("action") not in ("push", "delete"):
        return Delivery("acr", ignored=f"action {doc.get('action')!r}")
    events = _distribution(doc, headers).events
    return Delivery("acr", events, ignored="" if events else "no tagged manifest push or delete")


def _dockerhub(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    name = str(doc["repository"]["repo_name"])
    tag = _dict(doc.get("push_data")).get("tag")
    if "/" not in name:
        name = f"library/{name}"
    return Delivery("dockerhub", (PushEvent(DOCKER_HUB, name, str(tag) if tag else None),))


def _quay(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    host, _ = _split_host(str(doc.get("docker_url", "")))
    tags = doc.get("updated_tags") or []
    names = list(tags) if isinstance(tags, list | dict) else []  # a list, or (older) tag -> image id
    repository = str(doc["repository"])
    events = tuple(PushEvent(host or "quay.io", repository, str(t)) for t in names) or (
        PushEvent(host or "quay.io", repository),
    )
    return Delivery("quay", events)


def _harbor(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    kind = str(doc.get("type", ""))
    data = _dict(doc.get("event_data") or doc.get("data"))
    deleted = kind in ("DELETE_ARTIFACT", "harbor.artifact.deleted")
    if kind not in ("PUSH_ARTIFACT", "harbor.artifact.pushed") and not deleted:
        return Delivery("harbor", ignored=f"event type {kind!r}")
    repository = str(data["repository"]["repo_full_name"])
    if deleted:
        hosts = {_split_host(str(_dict(r).get("resource_url", "")))[0] for r in data.get("resources") or []}
        return Delivery("harbor", tuple(PushEvent(h, repository) for h in sorted(hosts or {None}, key=str)))
    events = []
    for raw in data.get("resources") or []:
        res = _dict(raw)
        host, _ = _split_host(str(res.get("resource_url", "")))
        tag = res.get("tag")
        if tag and not str(tag).startswith("sha256:"):
            events.append(PushEvent(host, repository, str(tag), res.get("digest") or None))
    return Delivery("harbor", tuple(events), ignored="" if events else "no tag in the resources")


def _github(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    event = headers.get("x-github-event", "")
    if event not in ("package", "registry_package"):
        return Delivery("github", ignored=f"event {event!r}")
    package = _dict(doc.get(event))
    if doc.get("action") not in ("published", "updated"):
        return Delivery("github", ignored=f"action {doc.get('action')!r}")
    if str(package.get("package_type", "")).lower() != "container":
        return Delivery("github", ignored=f"package type {package.get('package_type')!r}")
    owner = _dict(package.get("owner")).get("login")
    if not isinstance(owner, str) or not owner or not isinstance(package.get("name"), str):
        raise KeyError("package.owner.login and package.name")
    repository = f"{owner}/{package['name']}".lower()
    version = _dict(package.get("package_version"))
    tag = _dict(_dict(version.get("container_metadata")).get("tag"))
    host, _ = _split_host(str(version.get("package_url", "")))
    name = str(tag.get("name") or "")
    if not name:
        return Delivery("github", ignored="an untagged version")
    return Delivery("github", (PushEvent(host or "ghcr.io", repository, name, tag.get("digest") or None),))


def _gcr(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    message = doc.get("message")
    if isinstance(message, dict):  # a Pub/Sub push envelope; without it the payload was unwrapped
        try:
            doc = json.loads(base64.b64decode(str(message.get("data", "")), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"message.data is not base64 JSON: {exc}") from None
        doc = _dict(doc)
    if doc.get("action") != "INSERT":
        return Delivery("gcr", ignored=f"action {doc.get('action')!r}")
    if not doc.get("tag"):
        return Delivery("gcr", ignored="a digest without a tag")
    try:
        ref = parse_reference(str(doc["tag"]))
        digest = parse_reference(str(doc["digest"])).digest if doc.get("digest") else None
    except InvalidReference as exc:
        raise ValueError(f"tag or digest: {exc}") from None
    return Delivery("gcr", (PushEvent(ref.domain, ref.path, ref.tag, digest),))


def _nexus(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    component = _dict(doc.get("component"))
    action = doc.get("action")
    if action not in ("CREATED", "UPDATED", "DELETED") or str(component.get("format", "")) != "docker":
        return Delivery("nexus", ignored=f"{action!r} of a {component.get('format')!r} component")
    name = str(component["name"])
    tag = None if action == "DELETED" else str(component.get("version") or "") or None
    events = [PushEvent(None, name, tag)]
    if doc.get("repositoryName"):  # a path-routed Nexus serves it as <repository>/<name>
        events.append(PushEvent(None, f"{doc['repositoryName']}/{name}", tag))
    return Delivery("nexus", tuple(events))


def _jfrog(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    kind = doc.get("event_type")
    if doc.get("domain") != "docker" or kind not in ("pushed", "deleted"):
        return Delivery("jfrog", ignored=f"{doc.get('domain')!r} {kind!r}")
    data = _dict(doc.get("data"))
    digest = f"sha256:{data['sha256']}" if data.get("sha256") and kind == "pushed" else None
    name = str(data["image_name"])
    tag = str(data.get("tag") or "") or None if kind == "pushed" else None
    events = [PushEvent(None, name, tag, digest)]
    if data.get("repo_key"):  # the repository-path access method serves it as <repo_key>/<image>
        events.append(PushEvent(None, f"{data['repo_key']}/{name}", tag, digest))
    return Delivery("jfrog", tuple(events))


def _generic(doc: dict[str, Any], headers: Mapping[str, str]) -> Delivery:
    """``{"image": "host/repo[:tag]"}`` or ``{"images": [...]}``; ``{}`` rescans everything."""
    images = doc.get("images") or []
    if not isinstance(images, list):
        raise TypeError("'images' is not a list")
    names = ([doc["image"]] if "image" in doc else []) + images
    if not names:
        return Delivery("generic", everything=True)
    events = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"image {name!r} is not a string")
        try:
            ref = parse_reference(name)
        except InvalidReference as exc:
            raise ValueError(f"image {name!r}: {exc}") from None
        events.append(PushEvent(ref.domain, ref.path, ref.tag, ref.digest))
    return Delivery("generic", tuple(events))


_PARSERS: dict[str, Callable[[dict[str, Any], Mapping[str, str]], Delivery]] = {
    "distribution": _distribution,
    "acr": _acr,
    "harbor": _harbor,
    "github": _github,
    "dockerhub": _dockerhub,
    "quay": _quay,
    "gcr": _gcr,
    "nexus": _nexus,
    "jfrog": _jfrog,
    "generic": _generic,
}


# --------------------------------------------------------------------------- matching


def _host(name: str | None) -> str | None:
    if name is None:
        return None
    name = name.lower()
    return DOCKER_HUB if name in _HUB_HOSTS else name


def affected(events: Iterable[PushEvent], policies: Iterable[Policy]) -> set[str]:
    """The repositories (``ImageRef.repository``) of ``policies`` that ``events`` name.

    A repository path matches on its own when the payload names no host, or names a host no
    policy uses for that path (the host a registry reports is the one the pusher dialled,
    often an internal name); otherwise the host must match too.
    """
    by_path: dict[str, set[tuple[str, str]]] = {}
    for policy in policies:
        by_path.setdefault(policy.image.path, set()).add((policy.image.domain, policy.image.repository))
    out: set[str] = set()
    for event in events:
        candidates = by_path.get(event.repository.strip("/"), set())
        host = _host(event.host)
        exact = {repo for domain, repo in candidates if domain == host}
        out |= exact or {repo for _, repo in candidates}
    return out
