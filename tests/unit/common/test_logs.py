"""configure_logging: JSON lines with the fixed core and ``extra`` fields, text format, levels."""

from __future__ import annotations

import datetime
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from common.logs import LoggingConfigError, configure_logging, parse_level


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_core_and_extra_fields() -> None:
    out = io.StringIO()
    configure_logging("netwatcher", stream=out)
    logging.getLogger("netwatcher.loop").info(
        "created %s", "vx_int", extra={"network": "internal", "interface": "vx_int", "vni": 42}
    )
    [entry] = lines(out)
    ts = entry.pop("ts")
    assert entry == {
        "level": "info",
        "component": "netwatcher",
        "logger": "netwatcher.loop",
        "msg": "created vx_int",
        "network": "internal",
        "interface": "vx_int",
        "vni": 42,
    }
    assert ts.endswith("Z")
    parsed = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(parsed - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).days == 0


def test_level_filters_and_levels_are_lowercase() -> None:
    out = io.StringIO()
    configure_logging("svcwatcher", level="WARNING", stream=out)
    log = logging.getLogger("svcwatcher")
    log.info("hidden")
    log.warning("shown")
    log.error("also shown")
    assert [(e["level"], e["msg"]) for e in lines(out)] == [
        ("warning", "shown"),
        ("error", "also shown"),
    ]


def test_exceptions_and_odd_values_stay_on_one_json_line() -> None:
    out = io.StringIO()
    configure_logging("webhook", stream=out)
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logging.getLogger("x").exception("failed", extra={"obj": object(), "msg_id": 1})
    [entry] = lines(out)  # NB: the traceback's newlines are escaped inside the JSON string
    assert "ValueError: bad" in entry["exc"]
    assert entry["obj"].startswith("<object object")
    assert entry["msg"] == "failed"


def test_extra_cannot_overwrite_core_fields() -> None:
    out = io.StringIO()
    configure_logging("netwatcher", stream=out)
    logging.getLogger("x").info("m", extra={"component": "spoof", "level": "x"})
    [entry] = lines(out)
    assert (entry["component"], entry["level"]) == ("netwatcher", "info")
    assert (entry["extra_component"], entry["extra_level"]) == ("spoof", "x")


def test_text_format_shows_extra_as_key_value() -> None:
    out = io.StringIO()
    configure_logging("netwatcher", fmt="text", stream=out)
    logging.getLogger("netwatcher.loop").warning("slow", extra={"network": "a b"})
    line = out.getvalue().strip()
    ts, rest = line.split(" ", 1)
    datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    assert rest == 'WARNING netwatcher netwatcher.loop: slow network="a b"'


def test_reconfiguring_replaces_our_handler_only() -> None:
    first, second = io.StringIO(), io.StringIO()
    other = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(other)
    try:
        configure_logging("a", stream=first)
        configure_logging("b", stream=second)
        logging.getLogger("x").warning("once")
        assert first.getvalue() == ""
        assert [e["component"] for e in lines(second)] == ["b"]
        assert other in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(other)


@pytest.mark.parametrize(
    ("text", "level"),
    [("debug", 10), ("INFO", 20), (" warn ", 30), ("warning", 30), ("Error", 40)],
)
def test_parse_level(text: str, level: int) -> None:
    assert parse_level(text) == level


def test_bad_level_and_format_are_clear_errors() -> None:
    with pytest.raises(LoggingConfigError, match="unknown log level 'verbose'; use one of"):
        configure_logging("x", level="verbose")
    with pytest.raises(LoggingConfigError, match="unknown log format 'xml'"):
        configure_logging("x", fmt="xml")  # type: ignore[arg-type]
