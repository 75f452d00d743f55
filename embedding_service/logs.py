"""Logging: plain or JSON lines (`LOG_FORMAT`), and one access line per request.

Torch-free: Gunicorn's master uses `gunicorn_logconfig` for its own logs.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

import orjson

from .settings import Settings

ACCESS = logging.getLogger("embedding_service.access")
#: LogRecord attributes that are not "extra" fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra fields and,
    for errors, the formatted exception."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def make_formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings) -> None:
    """Our loggers (`embedding_service.*`) get one handler in the chosen format and do not
    propagate, so a host that configures the root logger (Gunicorn does) never prints them twice;
    transformers is kept quiet (no progress bars)."""
    package = logging.getLogger("embedding_service")
    handler = next((h for h in package.handlers if getattr(h, "_embedding_service", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._embedding_service = True  # type: ignore[attr-defined]
        package.addHandler(handler)
    handler.setFormatter(make_formatter(settings.log_format))
    package.setLevel(settings.log_level)
    package.propagate = False
    ACCESS.setLevel(logging.INFO)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def log_access(
    *, method: str, path: str, status: int, seconds: float, request_id: str, remote: Optional[str],
    model: Optional[str], items: int, tokens: int,
) -> None:
    """The access line: `<remote> "<method> <path>" <status> <ms>ms id=<request id> model=... items=... tokens=...`."""
    ACCESS.info(
        '%s "%s %s" %d %.1fms id=%s model=%s items=%d tokens=%d',
        remote or "-", method, path, status, seconds * 1000, request_id, model or "-", items, tokens,
        extra={
            "request_id": request_id, "method": method, "path": path, "status": status,
            "duration_ms": round(seconds * 1000, 3), "remote": remote, "model": model, "items": items, "tokens": tokens,
        },
    )


def gunicorn_logconfig(settings: Settings) -> dict:
    """`logconfig_dict` for Gunicorn's own loggers in the chosen format."""
    formatter = {"()": "embedding_service.logs.JsonFormatter"} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"service": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "service", "stream": "ext://sys.stderr"}},
        "loggers": {
            "gunicorn.error": {"level": settings.log_level, "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["console"], "propagate": False},
        },
    }
