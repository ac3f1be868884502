"""Log lines on stderr: human text, or one JSON object per line for log pipelines.

``--log-format json`` (``AUTOMATOR_LOG_FORMAT``) suits Loki, Elasticsearch or Cloud Logging:
each line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, plus
``exception`` when a traceback is attached. In that mode every line a program prints for a
cycle or a sync pass is JSON too: the report is one :func:`report_line` (the log fields, and the
report under ``key``), and errors are log records, never bare text.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


_JSON = {"on": False}  # whether configure() chose json: what the reports follow


def json_lines() -> bool:
    """Whether ``--log-format json`` is in force (every printed line must be a JSON object)."""
    return _JSON["on"]


def report_line(key: str, report: Mapping[str, Any], message: str, logger: str = "automator") -> str:
    """One line of JSON: the log record's fields and ``report`` (a cycle's, a pass's) under ``key``."""
    doc = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "info",
        "logger": logger,
        "message": message,
        key: report,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def configure(level: str, fmt: str = "text") -> None:
    """Log at ``level`` on stderr in ``fmt`` (``text`` or ``json``), replacing earlier handlers."""
    _JSON["on"] = fmt == "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
