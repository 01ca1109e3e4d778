"""The flows' screen port for Qt: ``show()``/``dim()`` from the flows' thread become queued signals.

The flows call ``ports.show(name, **data)`` on their own thread; widgets may only be touched on
the Qt thread. ``QtScreen`` keeps what ``HeadlessScreen`` keeps (the current screen, listeners,
safe logging) and emits a signal that Qt queues to the window's thread. Nothing here blocks the
caller: the flows never wait for the screen.
"""

import logging

from PyQt5.QtCore import QObject, pyqtSignal

log = logging.getLogger(__name__)


class QtScreen(QObject):
    """A screen port for the flows that forwards to the Qt window by queued signals."""

    shown = pyqtSignal(str, object)
    dimmed = pyqtSignal(bool)

    def __init__(self, inner):
        super().__init__()
        self.inner = inner          # kiosk.device_ports.HeadlessScreen: state, listeners, logging

    @property
    def current(self):
        return self.inner.current

    @property
    def listeners(self):
        return self.inner.listeners

    @property
    def history(self):
        return self.inner.history

    def show(self, screen, **data):
        self.inner.show(screen, **data)
        self.shown.emit(screen, data)

    def dim(self, dimmed):
        self.inner.dim(dimmed)
        self.dimmed.emit(bool(dimmed))
