"""Notification receivers on 127.0.0.1 (a port chosen at run time): a generic webhook endpoint,
a Slack incoming webhook and a Teams workflow webhook, each recording what it was sent and
checking the shape the README documents (and the services' own docs describe).

* webhook: ``X-Automator-Signature: sha256=<hex HMAC-SHA256 of the body>`` verified with the
  shared secret, ``X-Automator-Timestamp`` equal to the signed body's ``timestamp`` and recent,
  every field of schema version 1 present with its type;
* Slack: ``text`` plus Block Kit ``blocks`` (header/section/context), within Slack's limits
  (https://api.slack.com/reference/block-kit/blocks);
* Teams: ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": AdaptiveCard}]}`` with an Adaptive Card
  of version 1.4 or later (https://adaptivecards.io/explorer/).

A receiver can be told to answer the next requests with an error (``fail_next``), to test the
retries; it answers 400 to a body of the wrong shape, as the real services do.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.servers.fake_github import wait_until_listening

WEBHOOK_FIELDS: dict[str, type | tuple[type, ...]] = {
    "schemaVersion": int,
    "id": str,
    "timestamp": int,
    "kind": str,
    "source": str,
    "severity": str,
    "subject": str,
    "title": str,
    "message": str,
    "occurredAt": str,
    "revision": str,
    "policies": list,
    "pullRequest": (dict, type(None)),
    "versions": dict,
    "objects": list,
    "details": list,
    "key": str,
}
MAX_AGE = 300  # seconds: an older timestamp is a replay


class ShapeError(AssertionError):
    """A body that does not follow the documented shape."""


def _need(cond: bool, why: str) -> None:
    if not cond:
        raise ShapeError(why)


def check_webhook(
    headers: dict[str, str], body: bytes, secret: bytes | None, now: float | None = None
) -> dict[str, Any]:
    """The generic webhook's checks; returns the document."""
    if secret is not None:
        offered = headers.get("x-automator-signature", "")
        _need(offered.startswith("sha256="), "no sha256= signature")
        want = hmac.new(secret, body, hashlib.sha256).hexdigest()
        _need(hmac.compare_digest(offered.removeprefix("sha256="), want), "the signature does not verify")
    doc = json.loads(body)
    for name, kind in WEBHOOK_FIELDS.items():
        _need(name in doc, f"missing {name}")
        _need(isinstance(doc[name], kind), f"{name} is {type(doc[name]).__name__}")
    _need(doc["schemaVersion"] == 1, "schemaVersion")
    stamp = headers.get("x-automator-timestamp", "")
    _need(stamp == str(doc["timestamp"]), "X-Automator-Timestamp differs from the signed timestamp")
    _need(abs((now or time.time()) - doc["timestamp"]) <= MAX_AGE, "stale timestamp: a replay?")
    _need(headers.get("x-automator-event") == doc["kind"], "X-Automator-Event")
    _need(headers.get("content-type", "").startswith("application/json"), "content type")
    if doc["pullRequest"] is not None:
        pr = doc["pullRequest"]
        _need(isinstance(pr.get("number"), int) and isinstance(pr.get("url"), str), "pullRequest fields")
    return dict(doc)


_SLACK_BLOCKS = {"header", "section", "context", "divider", "actions"}


def check_slack(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    _need(isinstance(doc.get("text"), str) and doc["text"], "text: the fallback is required with blocks")
    blocks = doc.get("blocks")
    _need(isinstance(blocks, list) and 0 < len(blocks) <= 50, "blocks")
    for b in blocks:
        _need(b.get("type") in _SLACK_BLOCKS, f"block type {b.get('type')!r}")
        if b["type"] == "header":
            _need(b["text"]["type"] == "plain_text" and len(b["text"]["text"]) <= 150, "header text")
        if b["type"] == "section":
            _need("text" in b or "fields" in b, "a section needs text or fields")
            if "text" in b:
                _need(b["text"]["type"] in ("mrkdwn", "plain_text") and len(b["text"]["text"]) <= 3000, "section")
            for f in b.get("fields", []):
                _need(f["type"] in ("mrkdwn", "plain_text") and len(f["text"]) <= 2000, "field")
            _need(len(b.get("fields", [])) <= 10, "at most 10 fields")
    return dict(doc)


_CARD_ELEMENTS = {"TextBlock", "FactSet", "ColumnSet", "Container", "Image", "RichTextBlock"}


def check_teams(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    _need(doc.get("type") == "message", "type: message")
    attachments = doc.get("attachments")
    _need(isinstance(attachments, list) and len(attachments) == 1, "one attachment")
    att = attachments[0]
    _need(att.get("contentType") == "application/vnd.microsoft.card.adaptive", "contentType")
    card = att.get("content")
    _need(isinstance(card, dict) and card.get("type") == "AdaptiveCard", "an AdaptiveCard")
    major, minor = (int(p) for p in str(card.get("version")).split("."))
    _need((major, minor) >= (1, 4), "version 1.4 or later")
    _need(card.get("$schema") == "http://adaptivecards.io/schemas/adaptive-card.json", "$schema")
    _need(isinstance(card.get("body"), list) and card["body"], "body")
    for element in card["body"]:
        _need(element.get("type") in _CARD_ELEMENTS, f"element {element.get('type')!r}")
        if element["type"] == "TextBlock":
            _need(isinstance(element.get("text"), str) and element["text"], "TextBlock.text")
        if element["type"] == "FactSet":
            _need(
                all(
                    set(f) == {"title", "value"} and all(isinstance(v, str) for v in f.values())
                    for f in element["facts"]
                ),
                "facts",
            )
    for action in card.get("actions", []):
        _need(action.get("type") == "Action.OpenUrl" and action.get("url", "").startswith("http"), "Action.OpenUrl")
    return dict(doc)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    doc: dict[str, Any]


@dataclass
class Receiver:
    """One endpoint per path: ``/webhook``, ``/slack``, ``/teams`` (each checked as above)."""

    secret: bytes | None = None
    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why a body was answered 400
    failures: list[int] = field(default_factory=list)  # statuses to answer next, in order
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def fail_next(self, *statuses: int) -> None:
        with self.lock:
            self.failures.extend(statuses)

    def of(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r.doc for r in self.received if r.path == path]

    def wait_for(self, count: int, path: str | None = None, deadline: float = 20.0) -> list[Received]:
        """Poll (with a deadline) until ``count`` bodies arrived (at ``path``)."""
        end = time.monotonic() + deadline
        while True:
            with self.lock:
                got = [r for r in self.received if path is None or r.path == path]
                if len(got) >= count:
                    return got
            if time.monotonic() > end:
                raise AssertionError(f"{len(got)} of {count} notifications arrived; refused: {self.refused}")
            time.sleep(0.02)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        checks: dict[str, Callable[[], dict[str, Any]]] = {
            "/webhook": lambda: check_webhook(headers, body, self.secret),
            "/slack": lambda: check_slack(body),
            "/teams": lambda: check_teams(body),
        }
        with self.lock:
            self.attempts += 1
            if self.failures:
                return self.failures.pop(0)
        # the first segment names the sink: /slack/T0/B0/secret is Slack's shape of URL
        check = checks.get("/" + path.split("?", maxsplit=1)[0].lstrip("/").split("/")[0])
        if check is None:
            return 404
        try:
            doc = check()
        except (ShapeError, ValueError, KeyError, TypeError) as exc:
            with self.lock:
                self.refused.append(f"{path}: {exc}")
            return 400
        with self.lock:
            self.received.append(Received("/" + path.lstrip("/").split("/")[0], headers, body, doc))
        return 200


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        status = self.server.receiver.handle(self.path, headers, body)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


@contextlib.contextmanager
def receiver_server(secret: bytes | None = None) -> Iterator[Receiver]:
    """A :class:`Receiver` on 127.0.0.1, on a port the kernel picks."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.receiver = state = Receiver(secret=secret)
    port = server.server_address[1]
    state.base_url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=server.serve_forever, name="receiver", daemon=True)
    thread.start()
    try:
        wait_until_listening("127.0.0.1", int(port))
        yield state
    finally:
        server.shutdown()
        server.server_close()
