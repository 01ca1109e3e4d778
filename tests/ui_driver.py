"""Driving the kiosk window as a person would, for the pytest-qt tests (offscreen, no sleeps).

A test's kiosk sets ``app`` (the QApplication), ``host`` (the FlowHost whose flows the window's
posts reach) and ``window`` (the KioskWindow); these methods click, type and read through them.
"""

from PyQt5.QtWidgets import QAbstractButton, QLabel


class WindowDriver:
    """Clicks and reads on ``self.window``; ``settle`` delivers what was posted and lets the screens arrive."""

    def settle(self):
        """Deliver what the widgets posted, then let the queued screen signals arrive."""
        for _ in range(3):
            self.host.step()
            self.app.processEvents()

    def click(self, name):
        widget = self.window.findChild(QAbstractButton, name)
        assert widget is not None, f"no button {name} on {self.shown}"
        assert widget.isVisible() and widget.isEnabled(), f"{name} is not clickable on {self.shown}"
        widget.click()
        self.settle()

    def type_digits(self, digits):
        for d in digits:
            self.window.findChild(QAbstractButton, f"key_{d}").click()

    def text(self, name):
        return self.window.findChild(QLabel, name).text()

    @property
    def shown(self):
        return self.window.screen.name


def windows_built_by(make):
    """A fixture's body: yields ``build(**kw)`` (``make(**kw)``) and closes every kiosk window it built."""
    made = []

    def build(**kw):
        kiosk = make(**kw)
        made.append(kiosk)
        return kiosk
    yield build
    for kiosk in made:
        kiosk.window.close()
