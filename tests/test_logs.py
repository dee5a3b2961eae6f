from __future__ import annotations

import io
import json
import logging

from bot import logs


def _capture(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logs.configure(level="INFO", fmt=fmt, stream=stream)
    return logging.getLogger("stifinder.test"), stream


def test_json_lines_when_not_on_a_terminal_with_extra_fields() -> None:
    logger, stream = _capture("auto")  # a StringIO is not a terminal
    logger.info("inbound stored", extra={"young_person": 7, "channel": "sms"})
    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "inbound stored"
    assert entry["level"] == "info"
    assert entry["logger"] == "stifinder.test"
    assert (entry["young_person"], entry["channel"]) == (7, "sms")


def test_phone_and_cpr_numbers_never_reach_the_log_in_full() -> None:
    logger, stream = _capture("json")
    logger.warning("send failed to +4520123456", extra={"to": "+4520123456", "text": "010203-1234"})
    line = stream.getvalue()
    assert "20123456" not in line
    assert "010203-1234" not in line
    entry = json.loads(line)
    assert entry["msg"] == "send failed to +45******56"
    assert entry["to"] == "+45******56"
    assert entry["text"] == "XXXXXX-XXXX"


def test_exceptions_are_redacted_too() -> None:
    logger, stream = _capture("json")
    try:
        raise ValueError("bad number +4520123456")
    except ValueError:
        logger.exception("oops")
    entry = json.loads(stream.getvalue())
    assert "+45******56" in entry["exc"]
    assert "20123456" not in entry["exc"]


def test_console_format_is_one_readable_line() -> None:
    logger, stream = _capture("console")
    logger.info("worker started", extra={"worker": "host:1"})
    line = stream.getvalue().strip()
    assert "INFO" in line
    assert line.endswith("stifinder.test: worker started  worker=host:1")


def test_routine_scheduler_chatter_is_not_logged() -> None:
    _, stream = _capture("json")
    logging.getLogger("apscheduler.executors.default").info('Running job "sweep"')
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    assert stream.getvalue() == ""
