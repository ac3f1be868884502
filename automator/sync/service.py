"""Service mode: sync on an interval (first version: the loop; webhooks and endpoints follow)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from automator.sync.command import Runner

log = logging.getLogger("automator.sync")


def serve(runner: Runner, stop: threading.Event | None = None) -> int:
    """Run ``runner.once()`` every ``--interval`` until ``stop`` is set; always exit 0 when stopped."""
    stop = stop or threading.Event()
    while not stop.is_set():
        result = runner.once()
        level = logging.INFO if result.ok else logging.ERROR
        log.log(
            level,
            "sync %s at %s: %d objects, %d errors",
            runner.options.name,
            result.revision[:12],
            len(result.objects),
            len(result.errors),
        )
        for error in result.errors:
            log.error("%s", error)
        stop.wait(runner.args.interval)
    return 0
