"""Registry push webhooks: who may call, what each registry's payload names, which policies it wakes.

Payloads follow each registry's public documentation (Docker distribution's notification
envelope, ACR, Harbor default and CloudEvents formats, GitHub ``package``/``registry_package``,
Docker Hub, Quay, Artifact Registry's Pub/Sub ``gcr`` topic, Nexus, JFrog, and our generic hook).
Signatures are computed here with :mod:`hmac` rather than with the module's own helper, so a
wrong algorithm or encoding in the module cannot agree with itself. Header names are given as
the registries send them and lower-cased the way the HTTP layer does before ``receive`` sees them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import pytest

from automator.daemon.webhooks import (
    SOURCES,
    Delivery,
    PushEvent,
    WebhookRejected,
    affected,
    preauthenticate,
    receive,
)
from automator.policy import Policy, SemverChoice, SourceLocation
from automator.refs import parse_reference

SECRET = b"wh-5ecret-7f3a9c"
WRONG = "wh-5ecret-old"  # a plausible stale secret: it must be refused and never echoed back

DIGEST = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"
DIGEST_2 = "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"
JFROG_SHA = "35c4a2c15539c6c1e4e5fa4e554dac323ad0107d8eb5c582d6ff386b383b7dce"

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LAYER = "application/vnd.docker.container.image.rootfs.diff+x-gtar"


# --------------------------------------------------------------------------- helpers


def sign(body: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(SECRET, body, getattr(hashlib, algorithm)).hexdigest()


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode()


def as_received(headers: Mapping[str, str]) -> dict[str, str]:
    """What the HTTP layer hands over: the same headers with lower-case names."""
    return {name.lower(): value for name, value in headers.items()}


def deliver(source: str, body: bytes, headers: Mapping[str, str] | None = None, token: str = "") -> Delivery:
    return receive(source, token, as_received(headers or {}), body, SECRET)


def proof(source: str, body: bytes) -> tuple[dict[str, str], str]:
    """Valid credentials for ``source``: (headers, path token)."""
    if source == "github":
        return {"X-GitHub-Event": "package", "X-Hub-Signature-256": f"sha256={sign(body)}"}, ""
    if source == "generic":
        return {"X-Signature-256": f"sha256={sign(body)}"}, ""
    return {}, SECRET.decode()


def accepted(source: str, payload: object) -> Delivery:
    body = encode(payload)
    headers, token = proof(source, body)
    return deliver(source, body, headers, token)


def rejection(source: str, body: bytes, headers: Mapping[str, str] | None = None, token: str = "") -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        deliver(source, body, headers, token)
    return caught.value


# --------------------------------------------------------------------------- payloads


def distribution_event(
    action: str = "push",
    *,
    repository: str = "team/app",
    tag: str | None = "1.4.2",
    media: str = DOCKER_V2,
    digest: str = DIGEST,
    host: str = "registry.example.com:5000",
) -> dict[str, Any]:
    """One event of the registry's ``application/vnd.docker.distribution.events.v1+json`` envelope."""
    target: dict[str, Any] = {
        "mediaType": media,
        "size": 708,
        "digest": digest,
        "length": 708,
        "repository": repository,
        "url": f"https://{host}/v2/{repository}/manifests/{digest}",
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
        "timestamp": "2024-03-09T14:44:26.402973972Z",
        "action": action,
        "target": target,
        "request": {
            "id": "6df24a34-0959-4923-81ca-14f09767db19",
            "addr": "10.0.3.17:42961",
            "host": host,
            "method": {"pull": "GET", "delete": "DELETE"}.get(action, "PUT"),
            "useragent": "docker/25.0.3 go/go1.21.6",
        },
        "actor": {"name": "ci-bot"},
        "source": {"addr": "registry-0:5000", "instanceID": "a53db899-3b4b-4a62-a067-8dd013beaca4"},
    }


def blob_push(media: str = "application/octet-stream") -> dict[str, Any]:
    event = distribution_event(tag=None, media=media, digest=DIGEST_2)
    event["target"]["url"] = f"https://registry.example.com:5000/v2/team/app/blobs/{DIGEST_2}"
    return event


def acr_event(action: str = "push", tag: str | None = "v1") -> dict[str, Any]:
    """ACR posts one event object, not an envelope."""
    target: dict[str, Any] = {
        "mediaType": DOCKER_V2,
        "size": 524,
        "digest": DIGEST,
        "length": 524,
        "repository": "hello-world",
    }
    if tag is not None:
        target["tag"] = tag
    return {
        "id": "cb8c3971-9adc-488b-bdd8-43cbb4974ff5",
        "timestamp": "2024-11-17T16:52:01.343145347Z",
        "action": action,
        "target": target,
        "request": {
            "id": "3cbb6949-7549-4fa1-86cd-a6d5451dffc7",
            "host": "myregistry.azurecr.io",
            "method": "PUT",
            "useragent": "docker/24.0.7 go/go1.20.10",
        },
    }


def acr_ping() -> dict[str, Any]:
    return {
        "id": "0a0e3b4c-9b5f-4c3c-a0f3-3e5d4b0c9a11",
        "timestamp": "2024-11-17T16:50:00.000000000Z",
        "action": "ping",
        "request": {"id": "", "host": "myregistry.azurecr.io", "method": "", "useragent": ""},
    }


def harbor_resources(tag: str, url: str) -> dict[str, Any]:
    return {
        "resources": [{"digest": DIGEST_2, "tag": tag, "resource_url": url}],
        "repository": {
            "date_created": 1586922308,
            "name": "debian",
            "namespace": "test-webhook",
            "repo_full_name": "test-webhook/debian",
            "repo_type": "private",
        },
    }


def harbor_default(
    kind: str = "PUSH_ARTIFACT", tag: str = "latest", url: str = "hub.harbor.com/test-webhook/debian:latest"
) -> dict[str, Any]:
    return {"type": kind, "occur_at": 1586922308, "operator": "admin", "event_data": harbor_resources(tag, url)}


def harbor_cloudevent(
    kind: str = "harbor.artifact.pushed", tag: str = "latest", url: str = "hub.harbor.com/test-webhook/debian:latest"
) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "requestid": "2eedfab8-61d3-4f3c-8ec3-8f82d1ec4c84",
        "id": "4b2f89a6-548d-4c12-9993-a1f5790b97d2",
        "source": "/projects/1/webhook/policies/3",
        "type": kind,
        "datacontenttype": "application/json",
        "time": "2024-03-06T06:08:43Z",
        "data": harbor_resources(tag, url),
        "operator": "robot$ci",
    }


def github_package(
    event: str = "package",
    *,
    action: str = "published",
    package_type: str = "CONTAINER",
    tag: str = "1.2.3",
    owner: str = "Octo-Org",
    name: str = "Hello-World",
) -> dict[str, Any]:
    """A ``package`` or ``registry_package`` delivery for a GHCR container version."""
    url = f"ghcr.io/{owner.lower()}/{name.lower()}" + (f":{tag}" if tag else "")
    package = {
        "id": 1913456,
        "name": name,
        "namespace": owner,
        "description": "",
        "ecosystem": package_type,
        "package_type": package_type,
        "html_url": f"https://github.com/orgs/{owner}/packages/container/package/{name}",
        "created_at": "2024-05-02T10:11:12Z",
        "updated_at": "2024-05-02T10:11:12Z",
        "owner": {"login": owner, "id": 9919, "type": "Organization"},
        "package_version": {
            "id": 211587413,
            "version": DIGEST,
            "name": DIGEST,
            "description": "",
            "package_url": url,
            "container_metadata": {
                "tag": {"name": tag, "digest": DIGEST},
                "labels": {"description": "", "source": f"https://github.com/{owner}/{name}"},
                "manifest": {"digest": DIGEST, "media_type": OCI_MANIFEST},
            },
        },
        "registry": {
            "about_url": "https://docs.github.com/packages/learn-github-packages/introduction-to-github-packages",
            "name": "GitHub CONTAINER registry",
            "type": "CONTAINER",
            "url": f"https://ghcr.io/{owner.lower()}",
            "vendor": "GitHub Inc",
        },
    }
    return {
        "action": action,
        event: package,
        "repository": {"full_name": f"{owner}/{name}"},
        "organization": {"login": owner},
        "sender": {"login": "octocat"},
    }


def dockerhub_push(repo_name: str = "svendowideit/testhook", tag: str = "latest") -> dict[str, Any]:
    namespace, _, name = repo_name.rpartition("/")
    return {
        "callback_url": f"https://registry.hub.docker.com/u/{repo_name}/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
        "push_data": {"pushed_at": 1417566161, "pusher": "trustedbuilder", "tag": tag},
        "repository": {
            "comment_count": 0,
            "date_created": 1417494799,
            "description": "",
            "is_official": not namespace,
            "is_private": False,
            "is_trusted": True,
            "name": name,
            "namespace": namespace or "library",
            "owner": namespace or "library",
            "repo_name": repo_name,
            "repo_url": f"https://registry.hub.docker.com/u/{repo_name}/",
            "star_count": 0,
            "status": "Active",
        },
    }


def quay_push(updated_tags: object, docker_url: str = "quay.io/mynamespace/repository") -> dict[str, Any]:
    return {
        "name": "repository",
        "repository": "mynamespace/repository",
        "namespace": "mynamespace",
        "docker_url": docker_url,
        "homepage": "https://quay.io/repository/mynamespace/repository",
        "updated_tags": updated_tags,
    }


def gcr_message(**fields: str) -> dict[str, str]:
    return dict(fields)


def pubsub_envelope(message: object) -> dict[str, Any]:
    data = base64.b64encode(json.dumps(message).encode()).decode()
    return {
        "message": {
            "attributes": {},
            "data": data,
            "messageId": "2070443601311540",
            "message_id": "2070443601311540",
            "publishTime": "2024-02-26T19:13:55.749Z",
            "publish_time": "2024-02-26T19:13:55.749Z",
        },
        "subscription": "projects/my-project/subscriptions/automator-push",
    }


def nexus_component(action: str = "CREATED", fmt: str = "docker", name: str = "team/app") -> dict[str, Any]:
    return {
        "timestamp": "2024-11-10T23:57:49.664+0000",
        "nodeId": "52905B51-085CCABB-CEBBEAAD-16795588-FC927D93",
        "initiator": "ci/10.0.3.17",
        "repositoryName": "docker-hosted",
        "action": action,
        "component": {
            "id": "08909bf0c86cf6c9600aade89e1c5e25",
            "componentId": "ZG9ja2VyLWhvc3RlZDowODkwOWJmMGM4NmNmNmM5NjAwYWFkZTg5ZTFjNWUyNQ",
            "format": fmt,
            "name": name,
            "group": None,
            "version": "1.2.3",
        },
    }


def jfrog_event(domain: str = "docker", event_type: str = "pushed") -> dict[str, Any]:
    return {
        "domain": domain,
        "event_type": event_type,
        "data": {
            "repo_key": "docker-local",
            "event_type": event_type,
            "path": "library/ubuntu/latest/list.manifest.json",
            "name": "list.manifest.json",
            "sha256": JFROG_SHA,
            "size": 1206,
            "image_name": "library/ubuntu",
            "tag": "latest",
            "platforms": [{"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux"}],
        },
        "subscription_key": "automator",
        "jpd_origin": "https://example.jfrog.io",
        "source": "jfrog/ci@example.com",
    }


# --------------------------------------------------------------------------- distribution


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([blob_push()], (), id="blob-octet-stream"),
        pytest.param([blob_push(LAYER)], (), id="blob-layer-media-type"),
        pytest.param(
            [distribution_event()],
            (PushEvent("registry.example.com:5000", "team/app", "1.4.2", DIGEST),),
            id="tagged-manifest",
        ),
        pytest.param(
            [distribution_event(media=OCI_MANIFEST)],
            (PushEvent("registry.example.com:5000", "team/app", "1.4.2", DIGEST),),
            id="oci-manifest",
        ),
        pytest.param(
            [distribution_event(media=OCI_INDEX, tag="2.0.0")],
            (PushEvent("registry.example.com:5000", "team/app", "2.0.0", DIGEST),),
            id="oci-index",
        ),
        pytest.param(
            [distribution_event(media=DOCKER_LIST, tag="2.0.0")],
            (PushEvent("registry.example.com:5000", "team/app", "2.0.0", DIGEST),),
            id="docker-manifest-list",
        ),
        pytest.param([distribution_event("pull")], (), id="pull"),
        pytest.param([distribution_event("mount", tag=None, media=LAYER)], (), id="mount"),
        # a delete names no tag: the repository is listed again, a retracted tag stops being chosen
        pytest.param(
            [distribution_event("delete", tag=None)],
            (PushEvent("registry.example.com:5000", "team/app"),),
            id="delete",
        ),
        pytest.param([distribution_event(tag=None)], (), id="untagged-manifest"),
        pytest.param([], (), id="empty-envelope"),
        pytest.param(
            [
                blob_push(),
                blob_push(),
                distribution_event(tag=None, media=OCI_MANIFEST, digest=DIGEST_2),  # one platform, by digest
                distribution_event(media=OCI_INDEX, tag="3.1.0"),
                distribution_event("pull", repository="team/other"),
                distribution_event(repository="team/worker", tag="3.1.0", digest=DIGEST_2),
            ],
            (
                PushEvent("registry.example.com:5000", "team/app", "3.1.0", DIGEST),
                PushEvent("registry.example.com:5000", "team/worker", "3.1.0", DIGEST_2),
            ),
            id="buildx-push-several-events",
        ),
    ],
)
def test_distribution_envelope(events: list[dict[str, Any]], expected: tuple[PushEvent, ...]) -> None:
    delivery = accepted("distribution", {"events": events})
    assert delivery.source == "distribution"
    assert delivery.events == expected
    assert bool(delivery.ignored) == (not expected)  # a delivery that triggers nothing says why
    assert not delivery.everything


# --------------------------------------------------------------------------- header / path-token auth

TOKEN_SOURCES = {
    "distribution": {"events": [distribution_event()]},
    "acr": acr_event(),
    "harbor": harbor_default(),
}


@pytest.mark.parametrize("source", sorted(TOKEN_SOURCES))
@pytest.mark.parametrize(
    ("headers", "token", "ok"),
    [
        pytest.param({"Authorization": f"Bearer {SECRET.decode()}"}, "", True, id="bearer"),
        pytest.param({"Authorization": f"bearer  {SECRET.decode()} "}, "", True, id="bearer-lowercase-padded"),
        pytest.param({"Authorization": SECRET.decode()}, "", True, id="bare-secret"),
        pytest.param({}, SECRET.decode(), True, id="path-token"),
        pytest.param({"Authorization": f"Bearer {WRONG}"}, "", False, id="wrong-bearer"),
        pytest.param({"Authorization": WRONG}, "", False, id="wrong-bare"),
        pytest.param({"Authorization": f"Basic {SECRET.decode()}"}, "", False, id="basic-scheme"),
        pytest.param({}, WRONG, False, id="wrong-path-token"),
        pytest.param({}, "", False, id="nothing"),
        pytest.param({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "", False, id="other-source-header"),
    ],
)
def test_secret_in_authorization_or_path(source: str, headers: dict[str, str], token: str, ok: bool) -> None:
    body = encode(TOKEN_SOURCES[source])
    if ok:
        assert deliver(source, body, headers, token).events
    else:
        error = rejection(source, body, headers, token)
        assert error.status == 401
        assert source in str(error)
        assert WRONG not in str(error) and SECRET.decode() not in str(error)


# --------------------------------------------------------------------------- acr


@pytest.mark.parametrize(
    ("payload", "expected", "ignored"),
    [
        pytest.param(acr_event(), (PushEvent("myregistry.azurecr.io", "hello-world", "v1", DIGEST),), "", id="push"),
        pytest.param(acr_ping(), (), "ping", id="ping"),
        pytest.param(
            acr_event("delete", tag=None), (PushEvent("myregistry.azurecr.io", "hello-world"),), "", id="delete"
        ),
        pytest.param(acr_event("chart_push"), (), "action 'chart_push'", id="chart-push"),
        pytest.param(acr_event(tag=None), (), "no tagged manifest push or delete", id="push-by-digest"),
    ],
)
def test_acr(payload: dict[str, Any], expected: tuple[PushEvent, ...], ignored: str) -> None:
    delivery = deliver("acr", encode(payload), {"Authorization": f"Bearer {SECRET.decode()}"})
    assert (delivery.source, delivery.events, delivery.ignored) == ("acr", expected, ignored)


# --------------------------------------------------------------------------- harbor


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            harbor_default(),
            (PushEvent("hub.harbor.com", "test-webhook/debian", "latest", DIGEST_2),),
            id="default-push",
        ),
        pytest.param(
            harbor_cloudevent(),
            (PushEvent("hub.harbor.com", "test-webhook/debian", "latest", DIGEST_2),),
            id="cloudevents-push",
        ),
        pytest.param(
            harbor_default(tag="12.5", url="harbor.example.com:8443/test-webhook/debian:12.5"),
            (PushEvent("harbor.example.com:8443", "test-webhook/debian", "12.5", DIGEST_2),),
            id="host-with-port",
        ),
        pytest.param(harbor_default("PULL_ARTIFACT"), (), id="pull"),
        pytest.param(
            harbor_default("DELETE_ARTIFACT"), (PushEvent("hub.harbor.com", "test-webhook/debian"),), id="delete"
        ),
        pytest.param(harbor_cloudevent("harbor.artifact.pulled"), (), id="cloudevents-pull"),
        pytest.param(
            harbor_default(tag=DIGEST_2, url=f"hub.harbor.com/test-webhook/debian@{DIGEST_2}"),
            (),
            id="pushed-by-digest",
        ),
        pytest.param(
            harbor_cloudevent(tag=DIGEST_2, url=f"hub.harbor.com/test-webhook/debian@{DIGEST_2}"),
            (),
            id="cloudevents-pushed-by-digest",
        ),
    ],
)
def test_harbor(payload: dict[str, Any], expected: tuple[PushEvent, ...]) -> None:
    # Harbor's "Auth Header" field is sent verbatim as the Authorization header.
    delivery = deliver("harbor", encode(payload), {"Authorization": SECRET.decode()})
    assert delivery.source == "harbor"
    assert delivery.events == expected
    assert bool(delivery.ignored) == (not expected)


# --------------------------------------------------------------------------- github (GHCR)


def github(payload: object, event: str) -> Delivery:
    body = encode(payload)
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature": f"sha1={sign(body, 'sha1')}",
        "X-Hub-Signature-256": f"sha256={sign(body)}",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "Content-Type": "application/json",
    }
    return deliver("github", body, headers)


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        pytest.param(
            "package",
            github_package(),
            (PushEvent("ghcr.io", "octo-org/hello-world", "1.2.3", DIGEST),),
            id="package-published",
        ),
        pytest.param(
            "package",
            github_package(action="updated", tag="1.2.4"),
            (PushEvent("ghcr.io", "octo-org/hello-world", "1.2.4", DIGEST),),
            id="package-updated",
        ),
        pytest.param(
            "registry_package",
            github_package("registry_package", package_type="container", owner="octocat", name="api"),
            (PushEvent("ghcr.io", "octocat/api", "1.2.3", DIGEST),),
            id="registry-package-published",
        ),
        pytest.param("package", github_package(tag=""), (), id="untagged-version"),
        pytest.param("package", github_package(package_type="npm"), (), id="npm-package"),
        pytest.param("registry_package", github_package("registry_package", package_type="npm"), (), id="npm-registry"),
        pytest.param("push", {"ref": "refs/heads/main", "after": "0" * 40}, (), id="push-event"),
    ],
)
def test_github(event: str, payload: dict[str, Any], expected: tuple[PushEvent, ...]) -> None:
    delivery = github(payload, event)
    assert delivery.source == "github"
    assert delivery.events == expected
    assert bool(delivery.ignored) == (not expected)


def test_github_ping_is_acknowledged_and_ignored() -> None:
    ping = {"zen": "Design for failure.", "hook_id": 292430182, "hook": {"type": "Organization", "active": True}}
    assert github(ping, "ping") == Delivery("github", ignored="ping")


@pytest.mark.parametrize(
    ("signature", "token"),
    [
        pytest.param(None, SECRET.decode(), id="path-token-alone"),
        pytest.param("SIGNED_WITH_WRONG_SECRET", "", id="wrong-secret"),
        pytest.param("SIGNATURE_OF_BODY", "", id="no-sha256-prefix"),
        pytest.param("sha256=", "", id="empty-digest"),
        pytest.param(None, "", id="missing"),
    ],
)
def test_github_needs_the_body_signature(signature: str | None, token: str) -> None:
    body = encode(github_package())
    headers = {"X-GitHub-Event": "package", "Authorization": f"Bearer {SECRET.decode()}"}
    if signature == "SIGNATURE_OF_BODY":
        headers["X-Hub-Signature-256"] = sign(body)
    elif signature == "SIGNED_WITH_WRONG_SECRET":
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(WRONG.encode(), body, hashlib.sha256).hexdigest()
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    error = rejection("github", body, headers, token)
    assert error.status == 401
    assert "X-Hub-Signature-256" in str(error)


def test_github_signature_covers_the_exact_body() -> None:
    body = encode(github_package())
    tampered = body.replace(b"1.2.3", b"6.6.6")
    headers = {"X-GitHub-Event": "package", "X-Hub-Signature-256": f"sha256={sign(body)}"}
    assert deliver("github", body, headers).events[0].tag == "1.2.3"
    assert rejection("github", tampered, headers).status == 401


# --------------------------------------------------------------------------- dockerhub


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(dockerhub_push(), PushEvent("docker.io", "svendowideit/testhook", "latest"), id="user-repo"),
        pytest.param(
            dockerhub_push("nginx", "1.27.0"), PushEvent("docker.io", "library/nginx", "1.27.0"), id="official"
        ),
    ],
)
def test_dockerhub(payload: dict[str, Any], expected: PushEvent) -> None:
    delivery = deliver("dockerhub", encode(payload), token=SECRET.decode())
    assert (delivery.source, delivery.events) == ("dockerhub", (expected,))


@pytest.mark.parametrize("source", ["dockerhub", "quay", "gcr"])
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Authorization": f"Bearer {SECRET.decode()}"}, id="bearer"),
        pytest.param({"Authorization": SECRET.decode()}, id="bare-secret"),
        pytest.param({"X-JFrog-Event-Auth": SECRET.decode()}, id="jfrog-header"),
        pytest.param({}, id="nothing"),
    ],
)
def test_header_only_sources_need_the_path_token(source: str, headers: dict[str, str]) -> None:
    payloads = {
        "dockerhub": dockerhub_push(),
        "quay": quay_push(["latest"]),
        "gcr": pubsub_envelope(gcr_message(action="INSERT", tag="gcr.io/p/app:1")),
    }
    error = rejection(source, encode(payloads[source]), headers)
    assert error.status == 401
    assert str(error) == f"{source}: not authenticated; send the secret as the last path segment"
    assert deliver(source, encode(payloads[source]), token=SECRET.decode()).events  # the same body, with the token


# --------------------------------------------------------------------------- quay


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            quay_push(["latest", "v2.1"]),
            (
                PushEvent("quay.io", "mynamespace/repository", "latest"),
                PushEvent("quay.io", "mynamespace/repository", "v2.1"),
            ),
            id="tags-list",
        ),
        pytest.param(
            quay_push({"latest": "b1c5d4c1e9f3", "v2.1": "b1c5d4c1e9f3"}),
            (
                PushEvent("quay.io", "mynamespace/repository", "latest"),
                PushEvent("quay.io", "mynamespace/repository", "v2.1"),
            ),
            id="tags-object",
        ),
        pytest.param(
            quay_push(["v2.1"], docker_url="quay.example.com:8443/mynamespace/repository"),
            (PushEvent("quay.example.com:8443", "mynamespace/repository", "v2.1"),),
            id="self-hosted-docker-url",
        ),
    ],
)
def test_quay(payload: dict[str, Any], expected: tuple[PushEvent, ...]) -> None:
    delivery = deliver("quay", encode(payload), token=SECRET.decode())
    assert (delivery.source, delivery.events) == ("quay", expected)


# --------------------------------------------------------------------------- gcr / Artifact Registry


AR_INSERT = gcr_message(
    action="INSERT",
    digest=f"us-docker.pkg.dev/p/r/app@{DIGEST}",
    tag="us-docker.pkg.dev/p/r/app:1.2",
)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(pubsub_envelope(AR_INSERT), ("us-docker.pkg.dev", "p/r/app", "1.2"), id="pubsub-insert"),
        pytest.param(AR_INSERT, ("us-docker.pkg.dev", "p/r/app", "1.2"), id="unwrapped-insert"),
        pytest.param(
            pubsub_envelope(gcr_message(action="INSERT", tag="gcr.io/my-project/hello-world:1.1")),
            ("gcr.io", "my-project/hello-world", "1.1"),
            id="container-registry-insert",
        ),
        pytest.param(
            pubsub_envelope(gcr_message(action="DELETE", tag="us-docker.pkg.dev/p/r/app:1.2")), None, id="delete"
        ),
        pytest.param(
            pubsub_envelope(gcr_message(action="INSERT", digest=f"us-docker.pkg.dev/p/r/app@{DIGEST}")),
            None,
            id="digest-only",
        ),
    ],
)
def test_gcr(payload: dict[str, Any], expected: tuple[str, str, str] | None) -> None:
    delivery = deliver("gcr", encode(payload), token=SECRET.decode())
    assert delivery.source == "gcr"
    # host, repository and tag only: whether the message's ``digest`` should be carried is open.
    assert [(e.host, e.repository, e.tag) for e in delivery.events] == ([expected] if expected else [])
    assert bool(delivery.ignored) == (expected is None)


# --------------------------------------------------------------------------- nexus


NEXUS = PushEvent(None, "team/app", "1.2.3")
NEXUS_ROUTED = PushEvent(None, "docker-hosted/team/app", "1.2.3")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # a path-routed Nexus serves the image as <repositoryName>/<name>: both are reported
        pytest.param(nexus_component(), (NEXUS, NEXUS_ROUTED), id="docker-created"),
        pytest.param(nexus_component("UPDATED"), (NEXUS, NEXUS_ROUTED), id="docker-updated"),
        pytest.param(
            nexus_component("DELETED"),
            (PushEvent(None, "team/app"), PushEvent(None, "docker-hosted/team/app")),
            id="docker-deleted",
        ),
        pytest.param(nexus_component(fmt="npm", name="angular2"), (), id="npm-created"),
    ],
)
def test_nexus(payload: dict[str, Any], expected: tuple[PushEvent, ...]) -> None:
    body = encode(payload)
    headers = {"X-Nexus-Webhook-Id": "rm:repository:component", "X-Nexus-Webhook-Signature": sign(body, "sha1")}
    delivery = deliver("nexus", body, headers)
    assert (delivery.source, delivery.events) == ("nexus", expected)
    assert bool(delivery.ignored) == (not expected)


SIGNED_SOURCES: dict[str, tuple[str, str, dict[str, Any]]] = {
    # source: (header, HMAC algorithm the registry documents, payload)
    "nexus": ("X-Nexus-Webhook-Signature", "sha1", nexus_component()),
    "jfrog": ("X-JFrog-Event-Auth", "sha256", jfrog_event()),
}


@pytest.mark.parametrize("source", sorted(SIGNED_SOURCES))
@pytest.mark.parametrize(
    ("offer", "token", "ok"),
    [
        pytest.param("native", "", True, id="native-proof"),
        pytest.param("", SECRET.decode(), True, id="path-token"),
        pytest.param("hmac-wrong-secret", "", False, id="hmac-of-wrong-secret"),
        pytest.param("hmac-other-algorithm", "", False, id="hmac-other-algorithm"),
        pytest.param("", WRONG, False, id="wrong-path-token"),
        pytest.param("", "", False, id="nothing"),
    ],
)
def test_nexus_and_jfrog_auth(source: str, offer: str, token: str, ok: bool) -> None:
    header, native, payload = SIGNED_SOURCES[source]
    body = encode(payload)
    other = "sha256" if native == "sha1" else "sha1"
    values = {
        "native": sign(body, native),
        "hmac-wrong-secret": hmac.new(WRONG.encode(), body, getattr(hashlib, native)).hexdigest(),
        "hmac-other-algorithm": sign(body, other),
    }
    headers = {header: values[offer]} if offer else {}
    if ok:
        assert deliver(source, body, headers, token).events
    else:
        error = rejection(source, body, headers, token)
        assert (error.status, str(error).split(":")[0]) == (401, source)


# --------------------------------------------------------------------------- jfrog


@pytest.mark.parametrize(
    "offered",
    [pytest.param("raw", id="raw-secret"), pytest.param("hmac", id="hmac-sha256")],
)
def test_jfrog_pushed(offered: str) -> None:
    body = encode(jfrog_event())
    auth = SECRET.decode() if offered == "raw" else sign(body)
    delivery = deliver("jfrog", body, {"X-JFrog-Event-Auth": auth})
    # the repository-path access method serves the image as <repo_key>/<image_name>: both are reported
    assert delivery.events == (
        PushEvent(None, "library/ubuntu", "latest", f"sha256:{JFROG_SHA}"),
        PushEvent(None, "docker-local/library/ubuntu", "latest", f"sha256:{JFROG_SHA}"),
    )


@pytest.mark.parametrize(
    ("domain", "event_type"),
    [("docker", "promoted"), ("artifact", "deployed")],
)
def test_jfrog_other_events_are_ignored(domain: str, event_type: str) -> None:
    delivery = accepted("jfrog", jfrog_event(domain, event_type))
    assert delivery.events == ()
    assert delivery.ignored


def test_jfrog_deletes_name_the_repository_without_a_tag() -> None:
    delivery = accepted("jfrog", jfrog_event("docker", "deleted"))
    assert delivery.events == (
        PushEvent(None, "library/ubuntu"),
        PushEvent(None, "docker-local/library/ubuntu"),
    )


def test_a_harbor_delete_without_resources_still_names_the_repository() -> None:
    payload = harbor_default("DELETE_ARTIFACT")
    payload["event_data"]["resources"] = []
    delivery = deliver("harbor", encode(payload), {"Authorization": SECRET.decode()})
    assert delivery.events == (PushEvent(None, "test-webhook/debian"),)


# --------------------------------------------------------------------------- generic


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {"image": "registry.example.com/team/app:1.2"},
            (PushEvent("registry.example.com", "team/app", "1.2"),),
            id="image",
        ),
        pytest.param({"image": "nginx"}, (PushEvent("docker.io", "library/nginx"),), id="hub-short-name"),
        pytest.param(
            {"images": ["ghcr.io/acme/api:2.0", f"registry.example.com:5000/team/app@{DIGEST}"]},
            (
                PushEvent("ghcr.io", "acme/api", "2.0"),
                PushEvent("registry.example.com:5000", "team/app", None, DIGEST),
            ),
            id="images",
        ),
        pytest.param(
            {"image": "ghcr.io/acme/api:2.0", "images": ["ghcr.io/acme/worker:2.0"]},
            (PushEvent("ghcr.io", "acme/api", "2.0"), PushEvent("ghcr.io", "acme/worker", "2.0")),
            id="image-and-images",
        ),
    ],
)
def test_generic(payload: dict[str, Any], expected: tuple[PushEvent, ...]) -> None:
    delivery = accepted("generic", payload)
    assert delivery == Delivery("generic", expected)


@pytest.mark.parametrize(
    "body", [b"", b"  \n", b"{}", b'{"images": []}'], ids=["empty", "blank", "object", "no-images"]
)
def test_generic_without_image_rescans_everything(body: bytes) -> None:
    delivery = deliver("generic", body, {"X-Signature-256": f"sha256={sign(body)}"})
    assert delivery == Delivery("generic", everything=True)


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        pytest.param({}, SECRET.decode(), id="path-token-alone"),
        pytest.param({"Authorization": f"Bearer {SECRET.decode()}"}, "", id="bearer"),
        pytest.param({"X-Hub-Signature-256": "GOOD"}, "", id="github-header-name"),
        pytest.param({"X-Signature-256": "GOOD_NO_PREFIX"}, "", id="no-sha256-prefix"),
    ],
)
def test_generic_needs_x_signature_256(headers: dict[str, str], token: str) -> None:
    body = b""
    good = {"GOOD": f"sha256={sign(body)}", "GOOD_NO_PREFIX": sign(body)}
    headers = {name: good.get(value, value) for name, value in headers.items()}
    error = rejection("generic", body, headers, token)
    assert error.status == 401
    assert "X-Signature-256" in str(error)


def test_generic_images_must_be_a_list() -> None:
    # BUG (webhooks._generic): list(doc.get("images")) splits a string into characters, so
    # {"images": "nginx"} rescans library/n, library/g, library/i, library/n, library/x.
    # The documented shape is {"images": [...]}; anything else is an unreadable body (400).
    body = b'{"images": "nginx"}'
    error = rejection("generic", body, {"X-Signature-256": f"sha256={sign(body)}"})
    assert error.status == 400
    assert str(error).startswith("generic:")


# --------------------------------------------------------------------------- malformed bodies

MISSING_FIELD: dict[str, object] = {
    "distribution": {"events": [{"action": "push", "target": {"mediaType": DOCKER_V2, "tag": "1", "digest": DIGEST}}]},
    "acr": {"action": "push", "target": {"mediaType": DOCKER_V2, "tag": "v1"}, "request": {"host": "r.azurecr.io"}},
    "harbor": {"type": "PUSH_ARTIFACT", "event_data": {"resources": [{"tag": "latest"}]}},
    "github": {k: v for k, v in github_package().items() if k != "package"}
    | {"package": {k: v for k, v in github_package()["package"].items() if k != "name"}},
    "dockerhub": {"push_data": {"tag": "latest"}},
    "quay": {"name": "repository", "updated_tags": ["latest"]},
    "gcr": {"message": {"data": "not base64!", "messageId": "1"}, "subscription": "projects/p/subscriptions/s"},
    "nexus": {"action": "CREATED", "component": {"format": "docker", "version": "1.2.3"}},
    "jfrog": {"domain": "docker", "event_type": "pushed", "data": {"tag": "latest", "sha256": JFROG_SHA}},
    "generic": {"image": "Registry.Example.com/Team/App:1.2"},
}


def test_missing_field_table_covers_every_source() -> None:
    assert sorted(MISSING_FIELD) == sorted(SOURCES)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("body", "why"),
    [
        pytest.param(b"<html>502 Bad Gateway</html>", "the body is not JSON", id="html"),
        pytest.param(b'{"events": [', "the body is not JSON", id="truncated"),
        pytest.param(b"\xff\xfe{}", "the body is not JSON", id="not-utf8"),
        pytest.param(b"[]", "the body is not a JSON object", id="array"),
        pytest.param(b'[{"action": "push"}]', "the body is not a JSON object", id="array-of-events"),
        pytest.param(b'"push"', "the body is not a JSON object", id="string"),
    ],
)
def test_unreadable_body_is_400(source: str, body: bytes, why: str) -> None:
    headers, token = proof(source, body)
    error = rejection(source, body, headers, token)
    assert error.status == 400
    assert str(error).startswith(f"{source}: {why}")


@pytest.mark.parametrize("source", SOURCES)
def test_missing_required_field_is_400_naming_the_source(source: str) -> None:
    body = encode(MISSING_FIELD[source])
    headers, token = proof(source, body)
    error = rejection(source, body, headers, token)
    assert error.status == 400
    assert str(error).startswith(f"{source}: ")


def test_deeply_nested_body_is_400() -> None:
    # BUG (webhooks.receive): json.loads raises RecursionError on deep nesting, which is not
    # caught, so a malformed body escapes as an exception (the HTTP layer answers 500) instead
    # of WebhookRejected(400). The module promises "a Delivery out (or WebhookRejected)".
    body = b'{"events": ' + b"[" * 200_000
    error = rejection("distribution", body, token=SECRET.decode())
    assert error.status == 400


def test_authentication_comes_before_parsing() -> None:
    error = rejection("distribution", b"not json", {"Authorization": f"Bearer {WRONG}"})
    assert error.status == 401


@pytest.mark.parametrize("source", ["gitlab", "ecr", "", "GitHub", "dockerhub/extra"])
def test_unknown_source_is_404(source: str) -> None:
    error = rejection(source, b"{}", {"Authorization": f"Bearer {SECRET.decode()}"}, SECRET.decode())
    assert error.status == 404
    # never echoed: a secret configured in the source's place must not come back
    assert str(error) == f"unknown webhook source; known: {', '.join(SOURCES)}"


def test_an_empty_secret_authenticates_nobody() -> None:
    for source in SOURCES:
        with pytest.raises(WebhookRejected) as caught:
            receive(source, "", {"authorization": "", "x-jfrog-event-auth": ""}, b"{}", b"")
        assert caught.value.status == 401, source


# --------------------------------------------------------------------------- PushEvent


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (PushEvent("ghcr.io", "acme/api", "2.0", DIGEST), "ghcr.io/acme/api:2.0"),
        (PushEvent(None, "team/app", "1.2.3"), "team/app:1.2.3"),
        (PushEvent("quay.io", "ns/repo"), "quay.io/ns/repo"),
    ],
)
def test_push_event_str(event: PushEvent, text: str) -> None:
    assert str(event) == text


# --------------------------------------------------------------------------- affected()


def policy(image: str, line: int) -> Policy:
    return Policy(f"p{line}", parse_reference(image), SemverChoice(">=1.0"), SourceLocation("policies.yaml", line))


POLICIES = (
    policy("registry.example.com/team/app", 1),
    policy("mirror.example.com/team/app", 2),
    policy("nginx", 3),  # docker.io/library/nginx
    policy("mirror.gcr.io/library/nginx", 4),
    policy("ghcr.io/acme/api", 5),
    policy("myregistry.azurecr.io/hello-world", 6),
)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([PushEvent("ghcr.io", "acme/api", "2.0")], {"ghcr.io/acme/api"}, id="exact"),
        pytest.param(
            [PushEvent("registry.example.com", "team/app", "1.4.2")],
            {"registry.example.com/team/app"},
            id="host-picks-one-of-same-path",
        ),
        pytest.param(
            [PushEvent("mirror.example.com", "team/app", "1.4.2")],
            {"mirror.example.com/team/app"},
            id="host-picks-the-other",
        ),
        pytest.param(
            [PushEvent("Registry.Example.COM", "team/app")], {"registry.example.com/team/app"}, id="host-case"
        ),
        pytest.param([PushEvent("docker.io", "library/nginx")], {"docker.io/library/nginx"}, id="hub"),
        pytest.param([PushEvent("index.docker.io", "library/nginx")], {"docker.io/library/nginx"}, id="hub-index"),
        pytest.param(
            [PushEvent("registry-1.docker.io", "library/nginx")], {"docker.io/library/nginx"}, id="hub-registry-1"
        ),
        pytest.param(
            [PushEvent("registry.hub.docker.com", "library/nginx")], {"docker.io/library/nginx"}, id="hub-legacy"
        ),
        pytest.param(
            [PushEvent(None, "team/app", "1.2.3")],
            {"registry.example.com/team/app", "mirror.example.com/team/app"},
            id="no-host-matches-by-path",
        ),
        pytest.param([PushEvent(None, "acme/api")], {"ghcr.io/acme/api"}, id="no-host-single-candidate"),
        pytest.param(
            [PushEvent("10.0.3.17:5000", "team/app", "1.2.3")],
            {"registry.example.com/team/app", "mirror.example.com/team/app"},
            id="unknown-host-falls-back-to-path",
        ),
        pytest.param(
            [PushEvent("registry.internal:5000", "hello-world", "v1")],
            {"myregistry.azurecr.io/hello-world"},
            id="internal-name-of-the-registry",
        ),
        pytest.param(
            [PushEvent("ghcr.io", "acme/api"), PushEvent("index.docker.io", "library/nginx")],
            {"ghcr.io/acme/api", "docker.io/library/nginx"},
            id="several-events",
        ),
        pytest.param([PushEvent("ghcr.io", "acme/worker", "2.0")], set(), id="unrelated-repository"),
        pytest.param([PushEvent("ghcr.io", "acme", "2.0")], set(), id="path-prefix-is-not-a-match"),
        pytest.param([PushEvent("docker.io", "nginx")], set(), id="unnormalised-hub-path"),
        pytest.param([], set(), id="no-events"),
    ],
)
def test_affected(events: list[PushEvent], expected: set[str]) -> None:
    assert affected(events, POLICIES) == expected


def test_affected_without_policies() -> None:
    assert affected([PushEvent("ghcr.io", "acme/api")], []) == set()


@pytest.mark.parametrize(
    ("source", "payload", "expected"),
    [
        pytest.param("dockerhub", dockerhub_push("nginx", "1.27.0"), {"docker.io/library/nginx"}, id="dockerhub"),
        pytest.param("github", github_package(owner="Acme", name="API"), {"ghcr.io/acme/api"}, id="github"),
        pytest.param("acr", acr_event(), {"myregistry.azurecr.io/hello-world"}, id="acr"),
        pytest.param(
            "nexus", nexus_component(), {"registry.example.com/team/app", "mirror.example.com/team/app"}, id="nexus"
        ),
    ],
)
def test_delivery_to_policies(source: str, payload: dict[str, Any], expected: set[str]) -> None:
    assert affected(accepted(source, payload).events, POLICIES) == expected


@pytest.mark.parametrize(
    ("source", "token", "headers", "status"),
    [
        # decided from the path and headers alone
        ("nosuch", "", {}, 404),
        ("dockerhub", "wrong", {}, 401),
        ("dockerhub", "", {"authorization": f"Bearer {SECRET.decode()}"}, 401),
        ("distribution", "", {"authorization": "Bearer wrong"}, 401),
        ("github", SECRET.decode(), {}, 401),  # a path token never stands in for GitHub's signature
        ("generic", "", {}, 401),
        ("nexus", "", {}, 401),
        # let through: the path token, a header token, or a signature the body must confirm
        ("dockerhub", SECRET.decode(), {}, None),
        ("distribution", "", {"authorization": f"Bearer {SECRET.decode()}"}, None),
        ("harbor", "", {"authorization": SECRET.decode()}, None),
        ("github", "", {"x-hub-signature-256": "sha256=00"}, None),
        ("jfrog", "", {"x-jfrog-event-auth": "anything"}, None),
    ],
)
def test_preauthentication_refuses_before_the_body_is_read(
    source: str, token: str, headers: dict[str, str], status: int | None
) -> None:
    rejected = preauthenticate(source, token, headers, SECRET)
    assert (rejected.status if rejected else None) == status


def test_both_services_authenticate_every_source_from_one_table() -> None:
    from automator.daemon.webhooks import SOURCES as REGISTRY_SOURCES
    from automator.httpd import PROOFS
    from automator.sync.service import SOURCES as PUSH_SOURCES

    assert set(REGISTRY_SOURCES) | set(PUSH_SOURCES) <= set(PROOFS)
    secret, body = b"s3cret", b'{"ref": "refs/heads/main"}'
    signed = {"x-hub-signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()}
    github = PROOFS["github"]
    assert github.proved("", signed, body, secret)
    assert not github.proved("", signed, body + b" ", secret)  # the body is what is signed
    assert github.may_prove("", signed, secret) and not github.may_prove("", {}, secret)
    assert not github.without_body("s3cret", {}, secret)  # a forge never puts the secret in the path
    assert PROOFS["gitlab"].without_body("", {"x-gitlab-token": "s3cret"}, secret)
    assert PROOFS["quay"].without_body("s3cret", {}, secret)
    assert not PROOFS["quay"].without_body("", {"authorization": "Bearer s3cret"}, secret)
