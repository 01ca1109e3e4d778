"""Composition root: the only place that builds and wires the parts.

Nothing imports this module but ``kiosk.cli``. Builders here pick backends by name from the
settings (never silently) and hand each part what it needs.
"""

import json
import logging
import sys
import time

from kiosk import config

log = logging.getLogger(__name__)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, level="INFO", json_lines=False, stream=None):
    """Configure logging once: journal-friendly text (no timestamps: journald adds them) or JSON."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def load_settings(args=None):
    """Settings from --config / $KIOSK_CONFIG / /etc/kiosk/kiosk.toml and the environment."""
    return config.load(getattr(args, "config", None))
