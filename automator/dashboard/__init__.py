"""The read-only web dashboard the automator serves on ``--listen``: :mod:`.app` routes,
:mod:`.pages` renders."""

from automator.dashboard.app import COOKIE, Dashboard, DashboardSource, is_page, state_source
from automator.dashboard.pages import PageContext

__all__ = ["COOKIE", "Dashboard", "DashboardSource", "PageContext", "is_page", "state_source"]
