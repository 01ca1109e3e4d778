"""Pictures of every screen in both languages, from the sample data (``kiosk ui screenshots``).

Each screen is drawn in a real ``KioskWindow`` off screen (Qt's offscreen platform where there is
no display) and saved as ``<screen>[-<n>]-<language>.png`` under the output folder.
"""

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class NoCamera:
    """A camera that has no frame: the view shows its dark background."""

    def latest(self):
        return None


def application():
    """The QApplication (made offscreen when there is no display), with the bundled fonts."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PyQt5.QtWidgets import QApplication

    from kiosk.ui.typefaces import load_fonts

    app = QApplication.instance() or QApplication(["kiosk"])
    load_fonts(app)
    return app


def write_all(out_dir, *, size=(1024, 600), languages=("ar", "en"), camera=None, clock=None, options=None,
              only=None):
    """Write one PNG per screen, sample and language; returns the paths written."""
    from kiosk.clock import FakeClock
    from kiosk.ui.registry import SCREENS
    from kiosk.ui.samples import SAMPLES
    from kiosk.ui.window import KioskWindow, Options

    app = application()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for language in languages:
        opts = Options(**{**(options or {}), "language": language})
        window = KioskWindow(post=lambda *a, **k: None, clock=clock or FakeClock(), options=opts,
                             camera=camera or NoCamera(), size=size)
        window.show()
        for name in SCREENS:
            if only and name not in only:
                continue
            for n, data in enumerate(SAMPLES[name]):
                window.show_screen(name, {**data, "language": language})
                window.tick()
                app.processEvents()
                suffix = f"-{n + 1}" if len(SAMPLES[name]) > 1 else ""
                path = out / f"{name}{suffix}-{language}.png"
                window.grab().save(str(path))
                written.append(path)
        window.close()
        window.deleteLater()
    app.processEvents()
    return written
