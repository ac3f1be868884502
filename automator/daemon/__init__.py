"""The automator as a long-running service: schedule, registry webhooks, health and metrics."""

from automator.daemon.service import AutomatorService, Schedule, serve
from automator.daemon.webhooks import Delivery, PushEvent, WebhookRejected, affected, receive

__all__ = ["AutomatorService", "Delivery", "PushEvent", "Schedule", "WebhookRejected", "affected", "receive", "serve"]
