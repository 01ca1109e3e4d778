"""Logging is configured once, in app.py: plain text for the journal or one JSON object per line."""

import io
import json
import logging

from kiosk import app


def test_json_lines():
    stream = io.StringIO()
    app.configure_logging(level="INFO", json_lines=True, stream=stream)
    logging.getLogger("kiosk.test").info("door opened for %s", "main")
    entry = json.loads(stream.getvalue().strip())
    assert entry["msg"] == "door opened for main" and entry["level"] == "INFO" and entry["logger"] == "kiosk.test"


def test_text_has_no_timestamp_for_the_journal():
    stream = io.StringIO()
    app.configure_logging(level="WARNING", stream=stream)
    logging.getLogger("kiosk.test").info("hidden")
    logging.getLogger("kiosk.test").warning("shown")
    assert stream.getvalue() == "WARNING kiosk.test: shown\n"
    app.configure_logging(level="WARNING", stream=stream)
    # configuring again replaces, never doubles: one journal stream, one ring for the admin's log page
    kinds = sorted(type(h).__name__ for h in logging.getLogger().handlers)
    assert kinds == ["RecentLines", "StreamHandler"]
