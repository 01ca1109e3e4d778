"""`kiosk run` with the touchscreen: the Qt application, the window, and the watchdog on the Qt loop.

``prepare(settings)`` makes the QApplication (fonts, hidden cursor) and the screen port the flows
will call; ``run(...)`` opens the window full screen (or as a window on a desktop), turned by
``ui.rotation``, and runs the Qt event loop until ``stop`` is set. The heartbeat callback runs
from a QTimer on that loop, so a UI that hangs stops the systemd watchdog and is restarted.
READY is sent when the window has painted its first screen.
"""

import logging
import os

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0


def display_available():
    """A display Qt can draw on: X11, Wayland, or a platform named explicitly (eglfs, linuxfb ...).

    Qt's ``offscreen`` and ``minimal`` platforms draw nowhere a person could see: not a display."""
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0]
    if platform in ("offscreen", "minimal"):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or platform)


def display_mode(ui_settings):
    """``fullscreen`` | ``window`` | ``headless`` from ``ui.display`` (auto looks for a display and PyQt5)."""
    mode = ui_settings.display
    if mode != "auto":
        return mode
    if not display_available():
        log.warning("no display (DISPLAY, WAYLAND_DISPLAY and QT_QPA_PLATFORM unset): running headless "
                    "(ui.display = auto)")
        return "headless"
    try:
        import PyQt5.QtWidgets  # noqa: F401
    except ImportError:
        log.warning("PyQt5 is not installed (apt install python3-pyqt5): running headless (ui.display = auto)")
        return "headless"
    problem = qt_start_problem()
    if problem:
        log.error("the display cannot be used (%s): running headless (ui.display = auto)", problem)
        return "headless"
    return "fullscreen"


PROBE = "from PyQt5.QtWidgets import QApplication\napp = QApplication(['kiosk-probe'])\nprint(app.platformName())\n"
PROBE_TIMEOUT_S = 30.0


def qt_start_problem():
    """Why Qt cannot open the display here, or None. Qt aborts the process when its platform
    fails (eglfs with no panel connected), so the first try runs in a child process: a kiosk
    without a working screen keeps taking attendance headless instead of crashing in a loop."""
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"Qt did not start within {PROBE_TIMEOUT_S:.0f} s"
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return (lines[-1] if lines else f"exit {done.returncode}")[:300]
    return None


class Ui:
    """The Qt side of a running kiosk: the application, the flows' screen port, later the window."""

    def __init__(self, settings, *, app, screen, mode):
        self.settings = settings
        self.mode = mode            # fullscreen | window
        self.app = app
        self.screen = screen        # kiosk.ui.bridge.QtScreen: what the flows call
        self.window = None
        self.view = None            # the rotating view, when ui.rotation is not 0
        self.timers = []

    def open_window(self, *, post, clock, camera, mode, health=None):
        """The window (not shown yet), wrapped in a turned view when ``ui.rotation`` asks for it."""
        from PyQt5.QtCore import Qt
        from PyQt5.QtWidgets import QGraphicsScene, QGraphicsView

        from kiosk.ui.window import KioskWindow, Options, ScreenLink, start_ticking

        ui = self.settings.ui
        rotation = ui.rotation
        if mode == "fullscreen":
            geometry = self.app.primaryScreen().geometry()
            width, height = geometry.width(), geometry.height()
        else:
            width, height = (int(v) for v in ui.window_size.split("x"))
        if rotation in (90, 270):
            width, height = height, width  # the picture is laid out for the panel as it is mounted
        # app.add_service_flows registers the citizen services only with the server's key
        window = KioskWindow(post=post, clock=clock, options=Options.from_settings(ui), camera=camera,
                             size=(width, height), health=health,
                             services=bool(self.settings.security.server_public_key))
        window.setFixedSize(width, height)
        self.window = window
        self.link = ScreenLink(self.screen, window)
        self.timers.append(start_ticking(window))
        top = window
        if rotation:
            scene = QGraphicsScene()
            proxy = scene.addWidget(window)
            proxy.setRotation(rotation)
            view = QGraphicsView(scene)
            view.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
            view.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
            view.setFrameShape(QGraphicsView.NoFrame)
            view.setStyleSheet("background: black; border: none;")
            view.setSceneRect(scene.itemsBoundingRect())
            self.view = top = view
        if mode == "fullscreen":
            top.setWindowFlags(top.windowFlags() | Qt.FramelessWindowHint | Qt.WindowStaysOnTopHint)
        return top

    def run(self, *, post, clock, camera, mode, stop, heartbeat, on_first_screen, health=None):
        """Show the window and run the Qt loop until ``stop`` is set; returns the loop's exit code."""
        from PyQt5.QtCore import QTimer

        top = self.open_window(post=post, clock=clock, camera=camera, mode=mode, health=health)
        self.window.first_painted.connect(on_first_screen)

        def beat():
            if stop.is_set():
                self.app.quit()
                return
            heartbeat()

        timer = QTimer()
        timer.timeout.connect(beat)
        timer.start(int(HEARTBEAT_S * 1000))
        self.timers.append(timer)
        if mode == "fullscreen":
            top.showFullScreen()
        else:
            top.show()
        log.info("touchscreen: %s %dx%d, rotation %d, %s", mode, self.window.width(), self.window.height(),
                 self.settings.ui.rotation, self.app.platformName())
        code = self.app.exec_()
        for t in self.timers:
            t.stop()
        top.close()
        return code


def prepare(settings, inner_screen, *, mode):
    """The QApplication (fonts, cursor) and the Qt screen port wrapping ``inner_screen``."""
    from PyQt5.QtCore import Qt
    from PyQt5.QtWidgets import QApplication

    from kiosk.ui.bridge import QtScreen
    from kiosk.ui.typefaces import load_fonts

    app = QApplication.instance() or QApplication(["kiosk"])
    load_fonts(app)
    if settings.ui.hide_cursor and mode == "fullscreen":  # a window on a desktop keeps its pointer
        app.setOverrideCursor(Qt.BlankCursor)
    return Ui(settings, app=app, screen=QtScreen(inner_screen), mode=mode)
