"""The automator as a long-running service: schedule, registry webhooks, health and metrics."""

from automator.daemon.clock import Clock, SystemClock
from automator.daemon.schedule import Schedule
from automator.daemon.service import AutomatorService, serve
from automator.daemon.webhooks import Delivery, PushEvent, WebhookRejected, affected, receive

__all__ = [
    "AutomatorService",
    "Clock",
    "Delivery",
    "PushEvent",
    "Schedule",
    "SystemClock",
    "WebhookRejected",
    "affected",
    "receive",
    "serve",
]
