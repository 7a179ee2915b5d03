"""Log lines: stable dotted event names with context; JSON in production; never a secret."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

CONTEXT_FIELDS = (
    "source",
    "event",
    "delivery_id",
    "run_id",
    "model",
    "version",
    "task",
    "outcome",
    "reason",
    "verdict",
    "alias",
    "action",
    "dead_letter_id",
    "error",
    "status",
)
_SECRET_PATTERN = re.compile(r"(whsec_[A-Za-z0-9+/=]+|v1,[A-Za-z0-9+/=]{20,})")


def _scrub(text: str) -> str:
    return _SECRET_PATTERN.sub("[redacted]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": _scrub(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None and name != "event":
                payload[name] = _scrub(str(value)) if isinstance(value, str) else value
        if record.exc_info:
            payload["exc"] = _scrub(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable: time, level, event name, then key=value context."""

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(
            f"{name}={getattr(record, name)}"
            for name in CONTEXT_FIELDS
            if getattr(record, name, None) is not None
        )
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        if context:
            line += " " + context
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return _scrub(line)


def setup_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Configure the root logger once for this process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "werkzeug", "alembic", "mlflow.store.db"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
