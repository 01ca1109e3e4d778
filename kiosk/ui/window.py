"""The kiosk window: a top bar (way back, title, language), the current screen, and overlays.

The window builds the screen a flow named (``show_screen``), feeds screens that show the camera
with the newest frame only, dims when the flow says so and wakes on a touch, warns before the
inactivity timeout with a countdown and a one-touch "more time", and mirrors itself for Arabic.
Time comes from an injected clock; ``tick()`` (a QTimer in the app, called directly in tests)
drives the countdown, the camera view and the animation. Touches are reported to the flows as
``user_active`` (at most once a second) so their deadlines move with the person.
"""

import logging
import math
from dataclasses import dataclass

from PyQt5.QtCore import QEvent, QObject, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QFontMetrics
from PyQt5.QtWidgets import QApplication, QFrame, QHBoxLayout, QVBoxLayout, QWidget

from kiosk.ui.i18n import Words
from kiosk.ui.registry import SCREENS, WINDOW_SCREENS
from kiosk.ui.screen import Context
from kiosk.ui.theme import Theme
from kiosk.ui.widgets import button, label

log = logging.getLogger(__name__)

ACTIVITY_EVERY_S = 1.0
HEALTH_EVERY_S = 1.0
TICK_S = 1 / 15   # the camera view's refresh (the camera's frame rate) and the countdown's
INPUT_EVENTS = (QEvent.MouseButtonPress, QEvent.TouchBegin, QEvent.KeyPress)


@dataclass(frozen=True)
class Options:
    """How the window looks and behaves (from the ``ui`` settings)."""

    language: str = "ar"
    eastern_digits: bool = False
    large_text: bool = False
    high_contrast: bool = False
    diagonal_in: float = 7.0
    inactivity_timeout_s: float = 30.0
    warning_s: float = 10.0

    @classmethod
    def from_settings(cls, ui_settings):
        s = ui_settings
        return cls(language=s.language, eastern_digits=s.eastern_digits, large_text=s.large_text,
                   high_contrast=s.high_contrast, diagonal_in=s.screen_diagonal_in,
                   inactivity_timeout_s=s.inactivity_timeout_s, warning_s=s.inactivity_warning_s)


class KioskWindow(QWidget):
    """The one window of the kiosk (see the module docstring)."""

    first_painted = pyqtSignal()

    def __init__(self, *, post, clock, options=None, camera=None, size=(800, 480), health=None, services=True):
        super().__init__()
        self.services = bool(services)  # the citizen services are registered: the idle screen offers them
        self.post_event = post
        self.health = health            # () -> problems now (camera_unavailable, sensor_unavailable)
        self.problems = ()
        self._health_checked_s = None
        self.clock = clock
        self.options = options or Options()
        self.camera = camera
        self.language = self.options.language
        self.screen = None
        self.flow_screen = None         # (name, data) the flows showed last: where a window screen returns
        self.dimmed = False
        self.painted = False
        self.last_input_s = clock.monotonic()
        self._last_activity_post_s = None
        self.setObjectName("kiosk_window")
        self.setWindowTitle("kiosk")
        self.resize(*size)
        self.theme = self._theme()
        self._build()
        QApplication.instance().installEventFilter(self)

    # --- construction ---------------------------------------------------------------------------

    def _theme(self):
        o = self.options
        return Theme.for_screen(self.width(), self.height(), diagonal_in=o.diagonal_in, large_text=o.large_text,
                                high_contrast=o.high_contrast)

    def words(self):
        return Words(self.language, eastern_digits=self.options.eastern_digits)

    def _build(self):
        self.setStyleSheet(self.theme.stylesheet())
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.topbar = QFrame()
        self.topbar.setProperty("role", "topbar")
        bar = QHBoxLayout(self.topbar)
        m = self.theme.spacing_px
        bar.setContentsMargins(m, m // 3, m, m // 3)
        bar.setSpacing(m)
        self.back = button("", self.theme, name="top_action", on_click=self._top_action)
        self.title = label("", role="title", wrap=False, align=Qt.AlignCenter, name="title")
        self.title.setMinimumWidth(1)  # the title gives way to the buttons; _fit_title shrinks its font
        self.lang = button("", self.theme, name="language", on_click=self.switch_language)
        for b in (self.back, self.lang):
            b.setMaximumWidth(max(self.theme.target_px * 3, self.width() // 4))
        # "back one step" beside cancel, on the service screens that offer it
        self.step_back = button("", self.theme, name="back_action", on_click=self._back_action)
        self.step_back.setMaximumWidth(max(self.theme.target_px * 2, self.width() // 6))
        bar.addWidget(self.back, 0)
        bar.addWidget(self.step_back, 0)
        bar.addWidget(self.title, 1)
        bar.addWidget(self.lang, 0)
        outer.addWidget(self.topbar)
        self.body = QVBoxLayout()
        self.body.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(self.body, 1)
        self.warning = self._build_warning()
        self.dim_cover = QWidget(self)
        self.dim_cover.setObjectName("dim_cover")
        self.dim_cover.setStyleSheet("background: rgba(0, 0, 0, 215);")
        self.dim_cover.hide()

    def _build_warning(self):
        """A dimmed backdrop over the whole screen with the countdown and "more time" in the middle."""
        backdrop = QWidget(self)
        backdrop.setObjectName("inactivity_warning")
        backdrop.setAttribute(Qt.WA_StyledBackground, True)
        backdrop.setStyleSheet("QWidget#inactivity_warning { background: rgba(0, 0, 0, 140); }")
        outer = QVBoxLayout(backdrop)
        box = QFrame()
        box.setProperty("role", "overlay")
        side = min(self.width(), self.height())
        box.setFixedWidth(min(self.width() - 4 * self.theme.spacing_px, int(side * 1.1)))
        outer.addWidget(box, 0, Qt.AlignCenter)
        lay = QVBoxLayout(box)
        m = self.theme.spacing_px
        lay.setContentsMargins(2 * m, 2 * m, 2 * m, 2 * m)
        lay.setSpacing(2 * m)
        self.warning_title = label("", role="title", align=Qt.AlignCenter, name="warning_title")
        self.warning_text = label("", align=Qt.AlignCenter, name="warning_countdown")
        self.more_time = button("", self.theme, role="primary", name="more_time", on_click=self.activity)
        for w in (self.warning_title, self.warning_text, self.more_time):
            lay.addWidget(w)
        backdrop.hide()
        return backdrop

    def _rebuild(self):
        """Sizes or options changed: new theme, new chrome, the current screen built again."""
        current = self.screen
        for child in list(self.children()):
            if isinstance(child, QWidget):
                child.setParent(None)
                child.deleteLater()
        QWidget().setLayout(self.layout())  # drop the old layout
        self.screen = None
        self.theme = self._theme()
        self._build()
        if current is not None:
            self.show_screen(current.name, current.data)

    # --- what the flows say ---------------------------------------------------------------------

    def show_screen(self, name, data):
        """Build (or update in place) the screen ``name`` with ``data`` (a slot: the Qt thread only)."""
        data = dict(data or {})
        if name in SCREENS and name not in WINDOW_SCREENS:
            self.flow_screen = (name, dict(data))
        if data.get("language") in ("ar", "en"):
            self.language = data["language"]
        self.last_input_s = self.clock.monotonic()
        self.warning.hide()
        cls = SCREENS.get(name)
        if cls is None:
            log.error("no screen for %s: showing the error screen", name)
            cls, name, data = SCREENS["error"], "error", {"kind": "unknown_screen"}
        if self.screen is not None and type(self.screen) is cls and self.screen.take(name, data):
            self._chrome()
            return
        if cls.shows_health and self.health is not None:
            data["problems"] = list(self.problems)
        ctx = Context(words=self.words(), theme=self.theme, post=self.post, camera=self.camera,
                      extras={"services": self.services})
        screen = cls(ctx, name, data)
        screen.setObjectName(f"screen_{name}")
        if self.screen is not None:
            self.body.removeWidget(self.screen)
            self.screen.setParent(None)
            self.screen.deleteLater()
        self.screen = screen
        self.body.addWidget(screen)
        screen.show()
        self._chrome()
        self._feed_camera()

    def _chrome(self):
        w = self.words()
        self.setLayoutDirection(Qt.RightToLeft if w.rtl else Qt.LeftToRight)
        self.title.setText(self.screen.title() if self.screen is not None else "")
        action = self.screen.top_action if self.screen is not None else None
        self.back.setVisible(action is not None)
        arrow = "→ " if w.rtl else "← "   # "back" points to where reading started
        step_back = getattr(self.screen, "back_action", None)
        if action is not None:
            mark = "✕ " if action[1] == "cancelled" and step_back is not None else \
                arrow if action[1] in ("back_requested", "cancelled", "home_chosen") else ""
            self.back.setText(mark + w(action[0]))   # beside "back one step", cancel is a cross
        self.step_back.setVisible(step_back is not None)
        if step_back is not None:  # a narrow bar keeps the arrow only: the title needs the room
            self.step_back.setText(arrow.strip() if self.theme.portrait else arrow + w(step_back[0]))
        self.lang.setVisible(getattr(self.screen, "language_switch", True))
        self.lang.setText(w("language.other"))
        self.warning_title.setText(w("inactivity.title"))
        self.more_time.setText(w("btn.more_time"))
        self._fit_title()

    def _fit_title(self):
        """The top bar's title on one line: a smaller font for a long title on a narrow screen."""
        self.topbar.layout().activate()
        room = self.title.contentsRect().width() - self.theme.spacing_px  # a little air beside the buttons
        font = self.title.font()
        size = min(self.theme.title_px, int(self.theme.target_px * 0.5))  # within the bar's height
        while size > self.theme.small_px:
            font.setPixelSize(size)
            if QFontMetrics(font).horizontalAdvance(self.title.text()) <= room:
                break
            size -= 1
        short = getattr(self.screen, "short_title", None)
        if size <= self.theme.small_px and short is not None and self.title.text() != short():
            self.title.setText(short())      # the step (n/m) gives way first
            self._fit_title()
            return
        self.title.setStyleSheet(f"font-size: {size}px;")

    def set_dimmed(self, dimmed):
        self.dimmed = bool(dimmed)
        self.dim_cover.setGeometry(self.rect())
        self.dim_cover.setVisible(self.dimmed)
        if self.dimmed:
            self.dim_cover.raise_()

    # --- what the person does -------------------------------------------------------------------

    def post(self, event, **data):
        if event == "services_chosen":      # the window's own menu: no flow is involved until a service is chosen
            self.show_screen("service_menu", {})
            return
        if event == "home_chosen":
            self.leave_window_screen()
            return
        self.post_event(event, **data)

    def leave_window_screen(self):
        """Back from the window's own screen (the service menu) to what the flows showed last."""
        if self.flow_screen is not None:
            self.show_screen(*self.flow_screen)

    def _top_action(self):
        if self.screen is not None and self.screen.top_action is not None:
            self.post(self.screen.top_action[1])

    def _back_action(self):
        action = getattr(self.screen, "back_action", None)
        if action is not None:
            self.post(action[1])

    def switch_language(self):
        self.language = self.words().other_language()
        self.post("language_chosen", language=self.language)
        if self.screen is not None:
            current, self.screen = self.screen, None
            self.body.removeWidget(current)
            current.setParent(None)
            current.deleteLater()
            self.show_screen(current.name, {**current.data, "language": self.language})

    def activity(self):
        """A touch: the inactivity countdown starts over, the flows hear of it, a dimmed screen wakes."""
        now = self.clock.monotonic()
        self.last_input_s = now
        self.warning.hide()
        if self.dimmed:
            self.set_dimmed(False)
            self.post("presence_detected")
        if self._last_activity_post_s is None or now - self._last_activity_post_s >= ACTIVITY_EVERY_S:
            self._last_activity_post_s = now
            self.post("user_active")

    def eventFilter(self, obj, event):
        if event.type() in INPUT_EVENTS and isinstance(obj, QWidget) and (obj is self or self.isAncestorOf(obj)):
            woke = self.dimmed
            self.activity()
            if woke:
                return True  # the touch that wakes the screen presses nothing
        return False

    # --- time -----------------------------------------------------------------------------------

    def tick(self):
        """Countdown, camera view, animation: called every TICK_S by a timer (directly in tests)."""
        self._feed_camera()
        self._check_health()
        if self.screen is not None and hasattr(self.screen, "animation"):
            self.screen.animation.step(TICK_S)
        if self.screen is not None and hasattr(self.screen, "tick"):
            self.screen.tick(TICK_S)      # a countdown drawn by the screen (the flow enforces it)
        self._check_inactivity()

    def remaining_s(self):
        """Seconds before the flow gives up on this screen, or None where no one is expected to act."""
        if self.screen is None or not self.screen.interactive:
            return None
        return self.options.inactivity_timeout_s - (self.clock.monotonic() - self.last_input_s)

    def _check_inactivity(self):
        remaining = self.remaining_s()
        if remaining is not None and remaining <= 0 and getattr(self.screen, "local", False):
            self.leave_window_screen()      # no flow times the window's own menu out
            return
        if remaining is None or remaining > self.options.warning_s or self.dimmed:
            self.warning.hide()
            return
        seconds = max(0, int(math.ceil(remaining)))
        self.warning_text.setText(self.words()("inactivity.countdown", seconds=seconds))
        if not self.warning.isVisible():
            self.warning.setGeometry(self.rect())
            self.warning.show()
            self.warning.raise_()

    def _check_health(self):
        """Every HEALTH_EVERY_S: what is broken (camera, sensor); a screen that shows it is redrawn."""
        now = self.clock.monotonic()
        if self.health is None or (self._health_checked_s is not None and
                                   now - self._health_checked_s < HEALTH_EVERY_S):
            return
        self._health_checked_s = now
        problems = tuple(self.health())
        if problems != self.problems:
            log.info("touchscreen: %s", ", ".join(problems) or "camera and sensor back")
            self.problems = problems
            if self.screen is not None and self.screen.shows_health:
                current, self.screen = self.screen, None
                self.body.removeWidget(current)
                current.setParent(None)
                current.deleteLater()
                self.show_screen(current.name, current.data)

    def _feed_camera(self):
        view = getattr(self.screen, "camera_view", None)
        if view is None or self.camera is None:
            return
        view.set_frame(self.camera.latest())  # the newest frame only; one already shown is skipped

    # --- Qt -------------------------------------------------------------------------------------

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if (self.theme.width, self.theme.height) != (self.width(), self.height()):
            self._rebuild()
        self.dim_cover.setGeometry(self.rect())

    def paintEvent(self, event):
        super().paintEvent(event)
        if not self.painted:
            self.painted = True
            self.first_painted.emit()

    def closeEvent(self, event):
        QApplication.instance().removeEventFilter(self)
        super().closeEvent(event)


def start_ticking(window):
    """A QTimer driving ``window.tick()`` at the camera's rate; returned so the caller keeps it."""
    timer = QTimer(window)
    timer.timeout.connect(window.tick)
    timer.start(int(TICK_S * 1000))
    return timer


class ScreenLink(QObject):
    """Connects a QtScreen's queued signals to a window (and shows what was on screen already)."""

    def __init__(self, screen, window):
        super().__init__(window)
        screen.shown.connect(window.show_screen, Qt.QueuedConnection)
        screen.dimmed.connect(window.set_dimmed, Qt.QueuedConnection)
        if screen.current is not None:
            window.show_screen(*screen.current)
