"""`kiosk provision` on the touchscreen: the status model's screens in the kiosk window.

Provisioning blocks (registration retries with backoff for as long as it takes), and Qt must own
the main thread, so ``run_with_screen`` starts Qt the way `kiosk run` does (kiosk/ui/runner.py:
the same application, window, rotation and screen port), runs provisioning on a worker thread,
and hands each ``show(screen, **data)`` of kiosk/provision_status.py to the window by the queued
signal of ``kiosk.ui.bridge.QtScreen``. When provisioning ends (done, failed or nothing to do),
its last screen stays up for ``hold_s`` so the technician can read it, then the loop ends and the
command returns provisioning's own result (or raises its error).
"""

import logging
import threading

from PyQt5.QtCore import QObject, Qt, QTimer, pyqtSignal

log = logging.getLogger(__name__)


class Port:
    """The status model's ``show`` port for the screen: the Qt screen, and the status file when there is one."""

    def __init__(self, qt_screen, also=None):
        self.qt_screen = qt_screen
        self.also = also

    def __call__(self, screen, **data):
        if self.also is not None:
            self.also(screen, **data)
        self.qt_screen.show(screen, **data)


class _Finished(QObject):
    """Tells the Qt thread that the worker ended (a queued signal: the worker never touches Qt objects)."""

    ended = pyqtSignal()


def run_with_screen(ui, work, *, mode, hold_s, clock):
    """Run ``work()`` on a worker thread while ``ui`` (a kiosk.ui.runner.Ui) shows its screens; return its result."""
    top = ui.open_window(post=lambda event, **data: log.debug("provisioning screen ignores %s", event),
                         clock=clock, camera=None, mode=mode)
    outcome = {}

    def body():
        try:
            outcome["result"] = work()
        except BaseException as e:   # handed back to the caller's thread, raised there
            outcome["error"] = e
        finally:
            finished.ended.emit()

    finished = _Finished()
    finished.ended.connect(lambda: QTimer.singleShot(int(hold_s * 1000), ui.app.quit), Qt.QueuedConnection)
    worker = threading.Thread(target=body, name="provision", daemon=True)
    if mode == "fullscreen":
        top.showFullScreen()
    else:
        top.show()
    log.info("provisioning screen: %s %dx%d", mode, ui.window.width(), ui.window.height())
    worker.start()
    ui.app.exec_()
    worker.join()
    for timer in ui.timers:
        timer.stop()
    top.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
