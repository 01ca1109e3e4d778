"""Reusable touch widgets: buttons, digit keypad, Latin keyboard, camera view, fingerprint, checklist.

Every widget is sized from the ``Theme`` (touch targets in millimetres) and speaks through Qt
signals; none holds business logic. Typed digits and codes are shown left to right even on an
Arabic page, and the digit keypad keeps the phone order (1 2 3 on top, left to right).
"""

import logging
import math

from PyQt5.QtCore import QRectF, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QImage, QPainter, QPen
from PyQt5.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from kiosk.digits import western_digits

log = logging.getLogger(__name__)


def button(text, theme, *, role=None, on_click=None, name=None):
    """A push button no smaller than a touch target."""
    b = QPushButton(text)
    b.setMinimumSize(theme.target_px, theme.target_px)
    b.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
    b.setFocusPolicy(Qt.NoFocus)
    if role:
        b.setProperty("role", role)
    if name:
        b.setObjectName(name)
    if on_click is not None:
        b.clicked.connect(lambda _checked=False: on_click())
    return b


def label(text, *, role=None, wrap=True, align=None, name=None):
    """A label; ``role`` picks its style (title, small, error, ok, entry, banner_ok, banner_error)."""
    w = QLabel(text)
    w.setWordWrap(wrap)
    w.setTextFormat(Qt.PlainText)
    if role:
        w.setProperty("role", role)
    if align is not None:
        w.setAlignment(align)
    if name:
        w.setObjectName(name)
    return w


def entry(theme, *, name="entry"):
    """The box showing what was typed: always left to right (numbers, IDs, codes, usernames)."""
    w = label("", role="entry", wrap=False, name=name)
    w.setLayoutDirection(Qt.LeftToRight)
    w.setAlignment(Qt.AlignCenter)
    w.setMinimumHeight(theme.target_px)
    w.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
    return w


class DigitKeypad(QWidget):
    """0-9, delete and OK; ``changed(text)`` per key, ``submitted(text)`` on OK (Western digits).

    ``mask`` shows dots instead of digits (PINs); ``length`` bounds what can be typed and, with
    ``exact``, keeps OK disabled until that many digits are in.
    """

    changed = pyqtSignal(str)
    submitted = pyqtSignal(str)

    def __init__(self, words, theme, *, length=10, exact=False, mask=False, ok_text=None, parent=None):
        super().__init__(parent)
        self.words, self.theme = words, theme
        self.length, self.exact, self.mask = int(length), bool(exact), bool(mask)
        self.text = ""
        self.setLayoutDirection(Qt.LeftToRight)  # the phone order, in both languages
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(theme.spacing_px)
        self.keys = {}
        for i, digit in enumerate("123456789"):
            self.keys[digit] = button(words.digits(digit), theme, role="key", name=f"key_{digit}",
                                      on_click=lambda d=digit: self.press(d))
            grid.addWidget(self.keys[digit], i // 3, i % 3)
        self.delete = button("⌫", theme, role="key", name="key_delete", on_click=self.backspace)
        self.keys["0"] = button(words.digits("0"), theme, role="key", name="key_0", on_click=lambda: self.press("0"))
        self.ok = button(ok_text or words("btn.ok"), theme, role="primary", name="key_ok", on_click=self.submit)
        grid.addWidget(self.delete, 3, 0)
        grid.addWidget(self.keys["0"], 3, 1)
        grid.addWidget(self.ok, 3, 2)
        self._update()

    def press(self, digit):
        digit = western_digits(digit)
        if len(digit) == 1 and digit.isdigit() and len(self.text) < self.length:
            self.text += digit
            self._update()

    def backspace(self):
        self.text = self.text[:-1]
        self._update()

    def clear(self):
        self.text = ""
        self._update()

    def submit(self):
        if self.ok.isEnabled():
            self.submitted.emit(self.text)

    def shown(self):
        """What the entry box shows: dots for a PIN, the digits (localised, left to right) otherwise."""
        return "●" * len(self.text) if self.mask else self.words.typed(self.text)

    def _update(self):
        self.ok.setEnabled(len(self.text) == self.length if self.exact else bool(self.text))
        self.delete.setEnabled(bool(self.text))
        self.changed.emit(self.text)


KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
SYMBOL_ROWS = ("1234567890", "!@#$%^&*()", "-_=+.,?")


class LatinKeyboard(QWidget):
    """English letters, digits and symbols for username, password and e-mail; ``changed``/``submitted``."""

    changed = pyqtSignal(str)
    submitted = pyqtSignal(str)

    def __init__(self, words, theme, *, max_length=64, mask=False, parent=None):
        super().__init__(parent)
        self.words, self.theme = words, theme
        self.max_length, self.mask = int(max_length), bool(mask)
        self.text, self.shift, self.symbols = "", False, False
        self.setLayoutDirection(Qt.LeftToRight)  # an English keyboard, also on an Arabic page
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(theme.spacing_px)
        self.rows = []
        for r in range(3):
            row = QHBoxLayout()
            row.setSpacing(theme.spacing_px)
            box.addLayout(row)
            self.rows.append(row)
        self.letter_keys = []
        self.shift_key = button("⇧", theme, role="key", name="key_shift", on_click=self.toggle_shift)
        self.delete = button("⌫", theme, role="key", name="key_delete", on_click=self.backspace)
        self.symbol_key = button("?123", theme, name="key_symbols", on_click=self.toggle_symbols)
        bottom = QHBoxLayout()
        bottom.setSpacing(theme.spacing_px)
        self.ok = button(words("btn.ok"), theme, role="primary", name="key_ok", on_click=self.submit)
        bottom.addWidget(self.symbol_key, 2)
        for ch in "@.":
            bottom.addWidget(button(ch, theme, role="key", name=f"key_{ch}", on_click=lambda c=ch: self.press(c)), 1)
        bottom.addWidget(self.delete, 1)
        bottom.addWidget(self.ok, 3)
        box.addLayout(bottom)
        self._layout_keys()
        self._update()

    def key_rows(self):
        """QWERTY where ten keys fit across at full touch size; on a narrow (portrait) screen,
        the letters in alphabetical rows as wide as fit (a split QWERTY would be hard to find)."""
        width = self.theme.width - 2 * self.theme.spacing_px
        across = max(5, (width + self.theme.spacing_px) // (self.theme.target_px + self.theme.spacing_px))
        rows = SYMBOL_ROWS if self.symbols else KEY_ROWS
        if across >= max(len(r) for r in rows) + (0 if self.symbols else 1):
            return rows
        chars = "".join(rows) if self.symbols else "".join(sorted("".join(rows)))
        return tuple(chars[i:i + across] for i in range(0, len(chars), across))

    def _layout_keys(self):
        for key in self.letter_keys:
            key.setParent(None)
            key.deleteLater()
        self.letter_keys = []
        rows = self.key_rows()
        while len(self.rows) < len(rows):
            row = QHBoxLayout()
            row.setSpacing(self.theme.spacing_px)
            self.layout().insertLayout(len(self.rows), row)
            self.rows.append(row)
        for r, (row, chars) in enumerate(zip(self.rows, rows)):
            if r == len(rows) - 1 and not self.symbols:
                row.insertWidget(0, self.shift_key)
            for ch in chars:
                shown = ch.upper() if self.shift and not self.symbols else ch
                key = button(shown, self.theme, role="key", name=f"key_{ch}", on_click=lambda c=ch: self.press(c))
                row.addWidget(key)
                self.letter_keys.append(key)
        self.shift_key.setVisible(not self.symbols)
        self.symbol_key.setText("ABC" if self.symbols else "?123")

    def press(self, ch):
        if self.shift and not self.symbols:
            ch = ch.upper()
        if len(self.text) < self.max_length:
            self.text += ch
        if self.shift:  # one capital, like a phone keyboard
            self.shift = False
            self._layout_keys()
        self._update()

    def toggle_shift(self):
        self.shift = not self.shift
        self._layout_keys()

    def toggle_symbols(self):
        self.symbols = not self.symbols
        self.shift = False
        self._layout_keys()

    def backspace(self):
        self.text = self.text[:-1]
        self._update()

    def set_text(self, text):
        """Hold ``text`` (another field's, when one keyboard serves several)."""
        self.text = str(text)[:self.max_length]
        self._update()

    def submit(self):
        if self.text:
            self.submitted.emit(self.text)

    def shown(self):
        return "●" * len(self.text) if self.mask else self.words.ltr(self.text)

    def _update(self):
        self.ok.setEnabled(bool(self.text))
        self.changed.emit(self.text)


class RulesChecklist(QWidget):
    """Each rule with a tick or a cross, updated live; ``set_rules([(rule, ok), ...])``."""

    def __init__(self, words, theme, prefix, rules, *, columns=1, parent=None):
        super().__init__(parent)
        self.words, self.prefix = words, prefix
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(theme.spacing_px * 2)
        grid.setVerticalSpacing(0)
        self.labels = {}
        for i, (rule, _ok) in enumerate(rules):
            w = label("", role="small", wrap=False, name=f"rule_{rule}")
            self.labels[rule] = w
            grid.addWidget(w, i // columns, i % columns)
        self.set_rules(rules)

    def set_rules(self, rules):
        for rule, ok in rules:
            w = self.labels.get(rule)
            if w is None:
                continue
            w.setText(("✓ " if ok else "✗ ") + self.words(f"{self.prefix}.{rule}"))
            w.setProperty("role", "ok" if ok else "small")
            w.setProperty("passed", bool(ok))
            w.style().unpolish(w)
            w.style().polish(w)


class CameraView(QWidget):
    """The live camera, mirrored like a mirror, with the oval guide the face should fill.

    ``set_frame(frame)`` takes a camera Frame (BGR numpy image) and only keeps a reference: the
    QImage wraps the frame's buffer (no copy) and painting scales it straight to the screen.
    A frame with the index already shown is ignored: only the newest frame is ever painted.
    """

    def __init__(self, theme, *, guide=True, parent=None):
        super().__init__(parent)
        self.theme = theme
        self.guide = guide
        self.state = "neutral"   # neutral | ok | hint: the oval's colour
        self.box = None          # the face box, in the frame's lores coordinates (unused when None)
        self._frame = None
        self._image = None
        self.frames_shown = 0
        self.last_index = None
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setMinimumSize(theme.target_px * 2, theme.target_px * 2)
        self.setAttribute(Qt.WA_OpaquePaintEvent)

    def set_frame(self, frame):
        if frame is None or frame.index == self.last_index:
            return False
        image = frame.image
        if image.ndim != 3 or image.shape[2] != 3 or not image.flags["C_CONTIGUOUS"]:
            return False
        h, w = image.shape[:2]
        self._frame = frame  # keeps the buffer alive while the QImage points into it
        self._image = QImage(image.data, w, h, image.strides[0], QImage.Format_BGR888)
        self.last_index = frame.index
        self.update()
        return True

    def paintEvent(self, _event):
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        rect = QRectF(self.rect())
        p.fillRect(self.rect(), QColor("#202428"))
        if self._image is not None:
            iw, ih = self._image.width(), self._image.height()
            scale = max(rect.width() / iw, rect.height() / ih)  # fill, cropping the edges
            tw, th = iw * scale, ih * scale
            p.save()
            p.translate(rect.center())
            p.scale(-1, 1)  # a mirror: turning left moves left on screen
            p.drawImage(QRectF(-tw / 2, -th / 2, tw, th), self._image)
            p.restore()
            self.frames_shown += 1
        if self.guide:
            c = self.theme.colours
            colour = {"ok": c["ok"], "hint": "#f0b400"}.get(self.state, "#ffffff")
            ow = min(rect.width() * 0.5, rect.height() * 0.62)
            oh = ow * 1.3
            oval = QRectF(rect.center().x() - ow / 2, rect.center().y() - oh / 2, ow, oh)
            p.setPen(QPen(QColor(colour), max(3, self.theme.spacing_px // 2)))
            p.drawEllipse(oval)
        p.end()


class FingerAnimation(QWidget):
    """A fingertip over the sensor window: ridges drawn, a ring pulsing while waiting (``step()``)."""

    def __init__(self, theme, *, parent=None):
        super().__init__(parent)
        self.theme = theme
        self.phase = 0.0
        self.state = "place"   # place | lift | ok | problem
        self.setMinimumSize(theme.target_px * 2, theme.target_px * 2)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def step(self, dt_s=0.1):
        self.phase = (self.phase + dt_s) % 1.0
        self.update()

    def paintEvent(self, _event):
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        c = self.theme.colours
        colour = QColor({"ok": c["ok"], "problem": c["error"], "lift": c["muted"]}.get(self.state, c["accent"]))
        side = min(self.width(), self.height()) * 0.9
        cx, cy = self.width() / 2, self.height() / 2
        p.setPen(QPen(QColor(c["border"]), 3))
        p.drawRoundedRect(QRectF(cx - side / 2, cy - side / 2, side, side), 12, 12)  # the sensor window
        p.setPen(QPen(colour, max(2.0, side / 60)))
        for i in range(1, 7):  # ridges: nested arcs of a fingertip
            r = side * 0.07 * i
            p.drawArc(QRectF(cx - r * 0.8, cy - r, r * 1.6, r * 2.0), 20 * 16, 320 * 16)
        if self.state in ("place", "lift"):
            pulse = 0.5 + 0.5 * math.sin(self.phase * 2 * math.pi)
            ring = side * (0.42 + 0.05 * pulse)
            colour.setAlphaF(0.3 + 0.5 * pulse)
            p.setPen(QPen(colour, 4))
            p.drawEllipse(QRectF(cx - ring, cy - ring, 2 * ring, 2 * ring))
        p.end()
