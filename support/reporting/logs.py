"""Structured JSON-lines logging with secrets redacted."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "t": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RedactingFilter(logging.Filter):
    """Replaces every known secret in the final message (and exception text) by ``***``."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = self._redact(message)
        record.args = None
        if record.exc_info:
            record.exc_text = self._redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_run_log(path: Path, redact: Callable[[str], str], level: str = "INFO") -> logging.Handler:
    """Send every log record of the process to ``path`` as JSON lines, redacted."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(redact))
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.getLevelName(level) or root.level == logging.NOTSET:
        root.setLevel(level)
    for noisy in ("urllib3", "faker", "parse"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
