"""Process-wide logging set-up for the long-running DANM components (watchers, webhook).

Why it exists: in a cluster the logs are read by machines first (fluent-bit, Loki, jq), so each
record is one JSON object per line on stderr with a fixed core (``ts`` in RFC 3339 UTC,
``level``, ``component``, ``logger``, ``msg``) plus whatever structured context the call gave in
``extra={...}`` (``network=``, ``interface=``, ``pod=`` ...), searchable without regexes. The text
format is for people running a binary by hand and shows the same fields as ``key=value``.

Usage::

    configure_logging("netwatcher", level="debug")
    log.info("created host interface", extra={"network": "internal", "interface": "vx_int"})
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any, Literal, TextIO

LogFormat = Literal["json", "text"]

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

# NB: everything a LogRecord carries by itself; any other attribute came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class LoggingConfigError(ValueError):
    """An unknown level or format was asked for (typically from a command-line flag)."""


def _timestamp(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a logging call added with ``extra={...}``."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per record: the fixed core, then the ``extra`` fields."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            # NB: the core fields win; a clashing extra is kept under a prefixed name.
            entry[f"extra_{key}" if key in entry else key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # NB: default=str: a stray object in ``extra`` must degrade, never lose the line.
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``ts LEVEL component logger: msg key=value ...`` for humans at a terminal."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{key}={json.dumps(value, default=str, ensure_ascii=False)}"
            for key, value in extra_fields(record).items()
        )
        line = (
            f"{_timestamp(record.created)} {record.levelname:<7} {self.component} "
            f"{record.name}: {record.getMessage()}"
        )
        if fields:
            line += f" {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class _ComponentHandler(logging.StreamHandler[TextIO]):
    """Marks the handler ``configure_logging`` installed, so a second call replaces it."""


def parse_level(level: str) -> int:
    try:
        return LEVELS[level.strip().lower()]
    except KeyError:
        raise LoggingConfigError(
            f"unknown log level {level!r}; use one of {', '.join(sorted(set(LEVELS)))}"
        ) from None


def configure_logging(
    component: str,
    *,
    level: str = "info",
    fmt: LogFormat = "json",
    stream: TextIO | None = None,
) -> None:
    """Send every log record of the process to ``stream`` (stderr) in ``fmt``, at ``level``.

    Calling it again replaces the previous set-up; handlers installed by others (pytest's
    log capture, say) are left alone.
    """
    numeric_level = parse_level(level)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter(component)
    elif fmt == "text":
        formatter = TextFormatter(component)
    else:
        raise LoggingConfigError(f"unknown log format {fmt!r}; use json or text")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ComponentHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _ComponentHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(numeric_level)
