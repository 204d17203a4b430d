"""Logs in JSON or the console's format, at the configured level, on the stream given."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from restitution import logs
from restitution.settings import Settings


@pytest.fixture(autouse=True)
def _defaults() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_json_lines_carry_the_event_its_fields_level_and_time() -> None:
    out = io.StringIO()
    logs.configure("json", "info", to=out)
    structlog.get_logger().info("email_skipped_no_address", role="buyer", party_id="b_1")
    line = json.loads(out.getvalue())
    assert line["event"] == "email_skipped_no_address" and line["level"] == "info"
    assert line["role"] == "buyer" and line["party_id"] == "b_1"
    assert line["timestamp"].endswith("Z")


def test_lines_below_the_level_are_dropped() -> None:
    out = io.StringIO()
    logs.configure("json", "warning", to=out)
    log = structlog.get_logger()
    log.info("quiet")
    log.warning("loud")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["loud"]


def test_an_exception_is_logged_as_text_inside_the_json() -> None:
    out = io.StringIO()
    logs.configure("json", "info", to=out)
    try:
        raise ValueError("bad row")
    except ValueError:
        structlog.get_logger().exception("worker_step_failed", loop="clock")
    line = json.loads(out.getvalue())
    assert "ValueError: bad row" in line["exception"] and line["level"] == "error"


def test_auto_is_json_off_a_terminal_and_console_on_request() -> None:
    out = io.StringIO()  # not a terminal
    logs.configure("auto", "info", to=out)
    structlog.get_logger().info("started")
    assert json.loads(out.getvalue())["event"] == "started"
    out = io.StringIO()
    logs.configure("console", "info", to=out)
    structlog.get_logger().info("started")
    assert "started" in out.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.getvalue())


def test_settings_name_the_format_and_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTITUTION_LOG_FORMAT", "json")
    monkeypatch.setenv("RESTITUTION_LOG_LEVEL", "warning")
    settings = Settings()
    assert (settings.log_format, settings.log_level) == ("json", "warning")
    monkeypatch.setenv("RESTITUTION_LOG_LEVEL", "loud")
    with pytest.raises(ValueError):
        Settings()
