"""Time as a parameter: the clocks the service reads and the one way it waits.

The service reads two clocks. The wall clock (:meth:`Clock.now`, aware, UTC) is what schedules
fire on and what ``/status`` and the metrics report. The monotonic clock
(:meth:`Clock.monotonic`, seconds that never jump with NTP or DST) measures the webhook
debounce, the rechecks of pushed tags, the reload limit and ``--cycle-timeout``. Between cycles
the loop waits on :meth:`Clock.wait` for its next deadline or for a wake-up (a webhook, a
shutdown), whichever comes first.

:data:`SYSTEM_CLOCK` is the real one and every service's default. A test passes a clock of its
own that it moves by hand (as kopf's looptime does for asyncio), so "40 s later" takes no time:
time passes only when the test says so, and nothing sleeps.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """Where the service gets the time from; one instance serves the loop and the HTTP threads."""

    def now(self) -> datetime:
        """The wall time, aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Block until ``event`` is set (True) or ``timeout`` seconds of this clock pass (False)."""
        ...


class SystemClock:
    """The machine's clocks: :func:`datetime.now`, :func:`time.monotonic`, :meth:`threading.Event.wait`."""

    def __repr__(self) -> str:
        return "SystemClock()"

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(timeout)


SYSTEM_CLOCK: Clock = SystemClock()
