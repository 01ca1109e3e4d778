"""What every screen shares: the context it draws in, its title, its top-bar action, its buttons.

A screen is built from the data a flow passed to ``ports.show(name, **data)`` and speaks back only
by posting flow events (``ctx.post(event, **data)``), which the flows' thread handles. A screen
that can take new data in place (a guidance change, the next capture) says so in ``take``;
otherwise the window builds it anew.
"""

import logging
from dataclasses import dataclass, field

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from kiosk.ui.widgets import button, label

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What a screen needs from the window: words, sizes, a way to post events, the camera."""

    words: object                  # kiosk.ui.i18n.Words
    theme: object                  # kiosk.ui.theme.Theme
    post: object                   # post(event, **data): to the flows' thread
    camera: object = None          # has latest() -> Frame | None, or None
    extras: dict = field(default_factory=dict)


class Screen(QWidget):
    """Base of every screen; subclasses set ``name``s in the registry and implement ``build``."""

    interactive = True      # a person is expected to act: the inactivity warning applies
    uses_camera = False     # the window feeds ``self.camera_view`` with the newest frame
    shows_health = False    # gets ``problems`` (camera_unavailable, sensor_unavailable) in its data
    top_action = ("btn.cancel", "cancelled")   # the top bar's button (text key, event), or None

    def __init__(self, ctx, name, data):
        super().__init__()
        self.ctx, self.name, self.data = ctx, name, dict(data)
        self.words, self.theme = ctx.words, ctx.theme
        self.camera_view = None
        self.box = QVBoxLayout(self)
        m = self.theme.spacing_px
        self.box.setContentsMargins(m, m, m, m)
        self.box.setSpacing(m)
        self.build()

    # --- for subclasses -------------------------------------------------------------------------

    def build(self):
        raise NotImplementedError

    def title(self):
        return self.words(f"{self.name}.title", default="")

    def take(self, name, data):
        """Take new data in place; return False to be rebuilt (the default)."""
        return False

    def post(self, event, **data):
        log.debug("screen %s posts %s", self.name, event)
        self.ctx.post(event, **data)

    def actions(self, items, *, box=None):
        """A row of buttons: [(text, event, role, data)], in reading order (mirrored in Arabic)."""
        row = QHBoxLayout()
        row.setSpacing(self.theme.spacing_px)
        made = []
        for text, event, role, data in items:
            b = button(text, self.theme, role=role, name=f"action_{event}",
                       on_click=lambda e=event, d=data: self.post(e, **(d or {})))
            row.addWidget(b)
            made.append(b)
        (box or self.box).addLayout(row)
        return made

    def heading(self, text, *, role="title", box=None):
        w = label(text, role=role, align=Qt.AlignCenter)
        (box or self.box).addWidget(w)
        return w

    def split(self):
        """Two panes side by side in landscape, stacked in portrait: returns (first, second) layouts."""
        outer = QVBoxLayout() if self.theme.portrait else QHBoxLayout()
        outer.setSpacing(self.theme.spacing_px)
        first, second = QVBoxLayout(), QVBoxLayout()
        for b in (first, second):
            b.setSpacing(self.theme.spacing_px)
        holder1, holder2 = QWidget(), QWidget()
        holder1.setLayout(first)
        holder2.setLayout(second)
        first.setContentsMargins(0, 0, 0, 0)
        second.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(holder1, 3)
        outer.addWidget(holder2, 2)
        self.box.addLayout(outer)
        return first, second

    def reason_text(self, reason, prefix="reason"):
        """A reason code in words: exact, then its family (``timeout_more_light`` -> ``timeout``), then generic."""
        reason = str(reason or "other")
        family = reason.split("_", 1)[0]
        return self.words.first(f"{prefix}.{reason}", f"{prefix}.{family}", f"{prefix}.other")

    def guidance_text(self, code):
        return self.words.first(f"guidance.{code}", "guidance.other") if code else ""
