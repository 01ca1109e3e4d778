"""The fonts bundled in ``kiosk/ui/fonts`` (Noto Sans Arabic UI, DejaVu Sans; licenses beside them), loaded into Qt."""

import logging
from pathlib import Path

from PyQt5.QtGui import QFont, QFontDatabase

log = logging.getLogger(__name__)

FONTS = Path(__file__).resolve().parent / "fonts"
# Arabic from Noto Sans Arabic UI (the interface cut: a tighter line height than Noto Sans Arabic);
# what it lacks (Latin, symbols) falls back to DejaVu Sans
FAMILIES = ["Noto Sans Arabic UI", "DejaVu Sans"]


def load_fonts(app):
    """Register every bundled TTF and make them the application's font; returns the families loaded."""
    loaded = set()
    for path in sorted(FONTS.glob("*.ttf")):
        font_id = QFontDatabase.addApplicationFont(str(path))
        if font_id < 0:
            log.error("could not load the font %s", path.name)
            continue
        loaded.update(QFontDatabase.applicationFontFamilies(font_id))
    font = QFont(FAMILIES[0])
    font.setFamilies([f for f in FAMILIES if f in loaded] or FAMILIES)
    font.setStyleStrategy(QFont.PreferAntialias)
    app.setFont(font)
    return loaded
