"""The one backoff both services use, read off the error tree.

:func:`Backoff.after` answers "when may the failed thing be tried again?" from the error alone:
never sooner than the loop's own schedule for a permanent error (``retryable`` False: a person
must fix a file, a key, a token), after 5 s, 10 s, 20 s ... up to ``cap`` for a transient one,
and never sooner than the error's ``retry_after`` when the other side named a wait.  An error
that is not an :class:`AutomatorError` (a bug, a library's surprise) is treated as transient, so
a service keeps serving and a fix that lands (a registry back online) is picked up.
"""

from __future__ import annotations

from dataclasses import dataclass

from automator.errors import AutomatorError


@dataclass(frozen=True)
class Backoff:
    base: float = 5.0
    cap: float = 3600.0

    def after(self, failures: int, error: BaseException | None = None) -> float | None:
        """Seconds to wait after the ``failures``-th failure in a row; None: retrying cannot help."""
        if isinstance(error, AutomatorError) and not error.retryable:
            return None
        delay = min(self.cap, self.base * float(2 ** min(max(failures, 1) - 1, 20)))
        hint = error.retry_after if isinstance(error, AutomatorError) else None
        return max(delay, min(hint, self.cap)) if hint else delay
