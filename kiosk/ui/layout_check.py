"""Checks a drawn screen the way a demanding user would: nothing clipped, overlapping, off screen or too small.

Used by the layout test at every layout and language, and by ``kiosk ui screenshots --check``.
Leaves are the widgets a person reads or touches (labels, buttons, camera and finger views);
what lies inside a scroll area is judged against the scroll area, not the screen.
"""

from PyQt5.QtCore import QPoint, QRect
from PyQt5.QtWidgets import QAbstractButton, QLabel, QScrollArea, QWidget

from kiosk.ui.theme import mm_to_px
from kiosk.ui.widgets import CameraView, FingerAnimation

LEAVES = (QAbstractButton, QLabel, CameraView, FingerAnimation)
SLACK_PX = 1
MIN_GAP_MM = 1.0


def _in_scroll(widget, top):
    parent = widget.parentWidget()
    while parent is not None and parent is not top:
        if isinstance(parent, QScrollArea):
            return True
        parent = parent.parentWidget()
    return False


def leaves(window):
    """Visible leaf widgets with their rectangles in window coordinates (overlays excluded when hidden)."""
    found = []
    for w in window.findChildren(QWidget):
        if not isinstance(w, LEAVES) or not w.isVisibleTo(window) or _in_scroll(w, window):
            continue
        if isinstance(w, QLabel) and not w.text() and not w.pixmap():
            continue  # an empty label (no error now) shows nothing
        found.append((w, QRect(w.mapTo(window, QPoint(0, 0)), w.size())))
    return found


def _text_fits(w):
    fm = w.fontMetrics()
    if isinstance(w, QLabel):
        if w.wordWrap():
            return w.heightForWidth(w.width()) <= w.height() + SLACK_PX
        return fm.horizontalAdvance(w.text()) <= w.contentsRect().width() + SLACK_PX and \
            fm.height() <= w.contentsRect().height() + SLACK_PX
    if isinstance(w, QAbstractButton):
        return fm.horizontalAdvance(w.text()) + 8 <= w.width() and fm.height() <= w.height()
    return True


def _gap(a, b):
    """Pixels between two rectangles (0 when they touch or overlap)."""
    dx = max(b.left() - a.right() - 1, a.left() - b.right() - 1, 0)
    dy = max(b.top() - a.bottom() - 1, a.top() - b.bottom() - 1, 0)
    return max(dx, dy)


def problems(window, *, target_px, gap_px=None):
    """Every layout fault on the window as it is drawn now: [(kind, widget name or text), ...].

    ``gap_px``: the least space between two touch targets (default: 1 mm on this panel), so a
    finger meant for one does not land on its neighbour."""
    found = []
    if gap_px is None:
        gap_px = mm_to_px(MIN_GAP_MM, window.theme.dpi)
    screen = QRect(0, 0, window.width(), window.height())
    items = leaves(window)

    def who(w):
        return w.objectName() or (w.text()[:30] if hasattr(w, "text") else type(w).__name__)

    for w, rect in items:
        if not screen.contains(rect):
            found.append(("off screen", who(w)))
        if isinstance(w, QAbstractButton) and (w.width() < target_px or w.height() < target_px):
            found.append(("small target", f"{who(w)} {w.width()}x{w.height()} < {target_px}"))
        if not _text_fits(w):
            found.append(("clipped", who(w)))
    for i, (a, ra) in enumerate(items):
        for b, rb in items[i + 1:]:
            if a.isAncestorOf(b) or b.isAncestorOf(a):
                continue
            if ra.intersects(rb) and ra.intersected(rb).width() > SLACK_PX and ra.intersected(rb).height() > SLACK_PX:
                found.append(("overlap", f"{who(a)} / {who(b)}"))
            elif isinstance(a, QAbstractButton) and isinstance(b, QAbstractButton) and _gap(ra, rb) < gap_px:
                found.append(("crowded", f"{who(a)} / {who(b)} {_gap(ra, rb)} px apart"))
    if (window.width(), window.height()) != (window.theme.width, window.theme.height):
        found.append(("resized", f"{window.width()}x{window.height()}"))
    return found
