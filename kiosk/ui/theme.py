"""Sizes and colours of the screen: touch targets in millimetres, text scale, normal or high contrast.

A touch target must be at least 11.6 mm on the glass (WCAG 2.5.5's 44 CSS px at the reference
viewing distance), so pixel sizes come from the panel's density: its resolution and its
diagonal in inches (``ui.screen_diagonal_in``, since panels on a Pi often report no true size).
No Qt here except in ``stylesheet`` (plain text Qt reads).
"""

import math
from dataclasses import dataclass

MIN_TARGET_MM = 11.6
SPACING_MM = 1.5        # between targets, so a finger meant for one does not land on its neighbour
MM_PER_INCH = 25.4

# the layouts we design for: (width, height) -> the panel assumed (diagonal in inches) for the checks
LAYOUTS = {
    (800, 480): 7.0,     # the official Raspberry Pi 7" touch display (v1): 133 dpi
    (1024, 600): 7.0,    # the common 7" HDMI/DSI panels: 170 dpi
    (1280, 800): 10.1,   # 10.1" panels: 149 dpi
    (720, 1280): 7.0,    # 7" portrait panels (e.g. Raspberry Pi Touch Display 2 is 720x1280): 210 dpi
}


def dpi_of(width, height, diagonal_in):
    """Pixels per inch of a panel of this resolution and diagonal."""
    return math.hypot(width, height) / float(diagonal_in)


def mm_to_px(mm, dpi):
    return int(math.ceil(mm * dpi / MM_PER_INCH))


@dataclass(frozen=True)
class Theme:
    """Everything size- and colour-dependent, computed once per screen size and options."""

    width: int
    height: int
    dpi: float
    large_text: bool = False
    high_contrast: bool = False

    @classmethod
    def for_screen(cls, width, height, *, diagonal_in, large_text=False, high_contrast=False):
        return cls(int(width), int(height), dpi_of(width, height, diagonal_in), large_text, high_contrast)

    @property
    def portrait(self):
        return self.height > self.width

    @property
    def target_px(self):
        """The smallest side a touch target may have here."""
        return mm_to_px(MIN_TARGET_MM, self.dpi)

    @property
    def spacing_px(self):
        return max(6, mm_to_px(SPACING_MM, self.dpi))

    @property
    def font_px(self):
        """Body text: about 3.3 mm high (readable at arm's length), more with the large-text option."""
        base = max(16, int(round(3.3 * self.dpi / MM_PER_INCH)))
        return int(round(base * (1.3 if self.large_text else 1.0)))

    @property
    def title_px(self):
        return int(round(self.font_px * 1.35))

    @property
    def button_px(self):
        """Text on buttons: the body size, but never more than a touch target's height allows."""
        return min(self.font_px, int(self.target_px * 0.36))

    @property
    def key_px(self):
        """A keypad key's one character: large, within the key."""
        return min(self.title_px, int(self.target_px * 0.45))

    @property
    def small_px(self):
        return max(13, int(round(self.font_px * 0.8)))

    @property
    def colours(self):
        if self.high_contrast:
            return {"bg": "#000000", "fg": "#ffffff", "panel": "#000000", "button": "#000000", "button_fg": "#ffff00",
                    "border": "#ffffff", "primary": "#ffff00", "primary_fg": "#000000", "ok": "#00ff66",
                    "error": "#ff5050", "muted": "#ffffff", "accent": "#ffff00"}
        return {"bg": "#f4f6f8", "fg": "#1b2530", "panel": "#ffffff", "button": "#e3e8ee", "button_fg": "#1b2530",
                "border": "#b8c2cc", "primary": "#00695c", "primary_fg": "#ffffff", "ok": "#1b7f3b",
                "error": "#b3261e", "muted": "#4a5866", "accent": "#00695c"}

    def stylesheet(self):
        """The application's Qt style sheet."""
        c = self.colours
        border = 3 if self.high_contrast else 1
        return f"""
QWidget {{ background: {c['bg']}; color: {c['fg']}; font-size: {self.font_px}px; }}
QLabel {{ background: transparent; }}
QLabel[role="title"] {{ font-size: {self.title_px}px; font-weight: bold; }}
QLabel[role="small"] {{ font-size: {self.small_px}px; color: {c['muted']}; }}
QLabel[role="error"] {{ color: {c['error']}; font-weight: bold; }}
QLabel[role="ok"] {{ color: {c['ok']}; font-weight: bold; }}
QLabel[role="entry"] {{ background: {c['panel']}; border: {border}px solid {c['border']}; border-radius: 6px;
    font-size: {self.title_px}px; padding: 2px 8px; }}
QLabel[role="banner_ok"] {{ background: {c['ok']}; color: #ffffff; font-size: {self.title_px}px;
    font-weight: bold; border-radius: 8px; padding: 6px; }}
QLabel[role="banner_error"] {{ background: {c['error']}; color: #ffffff; font-size: {self.title_px}px;
    font-weight: bold; border-radius: 8px; padding: 6px; }}
QPushButton {{ background: {c['button']}; color: {c['button_fg']}; border: {border}px solid {c['border']};
    border-radius: 8px; padding: 4px 10px; font-size: {self.button_px}px; }}
QPushButton:pressed {{ background: {c['border']}; }}
QPushButton:disabled {{ color: {c['border']}; }}
QPushButton[role="primary"] {{ background: {c['primary']}; color: {c['primary_fg']}; font-weight: bold; }}
QPushButton[role="danger"] {{ background: {c['error']}; color: #ffffff; font-weight: bold; }}
QPushButton[role="selected"] {{ background: {c['panel']}; border: 3px solid {c['accent']}; font-weight: bold; }}
QPushButton[role="key"] {{ background: {c['panel']}; font-size: {self.key_px}px; padding: 0px; }}
QPushButton[role="flat"] {{ background: transparent; border: {border}px solid {c['border']}; }}
QFrame[role="topbar"] {{ background: {c['panel']}; border-bottom: {border}px solid {c['border']}; }}
QFrame[role="overlay"] {{ background: {c['panel']}; border: 3px solid {c['accent']}; border-radius: 12px; }}
"""
