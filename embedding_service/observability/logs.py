r"""Logging: plain or JSON lines (`LOG_FORMAT`), and one access line per request.

One record is always one line. The text format escapes every control character in the formatted
record (message, arguments, traceback): `\n`, `\r`, `\t`, other C0 and C1 characters, DEL and the
Unicode line/paragraph separators become `\xNN` / `\uNNNN`, so a client cannot forge a line or
send terminal escapes through a path or a header. JSON lines are JSON (orjson escapes them).

Torch-free: Gunicorn's master uses `gunicorn_logconfig` for its own logs.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

import orjson

from ..config.settings import Settings

ACCESS = logging.getLogger("embedding_service.access")
#: LogRecord attributes that are not "extra" fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


#: Control characters -> their escape: C0, DEL, C1, and U+2028/U+2029 (str.splitlines breaks there).
_CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL_ESCAPES.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def escape_controls(text: str) -> str:
    """`text` with every control character escaped (see the module doc): always one line."""
    return text.translate(_CONTROL_ESCAPES)


class TextFormatter(logging.Formatter):
    r"""TEXT_FORMAT, one line per record: the formatted record with its control characters escaped
    (a traceback becomes one line with `\n` between its lines). The time of day is formatted
    once per second, not once per record (`formatTime`, the access log's largest cost after I/O)."""

    def __init__(self, fmt: str = TEXT_FORMAT, *args, **kwargs):
        super().__init__(fmt, *args, **kwargs)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if int(record.created) != second:  # logging.Formatter's own format, computed once a second
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (second, text)
        return self.default_msec_format % (text, record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if text.isprintable() else escape_controls(text)  # printable: nothing to escape


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra fields and,
    for errors, the formatted exception."""

    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        second, stamp = self._second
        if int(record.created) != second:  # the date and time of day, computed once a second
            second = int(record.created)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, stamp)
        data: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
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
    return JsonFormatter() if log_format == "json" else TextFormatter()


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
    model: Optional[str], items: int, tokens: int, trace_id: Optional[str] = None,
) -> None:
    r"""The access line: `<remote> "<method> <path>" <status> <ms>ms id=<request id> model=... items=... tokens=...`
    (and `trace=<trace id>` with tracing on; the JSON record's `trace_id`).

    In the line, `"` and `\` in the method and path are backslash-escaped so the quoted request
    cannot close early and add fields (the record's `path` field keeps the path as received);
    `request_id` is safe by construction (errors.request_id).

    The record is made and handled directly, as `ACCESS.info` would, but without looking up the
    caller's file and line (which no format here shows): a third of the line's cost."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    fields = {
        "request_id": request_id, "method": method, "path": path, "status": status,
        "duration_ms": round(seconds * 1000, 3), "remote": remote, "model": model, "items": items, "tokens": tokens,
    }
    line, args = '%s "%s %s" %d %.1fms id=%s model=%s items=%d tokens=%d', (
        remote or "-", _quoted(method), _quoted(path), status, seconds * 1000, request_id, model or "-", items, tokens)
    if trace_id is not None:
        fields["trace_id"] = trace_id
        line, args = line + " trace=%s", (*args, trace_id)
    record = ACCESS.makeRecord(ACCESS.name, logging.INFO, __file__, 0, line, args, None, "log_access", fields)
    ACCESS.handle(record)


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def gunicorn_logconfig(settings: Settings) -> dict:
    """`logconfig_dict` for Gunicorn's own loggers in the chosen format."""
    name = "JsonFormatter" if settings.log_format == "json" else "TextFormatter"
    formatter = {"()": f"embedding_service.observability.logs.{name}"}
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
