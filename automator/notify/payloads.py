"""Each sink's body, rendered from one :class:`~.events.Event`: pure functions, no I/O.

* the generic webhook: the JSON document of :func:`event_json` (``schemaVersion`` 1, the
  schema in the README), signed by the sender;
* Slack (and Slack-compatible: Mattermost, Rocket.Chat) incoming webhooks: ``text`` (the
  notification's fallback) plus Block Kit ``blocks``, within Slack's size limits;
* Microsoft Teams workflow webhooks: a ``message`` with one Adaptive Card 1.4 attachment;
* a pull request comment: Markdown.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from automator.notify.events import Event

SCHEMA_VERSION = 1
_TITLES = {
    "pullRequestOpened": "Pull request opened",
    "pullRequestUpdated": "Pull request updated",
    "pullRequestMerged": "Pull request merged",
    "pullRequestClosed": "Pull request closed",
    "policyFailing": "Policy failing",
    "policyRecovered": "Policy recovered",
    "syncFailed": "Sync failed",
    "driftCorrected": "Drift corrected",
    "workloadUnhealthy": "Workload unhealthy after an update",
}
_SLACK_TEXT, _SLACK_HEADER, _SLACK_FIELD = 3000, 150, 2000
_TEAMS_COLOR = {"info": "Good", "warning": "Warning", "error": "Attention"}


def timestamp(when: datetime) -> str:
    """RFC 3339 in UTC to the second."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def title(event: Event) -> str:
    return f"{_TITLES[event.kind]}: {event.subject}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def event_json(event: Event, delivery: str, sent: int) -> dict[str, Any]:
    """The generic webhook's document: every field of the event, plus the delivery's id and the
    time it was sent (Unix seconds, equal to the ``X-Automator-Timestamp`` header)."""
    pr = event.pull_request
    return {
        "schemaVersion": SCHEMA_VERSION,
        "id": delivery,
        "timestamp": sent,
        "kind": event.kind,
        "source": event.source,
        "severity": event.severity,
        "subject": event.subject,
        "title": title(event),
        "message": event.message,
        "occurredAt": timestamp(event.at),
        "revision": event.revision,
        "policies": list(event.policies),
        "pullRequest": None
        if pr is None
        else {"number": pr.number, "url": pr.url, "title": pr.title, "branch": pr.branch},
        "versions": dict(event.versions),
        "objects": list(event.objects),
        "details": list(event.details),
        "key": event.key,
    }


def webhook_body(event: Event, delivery: str, sent: int) -> bytes:
    return json.dumps(event_json(event, delivery, sent), sort_keys=True, separators=(",", ":")).encode()


def _facts(event: Event) -> list[tuple[str, str]]:
    facts: list[tuple[str, str]] = [("Source", event.source), ("Severity", event.severity)]
    if event.revision:
        facts.append(("Revision", event.revision[:12]))
    if event.policies:
        facts.append(("Policies", ", ".join(event.policies)))
    if event.pull_request is not None:
        facts.append(("Pull request", f"#{event.pull_request.number}"))
    facts.extend((policy, image) for policy, image in event.versions[:5])
    return facts


def _mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(event: Event) -> dict[str, Any]:
    """``text`` is what notifications and old clients show; ``blocks`` what Slack renders."""
    message = _mrkdwn(event.message)
    if event.pull_request is not None and event.pull_request.url:
        message += f"\n<{_mrkdwn(event.pull_request.url)}|Open pull request #{event.pull_request.number}>"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title(event), _SLACK_HEADER)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(message, _SLACK_TEXT)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(f"*{_mrkdwn(k)}*\n{_mrkdwn(v)}", _SLACK_FIELD)}
                for k, v in _facts(event)[:10]
            ],
        },
    ]
    if event.details:
        lines = "\n".join(_mrkdwn(d) for d in event.details)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"```{lines}```", _SLACK_TEXT)}})
    return {"text": _cut(f"{title(event)}: {event.message}", _SLACK_TEXT), "blocks": blocks}


def teams_body(event: Event) -> dict[str, Any]:
    """The Teams workflow ("When a Teams webhook request is received") message shape."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": title(event),
            "weight": "Bolder",
            "size": "Medium",
            "color": _TEAMS_COLOR[event.severity],
            "wrap": True,
        },
        {"type": "TextBlock", "text": event.message, "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(event)]},
    ]
    if event.details:
        body.append({"type": "TextBlock", "text": "\n\n".join(event.details), "wrap": True, "fontType": "Monospace"})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if event.pull_request is not None and event.pull_request.url:
        card["actions"] = [
            {
                "type": "Action.OpenUrl",
                "title": f"Open pull request #{event.pull_request.number}",
                "url": event.pull_request.url,
            }
        ]
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def comment_body(event: Event) -> str:
    """A pull request comment: the title, the message, the details in a code block."""
    lines = [f"**{title(event)}**", "", event.message]
    if event.details:
        lines += ["", "```", *event.details, "```"]
    lines += ["", "<sub>automator notification</sub>"]
    return "\n".join(lines) + "\n"
