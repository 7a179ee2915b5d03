"""Log lines: stable dotted event names with context; JSON in production; never a secret."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import IO, Any

CONTEXT_FIELDS = (
    "source",
    "event",
    "delivery_id",
    "run_id",
    "model",
    "version",
    "task",
    "task_id",
    "outcome",
    "reason",
    "verdict",
    "alias",
    "action",
    "dead_letter_id",
    "error",
    "status",
    "client",
    "failures",
)
_SECRET_PATTERN = re.compile(r"(whsec_[A-Za-z0-9+/=]+|v1,[A-Za-z0-9+/=]{20,})")
# What the current request or task is about; every log line made meanwhile carries it.
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar(
    "regpilot_log_context", default=MappingProxyType({})
)


def bind(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add fields (None values are skipped) to the log context; pass the token to `unbind`."""
    known = {k: v for k, v in fields.items() if v is not None and k in CONTEXT_FIELDS}
    return _CONTEXT.set({**_CONTEXT.get(), **known})


def unbind(token: Token[Mapping[str, Any]]) -> None:
    """Restore the log context `bind` replaced."""
    try:
        _CONTEXT.reset(token)
    except ValueError:
        # The token came from another context: start clean rather than leak old fields.
        _CONTEXT.set(MappingProxyType({}))


def current_context() -> Mapping[str, Any]:
    """Return the fields bound to the log context now."""
    return _CONTEXT.get()


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind fields to the log context for the duration of a block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Copy the bound context onto each record, without overriding what the call passed."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


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
            if value is not None:
                # `event` is the line's own name; a webhook's event type goes beside it.
                key = "webhook_event" if name == "event" else name
                payload[key] = _scrub(str(value)) if isinstance(value, str) else value
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


def make_handler(log_format: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """Return a handler that writes lines in `log_format` with the bound context."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    return handler


def setup_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Configure the root logger once for this process."""
    handler = make_handler(log_format)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings become log lines too (JSON in production)
    for noisy in ("urllib3", "werkzeug", "alembic", "mlflow.store.db"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
