"""The simulated module's flash: template slots and persistent settings, kept in a JSON file.

The file is rewritten atomically (temporary file + rename) after every change, as a module's
flash keeps its library across power cycles. Without a path the library lives in memory.
"""

import json
import logging
import os
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

FORMAT = 1

# templates the module's flash holds, by model (datasheet figures)
MODEL_CAPACITY = {"R305": 256, "R307": 1000, "R503": 200, "AS608": 300, "ZFM": 256}
LED_MODELS = ("R503",)

DEFAULT_SETTINGS = {
    "password": 0,
    "address": 0xFFFFFFFF,
    "security_level": 3,
    "packet_size_code": 2,  # 128-byte data packets
    "baud_factor": 6,  # 57,600 bps
}


class TemplateLibrary:
    """Numbered template slots plus the few settings a module keeps in flash."""

    def __init__(self, *, capacity, path=None):
        if not 1 <= capacity <= 0xFFFF:
            raise ValueError(f"capacity must be within 1..65535, got {capacity}")
        self.capacity = capacity
        self.path = Path(path) if path else None
        self.settings = dict(DEFAULT_SETTINGS)
        self._templates = {}
        self._lock = threading.Lock()
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self):
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{self.path}: not a simulator template library ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{self.path}: not a simulator template library (format {FORMAT})")
        self.settings.update({k: int(v) for k, v in data.get("settings", {}).items() if k in DEFAULT_SETTINGS})
        for key, value in data.get("templates", {}).items():
            slot = int(key)
            if slot >= self.capacity:
                raise ValueError(f"{self.path}: slot {slot} is beyond the capacity {self.capacity}")
            self._templates[slot] = bytes.fromhex(value)
        log.info("template library %s: %d templates", self.path, len(self._templates))

    def _save(self):
        if self.path is None:
            return
        data = {
            "format": FORMAT,
            "capacity": self.capacity,
            "settings": self.settings,
            "templates": {str(slot): blob.hex() for slot, blob in sorted(self._templates.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, slot):
        with self._lock:
            return self._templates.get(slot)

    def put(self, slot, template):
        with self._lock:
            self._templates[slot] = bytes(template)
            self._save()

    def delete(self, start, count):
        with self._lock:
            for slot in range(start, start + count):
                self._templates.pop(slot, None)
            self._save()

    def clear(self):
        with self._lock:
            self._templates.clear()
            self._save()

    def set_setting(self, name, value):
        with self._lock:
            self.settings[name] = int(value)
            self._save()

    def count(self):
        with self._lock:
            return len(self._templates)

    def slots(self):
        with self._lock:
            return sorted(self._templates)

    def in_range(self, start, count):
        """``{slot: template}`` for occupied slots in [start, start + count)."""
        with self._lock:
            return {s: t for s, t in self._templates.items() if start <= s < start + count}

    def index_page(self, page):
        """32 bytes: bit i of byte j set when slot page*256 + j*8 + i holds a template."""
        out = bytearray(32)
        with self._lock:
            for slot in self._templates:
                offset = slot - page * 256
                if 0 <= offset < 256:
                    out[offset // 8] |= 1 << (offset % 8)
        return bytes(out)
