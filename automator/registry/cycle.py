"""What the registry clients of one cycle share: a clock, the cycle's start, and which hosts are dead.

A cycle (one scan, one pass of the service) asks each registry host many questions.
When a host stops answering, asking it again for every repository multiplies one
timeout by the number of repositories.  :class:`Cycle` keeps a small state per host:

* **suspect**: an attempt failed with a network error or a timeout.  One exchange,
  the *probe*, goes on with its retries; every other exchange to that host waits for
  the probe's outcome instead of sending attempts of its own.  Any complete answer
  from the host (a 404 or a 503 too: the host is alive) ends the suspicion, and the
  waiters go on.
* **dead**: the probe used up its retries.  Every later request to the host fails at
  once with :class:`~automator.errors.RegistryUnavailable` (transient, "not retried
  again this cycle").  A new cycle starts with every host alive.

So a dead host costs one exchange's retries, plus at most the attempts already in
flight when the first one failed.  A host's ``scan_deadline`` is measured from
:attr:`Cycle.started` on the cycle's clock, injected so tests can move time.

Hand-written: circuit-breaker libraries (aiobreaker, purgatory) count failures over
time windows and close again on a timer; a cycle needs neither, only "one probe, then
remember until the cycle ends", which is a few lines over :class:`asyncio.Event`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from automator.errors import RegistryUnavailable


@dataclass
class _Health:
    dead: str | None = None  # why: "ReadTimeout after 4 attempts"
    probe: object | None = None  # the exchange retrying while the others wait
    settled: asyncio.Event | None = None  # set when the probe ends, either way


class Cycle:
    """The shared state of every registry request in one cycle; see the module docstring.

    One :class:`~automator.registry.client.RegistryClient` makes its own; clients that
    serve the same cycle with different credentials pass the same one.  Hosts are
    ``host:port`` as the client dials them.  ``me`` is any object naming one exchange.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self._hosts: dict[str, _Health] = {}

    def __repr__(self) -> str:
        return f"Cycle(dead={sorted(self.dead)!r})"

    @property
    def dead(self) -> dict[str, str]:
        """Each host found dead in this cycle, with why."""
        return {host: h.dead for host, h in self._hosts.items() if h.dead is not None}

    def remaining(self, scan_deadline: float | None) -> float | None:
        """Seconds left before ``scan_deadline`` (seconds after :attr:`started`) passes; None: no deadline."""
        return None if scan_deadline is None else self.started + scan_deadline - self.clock()

    def check(self, host: str, target: str, scan_deadline: float | None) -> None:
        """Raise :class:`RegistryUnavailable` now if ``host`` is dead or the scan deadline has passed."""
        health = self._hosts.get(host)
        if health is not None and health.dead is not None:
            raise RegistryUnavailable(
                f"{target}: {host} did not answer earlier in this cycle ({health.dead}), so it is not retried "
                "again this cycle; the next cycle tries again"
            )
        left = self.remaining(scan_deadline)
        if left is not None and left <= 0:
            raise RegistryUnavailable(
                f"{target}: the scan deadline of {scan_deadline:g} s (scan_deadline) has passed, so this request "
                "was not sent; the next cycle tries again, or raise scan_deadline"
            )

    def clear_to_send(self, host: str, me: object) -> bool:
        """True unless ``host`` is dead or suspect with another exchange probing it."""
        health = self._hosts.get(host)
        return health is None or (health.dead is None and health.probe in (None, me))

    async def admit(self, host: str, me: object, target: str, scan_deadline: float | None) -> None:
        """Wait until ``me`` may send to ``host``; raises as :meth:`check` does, also after waiting."""
        while True:
            self.check(host, target, scan_deadline)
            health = self._hosts.get(host)
            if health is None or health.probe is None or health.probe is me or health.settled is None:
                return
            try:
                async with asyncio.timeout(self.remaining(scan_deadline)):
                    await health.settled.wait()
            except TimeoutError:
                pass  # the scan deadline: check() says so

    def failed(self, host: str, me: object) -> None:
        """An attempt of ``me`` to ``host`` got no answer: ``me`` probes, unless another exchange already does."""
        health = self._hosts.setdefault(host, _Health())
        if health.dead is None and health.probe is None:
            health.probe, health.settled = me, asyncio.Event()

    def answered(self, host: str) -> None:
        """``host`` answered: it is alive, and whoever waited on its probe goes on."""
        health = self._hosts.get(host)
        if health is not None:
            self._settle(health)

    def give_up(self, host: str, me: object, reason: str) -> bool:
        """``me`` used up its retries on ``host``; if it was the probe, the host is dead. True if so."""
        health = self._hosts.get(host)
        if health is None or health.probe is not me:
            return False
        health.dead = reason
        self._settle(health)
        return True

    def release(self, me: object) -> None:
        """``me`` is done (an answer, an error, a cancellation): it probes no host any more."""
        for health in self._hosts.values():
            if health.probe is me:
                self._settle(health)

    @staticmethod
    def _settle(health: _Health) -> None:
        if health.settled is not None:
            health.settled.set()
        health.probe, health.settled = None, None


__all__ = ["Cycle"]
