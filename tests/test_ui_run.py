"""`kiosk run` with the touchscreen: READY after the first screen, heartbeats from the Qt loop, a real window (Xvfb)."""

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("PyQt5")

from test_run_appliance import messages_until, start_kiosk  # noqa: E402

GRAB = """
import sys
from PyQt5.QtWidgets import QApplication
app = QApplication(["grab"])
app.primaryScreen().grabWindow(0).save(sys.argv[1])
"""


def _stop(child, listener):
    child.send_signal(signal.SIGTERM)
    messages_until(listener, "STOPPING=1")
    return child.wait(timeout=30)


def test_run_with_the_touchscreen_is_ready_after_the_first_screen_and_beats_from_the_qt_loop(tmp_path):
    child, listener = start_kiosk(tmp_path, {"KIOSK_UI__DISPLAY": "window", "QT_QPA_PLATFORM": "offscreen"})
    try:
        seen = messages_until(listener, "READY=1")
        assert any(line.startswith("STATUS=running (sim hardware") for line in seen)
        messages_until(listener, "WATCHDOG=1")
        messages_until(listener, "WATCHDOG=1")
        assert _stop(child, listener) == 0
    finally:
        child.kill()
        listener.close()
    err = child.stderr.read()
    assert "touchscreen: window 1024x600" in err
    assert "Traceback" not in err


def test_headless_when_configured_even_with_a_display(tmp_path):
    child, listener = start_kiosk(tmp_path, {"KIOSK_UI__DISPLAY": "headless", "DISPLAY": ":99"})
    try:
        messages_until(listener, "READY=1")
        assert _stop(child, listener) == 0
    finally:
        child.kill()
        listener.close()
    assert "touchscreen:" not in child.stderr.read()


@pytest.fixture
def xvfb():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (scripts/install-system-deps.sh installs it)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "800x480x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        display = f.readline().strip()  # Xvfb writes its display number once it accepts clients
    yield f":{display}"
    server.terminate()
    server.wait(10)


def test_under_xvfb_kiosk_run_opens_the_real_window_full_screen(tmp_path, xvfb):
    env = {"DISPLAY": xvfb, "QT_QPA_PLATFORM": "xcb", "KIOSK_UI__DISPLAY": "auto", "KIOSK_UI__LANGUAGE": "en"}
    child, listener = start_kiosk(tmp_path, env)
    shot = tmp_path / "screen.png"
    try:
        messages_until(listener, "READY=1")
        grab_env = dict(os.environ, DISPLAY=xvfb, QT_QPA_PLATFORM="xcb")
        subprocess.run([sys.executable, "-c", GRAB, str(shot)], env=grab_env, check=True, timeout=60)
        assert _stop(child, listener) == 0
    finally:
        child.kill()
        listener.close()
    assert "touchscreen: fullscreen 800x480" in child.stderr.read()
    import cv2

    image = cv2.imread(str(shot))
    assert image.shape[:2] == (480, 800)
    background = np.all(image == (0xf8, 0xf6, 0xf4), axis=2).mean()  # the theme's page colour (BGR)
    assert background > 0.2, "the kiosk's page is not on the X screen"
    assert (image.max(axis=2) < 80).mean() > 0.01  # text and the camera view are drawn


def test_the_firmware_imports_and_picks_headless_without_qt():
    """`import kiosk` and headless `kiosk run` need no PyQt5: Qt is imported only where the UI starts."""
    code = ("import sys, kiosk.app, kiosk.cli, kiosk.ui.runner, kiosk.device_ports, kiosk.flows.attendance\n"
            "from kiosk import config\n"
            "assert kiosk.ui.runner.display_mode(config.build([]).ui) == 'headless'\n"
            "assert 'PyQt5' not in sys.modules, 'Qt was imported'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_rotation_lays_the_picture_out_for_the_panel_as_mounted(qapp):
    from kiosk import config
    from kiosk.clock import FakeClock
    from kiosk.device_ports import HeadlessScreen
    from kiosk.ui import runner

    settings = config.build([("t", {"ui": {"rotation": 90, "window_size": "800x480", "hide_cursor": False}})])
    ui = runner.prepare(settings, HeadlessScreen(), mode="window")
    top = ui.open_window(post=lambda *a, **k: None, clock=FakeClock(), camera=None, mode="window")
    try:
        assert (ui.window.width(), ui.window.height()) == (480, 800)   # the portrait layout ...
        assert ui.window.theme.portrait
        scene_rect = ui.view.sceneRect()
        assert (round(scene_rect.width()), round(scene_rect.height())) == (800, 480)  # ... turned onto the panel
        assert top is ui.view
    finally:
        for t in ui.timers:
            t.stop()
        ui.window.close()


def test_auto_runs_headless_when_the_named_platform_cannot_start(monkeypatch, caplog):
    """eglfs with no panel makes Qt abort: auto probes in a child first and stays headless."""
    from kiosk import config
    from kiosk.ui import runner

    monkeypatch.setenv("QT_QPA_PLATFORM", "eglfs")
    monkeypatch.setenv("QT_QPA_EGLFS_INTEGRATION", "none")
    monkeypatch.delenv("DISPLAY", raising=False)
    assert runner.display_mode(config.build([]).ui) == "headless"
    assert "the display cannot be used" in caplog.text
    monkeypatch.setenv("QT_QPA_PLATFORM", "minimal:enable_fonts")   # a platform that starts anywhere
    monkeypatch.setattr(runner, "display_available", lambda: True)
    assert runner.display_mode(config.build([]).ui) == "fullscreen"
