"""The touchscreen driving the real flows: widgets' clicks -> FlowHost -> flow -> show() -> queued signal -> window.

Offscreen Qt, the fake clock, no sleeps: each step posts through the widgets, ``host.step()``
delivers on this thread, and ``processEvents()`` lets the queued screen signal arrive.
"""

import threading

import numpy as np
import pytest

pytest.importorskip("PyQt5")

from PyQt5.QtCore import Qt  # noqa: E402
from PyQt5.QtWidgets import QAbstractButton, QLabel  # noqa: E402

from kiosk import config  # noqa: E402
from kiosk.clock import FakeClock  # noqa: E402
from kiosk.device_ports import HeadlessScreen  # noqa: E402
from kiosk.drivers.camera import Frame  # noqa: E402
from kiosk.flows.admin import AdminFlow  # noqa: E402
from kiosk.flows.attendance import AttendanceFlow  # noqa: E402
from kiosk.flows.ports import EnrolResult, Person  # noqa: E402
from kiosk.host import FlowHost  # noqa: E402
from kiosk.ui.bridge import QtScreen  # noqa: E402
from kiosk.ui.window import KioskWindow, Options, ScreenLink  # noqa: E402

from flow_fakes import FirstChoice, RecordingPorts  # noqa: E402
from ui_driver import WindowDriver, windows_built_by  # noqa: E402

SARA = Person("1000000008", "Sara Al-Harbi", has_pin=True)
SARA_PIN = "135790"


class UiPorts(RecordingPorts):
    """The recorder, with show()/dim() also going to the Qt screen port, and enrol() taking a PIN."""

    def __init__(self, clock, screen, **kw):
        super().__init__(clock, [SARA], pins={SARA.person_id: SARA_PIN}, **kw)
        self.qt = screen

    def show(self, screen, **data):
        super().show(screen, **data)
        self.qt.show(screen, **data)

    def dim(self, dimmed):
        super().dim(dimmed)
        self.qt.dim(dimmed)

    def enrol(self, *, person_id, name, role, faces, fingers, pin=None, voice=None):
        self.enrolled.append(dict(person_id=person_id, name=name, role=role, pin=pin))
        self._call("enrol", person_id=person_id)
        return EnrolResult(person_id, len(faces), len(fingers), ())


class Kiosk(WindowDriver):
    """A window wired to real flows on a FlowHost, all on the test's thread."""

    def __init__(self, qapp, *, ui=None, eastern=False):
        self.app = qapp
        self.clock = FakeClock(start=1_700_000_000.0)
        self.settings = config.build([("test", {"device": {"timezone": "UTC"},
                                                 "attendance": {"status_rule": "toggle"},
                                                 "ui": {"language": "ar", **(ui or {})}})])
        self.screen = QtScreen(HeadlessScreen())
        self.ports = UiPorts(self.clock, self.screen)
        self.flow = AttendanceFlow(ports=self.ports, clock=self.clock, settings=self.settings, rng=FirstChoice())
        self.host = FlowHost(self.flow, clock=self.clock)
        self.host.flow_factories["admin_requested"] = lambda: AdminFlow(ports=self.ports, clock=self.clock,
                                                                        settings=self.settings)
        opts = Options.from_settings(self.settings.ui)
        if eastern:
            opts = Options(**{**opts.__dict__, "eastern_digits": True})
        self.window = KioskWindow(post=self.host.post, clock=self.clock, options=opts, size=(1024, 600))
        self.window.setFixedSize(1024, 600)
        self.link = ScreenLink(self.screen, self.window)
        self.window.show()
        self.settle()



@pytest.fixture
def kiosk(qapp):
    yield from windows_built_by(lambda **kw: Kiosk(qapp, **kw))


def test_pin_attendance_through_the_keypads(kiosk):
    k = kiosk()
    assert k.shown == "attendance_idle"
    k.click("action_pin_requested")
    assert k.shown == "id_keypad"
    k.type_digits(SARA.person_id)
    assert k.text("entry") == "\u2066" + SARA.person_id + "\u2069"  # left to right inside the Arabic page
    k.click("key_ok")
    assert k.shown == "pin_keypad"
    k.type_digits(SARA_PIN)
    assert k.text("entry") == "●" * 6  # masked
    k.click("key_ok")
    assert k.shown == "result"
    assert [r.person_id for r in k.ports.records] == [SARA.person_id]
    labels = [w.text() for w in k.window.screen.findChildren(QLabel)]
    assert "Sara Al-Harbi" in labels and any("تم التسجيل" in t for t in labels)


def test_wrong_pin_shows_tries_left_in_eastern_digits(kiosk):
    k = kiosk(eastern=True)
    k.click("action_pin_requested")
    assert k.window.findChild(QAbstractButton, "key_7").text() == "٧"
    k.type_digits(SARA.person_id)
    assert k.text("entry") == "\u2066١٠٠٠٠٠٠٠٠٨\u2069"
    k.click("key_ok")
    k.type_digits("000000")
    k.click("key_ok")
    assert k.shown == "pin_keypad"
    assert "٢" in k.text("error")  # 2 tries left
    assert not k.ports.records


def test_pin_key_ok_waits_for_six_digits(kiosk):
    k = kiosk()
    k.click("action_pin_requested")
    k.type_digits(SARA.person_id)
    k.click("key_ok")
    k.type_digits("13579")
    assert not k.window.findChild(QAbstractButton, "key_ok").isEnabled()
    k.type_digits("0")
    assert k.window.findChild(QAbstractButton, "key_ok").isEnabled()


def test_language_switch_on_any_screen_mirrors_and_tells_the_flow(kiosk):
    k = kiosk()
    k.click("action_pin_requested")
    assert k.window.layoutDirection() == Qt.RightToLeft
    k.click("language")
    assert k.window.layoutDirection() == Qt.LeftToRight
    assert k.flow.language == "en"
    assert k.window.title.text() == "ID number"
    assert k.shown == "id_keypad"


def test_inactivity_warning_counts_down_and_more_time_keeps_the_session(kiosk):
    k = kiosk(ui={"inactivity_timeout_s": 30.0, "inactivity_warning_s": 10.0})
    k.click("action_pin_requested")
    k.type_digits("12")
    k.clock.advance(21.5)
    k.window.tick()
    k.host.step()
    assert k.window.warning.isVisible()
    assert "9" in k.window.warning_text.text()
    k.click("more_time")
    assert not k.window.warning.isVisible()
    k.clock.advance(25.0)  # 46.5 s after the keypad opened: alive only because of "more time"
    k.settle()
    assert k.flow.state == "entering_id" and k.shown == "id_keypad"
    k.clock.advance(6.0)
    k.settle()
    assert k.flow.state == "idle" and k.shown == "attendance_idle"
    assert not k.window.warning.isVisible()


def test_no_warning_where_nobody_is_expected_to_act(kiosk):
    k = kiosk()
    k.clock.advance(29.0)
    k.window.tick()
    assert k.shown == "attendance_idle" and not k.window.warning.isVisible()
    for screen in ("face_guidance", "punch_choice", "result"):  # their flows time out on their own terms
        k.window.show_screen(screen, {})
        k.clock.advance(29.0)
        k.window.tick()
        assert not k.window.warning.isVisible(), screen


def test_dims_when_idle_and_a_touch_wakes_it_without_pressing_anything(kiosk):
    k = kiosk(ui={"dim_after_s": 60.0})
    k.clock.advance(61.0)
    k.settle()
    assert k.flow.state == "dimmed" and k.window.dim_cover.isVisible()
    from PyQt5.QtTest import QTest

    QTest.mouseClick(k.window.dim_cover, Qt.LeftButton)
    k.settle()
    assert k.flow.state == "idle" and not k.window.dim_cover.isVisible()
    assert k.shown == "attendance_idle"


def test_admin_session_and_enrolment_through_the_widgets(kiosk):
    k = kiosk()
    k.click("top_action")                   # "Admin"
    assert k.shown == "admin_locked"
    k.type_digits("111111")
    k.click("key_ok")
    assert k.shown == "admin_locked" and k.text("error")
    k.type_digits(k.ports.admin_pin)
    k.click("key_ok")
    assert k.shown == "admin_menu"
    k.click("page_people")
    assert k.shown == "admin_page"
    k.click("top_action")                   # back
    assert k.shown == "admin_menu"
    k.click("page_enrol")
    assert k.shown == "enrol_details"
    k.click("key_e")
    k.click("key_symbols")                  # digits are on the symbols layer
    for d in "1003":
        k.click(f"key_{d}")
    k.click("field_name")
    k.click("key_symbols")                  # back to letters
    for ch in "lina":
        k.click(f"key_{ch}")
    k.click("key_ok")
    assert k.shown == "enrol_face"
    k.click("action_face_skipped")
    assert k.shown == "enrol_finger"
    k.click("action_fingers_skipped")
    assert k.shown == "enrol_pin"
    k.type_digits("246802")
    k.click("key_ok")
    k.type_digits("246802")
    k.click("key_ok")
    assert k.shown == "enrol_summary"
    k.click("action_confirmed")
    assert k.shown == "enrol_done"
    assert k.ports.enrolled == [dict(person_id="e1003", name="lina", role="employee", pin="246802")]
    k.click("action_cancelled")
    assert k.shown == "admin_menu"
    k.click("top_action")                   # exit
    assert k.shown == "attendance_idle" and k.host.flow is k.flow


def test_admin_log_page_shows_the_recent_log_lines_as_plain_text(kiosk):
    import logging

    from kiosk.admin_pages import RECENT, AdminPages

    k = kiosk()
    pages = AdminPages(settings=k.settings, database=None, clock=k.clock)
    k.ports.admin_page = lambda page, **args: pages.answer(page, **args)   # the real log page
    server_log = logging.getLogger("kiosk.sync.worker")
    server_log.addHandler(RECENT)
    try:    # a server's words reach the log: markup in them must be shown, not rendered
        server_log.warning("sync: the server said <b>busy</b> <img src=x>")
    finally:
        server_log.removeHandler(RECENT)
    k.click("top_action")
    k.type_digits(k.ports.admin_pin)
    k.click("key_ok")
    k.click("page_log")
    assert k.shown == "admin_page"
    shown = [w for w in k.window.screen.findChildren(QLabel) if "<b>busy</b> <img src=x>" in w.text()]
    assert shown and all(w.textFormat() == Qt.PlainText for w in shown)


def test_admin_sets_the_punch_mode_with_the_page_buttons(kiosk, tmp_path):
    from kiosk.admin_pages import PUNCH_MODE_META, AdminPages
    from kiosk.storage import db

    k = kiosk()
    database = db.open_db(tmp_path / "kiosk.db")
    pages = AdminPages(settings=k.settings, database=database, clock=k.clock, attendance=k.flow)
    k.ports.admin_page = lambda page, **args: pages.answer(page, **args)   # the real page and action
    k.click("top_action")
    k.type_digits(k.ports.admin_pin)
    k.click("key_ok")
    k.click("page_punch_mode")
    assert k.shown == "admin_page" and k.flow.rule.rule == "toggle"
    k.click("mode_first_in_last_out")
    assert k.flow.rule.rule == "first_in_last_out"
    assert db.get_meta(database, PUNCH_MODE_META) == "first_in_last_out"
    assert k.text("result") == k.window.words()("admin_page.done")
    database.close()


def test_admin_exports_to_the_mounted_stick_with_its_button(kiosk, tmp_path):
    from kiosk.admin_pages import AdminPages
    from kiosk.storage import db

    k = kiosk()
    database = db.open_db(tmp_path / "kiosk.db")
    media, table = tmp_path / "media", tmp_path / "mounts"
    (media / "usb").mkdir(parents=True)
    table.write_text(f"/dev/sda1 {media}/usb vfat rw,nosuid,nodev,noexec 0 0\n")
    pages = AdminPages(settings=k.settings, database=database, clock=k.clock, stick_roots=(str(media),),
                       mounts=str(table))
    k.ports.admin_page = lambda page, **args: pages.answer(page, **args)   # the real page and action
    k.click("top_action")
    k.type_digits(k.ports.admin_pin)
    k.click("key_ok")
    k.click("page_export")
    words = k.window.words()
    k.click("export_0")
    assert k.text("result") == words("admin_page.done")
    assert sorted(p.suffix for p in (media / "usb").iterdir()) == [".csv", ".dat"]
    table.write_text("")                                          # the stick is pulled out
    k.click("export_0")
    assert k.text("result") == words("admin_page.failed", error=words("error.no_stick"))
    assert k.text("no_stick") == words("export.no_stick")       # and the page says so, with no button
    database.close()


def test_camera_view_paints_only_the_newest_frame_without_copying_it(kiosk):
    k = kiosk()

    class Camera:
        frame = None

        def latest(self):
            return self.frame

    camera = Camera()
    k.window.camera = camera
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, :, 2] = 200
    camera.frame = Frame(image, image[::4, ::4], 0.0, 1)
    k.window.tick()
    view = k.window.screen.camera_view
    assert view.last_index == 1
    assert int(view._image.constBits()) == image.ctypes.data  # the QImage points into the frame
    shown = view._image
    k.window.tick()                         # same frame again: nothing new to paint
    assert view._image is shown
    camera.frame = Frame(image.copy(), image[::4, ::4], 0.1, 5)  # frames 2-4 never reached the screen
    k.window.tick()
    assert view.last_index == 5


def test_screen_port_called_from_another_thread_reaches_the_window_by_queued_signal(kiosk):
    k = kiosk()
    worker = threading.Thread(target=lambda: k.screen.show("refused", reason="unknown_person"))
    worker.start()
    worker.join()
    assert k.shown == "attendance_idle"     # not yet: the widget is only touched on the Qt thread
    k.app.processEvents()
    assert k.shown == "refused"


def test_an_unknown_screen_name_shows_the_error_screen_with_a_way_forward(kiosk):
    k = kiosk()
    k.window.show_screen("no_such_screen", {})
    assert k.shown == "error"
    k.click("action_home_chosen")               # the way forward: back to what the flow showed before
    assert k.shown == "attendance_idle"


def test_idle_screen_says_when_the_camera_or_sensor_is_unavailable_and_offers_the_other_ways(qapp):
    clock = FakeClock()
    problems = []
    window = KioskWindow(post=lambda *a, **k: None, clock=clock, options=Options(language="en"), size=(1024, 600),
                         health=lambda: list(problems))
    window.show()
    try:
        window.show_screen("attendance_idle", {})
        window.tick()
        assert window.screen.camera_view is not None
        problems += ["camera_unavailable", "sensor_unavailable"]
        window.tick()                       # checked once a second, not at every tick
        assert window.screen.camera_view is not None
        clock.advance(1.0)
        window.tick()
        assert window.screen.camera_view is None
        assert window.findChild(QLabel, "camera_unavailable").text() == "Camera unavailable"
        assert window.findChild(QLabel, "sensor_unavailable").isVisible()
        assert window.findChild(QAbstractButton, "action_pin_requested").isVisible()  # the way forward
        problems.clear()
        clock.advance(1.0)
        window.tick()
        assert window.screen.camera_view is not None and window.findChild(QLabel, "camera_unavailable") is None
    finally:
        window.close()


def test_punch_choice_through_its_buttons(kiosk):
    k = kiosk(ui={})
    k.flow.set_punch_rule("ask")
    k.click("action_pin_requested")
    k.type_digits(SARA.person_id)
    k.click("key_ok")
    k.type_digits(SARA_PIN)
    k.click("key_ok")
    assert k.shown == "punch_choice"
    assert k.window.findChild(QAbstractButton, "status_0").property("role") == "primary"  # the likely one
    k.click("status_3")                                 # break-in
    assert k.shown == "result"
    assert [r.status for r in k.ports.records] == [3]


def test_not_recognised_offers_the_fallbacks_and_try_again_goes_back_to_the_camera(kiosk):
    k = kiosk()
    for _ in range(k.settings.attendance.face_attempts_before_fallback):
        k.host.post("finger_not_matched", guidance="clean_and_dry")
        k.settle()
    assert k.shown == "not_recognised"
    assert k.window.findChild(QLabel, "fallback_finger").isVisible()
    k.click("action_pin_requested")                     # the ID and PIN fallback
    assert k.shown == "id_keypad"
    k.click("top_action")                               # cancel: home
    assert k.shown == "attendance_idle"
    k.host.post("finger_not_matched", guidance="clean_and_dry")
    k.settle()
    k.click("action_retry_requested")
    assert k.flow.state == "watching" and k.shown == "face_guidance"


def test_voice_reading_updates_in_place_and_shows_the_guidance(kiosk):
    from PyQt5.QtWidgets import QProgressBar

    k = kiosk(ui={"language": "en"})
    k.screen.show("voice_phrase", phrase="voice_phrase_present", digits="4 7 1 9", reading=1, readings=3,
                  record_s=4.0, language="en")
    k.settle()
    assert k.shown == "voice_phrase" and k.text("phrase") == "I am present at work today"
    assert k.text("digits") == "\u2066" + "4 7 1 9" + "\u2069"  # digits to read stay left to right
    widget = k.window.screen
    levels = []
    for level in (-60.0, -30.0, -6.0):
        k.screen.show("voice_recording", phrase="voice_phrase_present", digits="4 7 1 9", level_dbfs=level,
                      elapsed_s=1.0, record_s=4.0, language="en")
        k.settle()
        levels.append(k.window.findChild(QProgressBar, "level").value())
    assert k.window.screen is widget  # ten updates a second: taken in place, not rebuilt
    assert levels[0] == 0 and levels[0] < levels[1] < levels[2] <= 100
    k.screen.show("voice_guidance", guidance="too_noisy", phrase="voice_phrase_present", digits="4 7 1 9",
                  snr_db=3.0, level_dbfs=-20.0, speech_s=2.0, language="en")
    k.settle()
    assert k.text("hint") == "Too much noise around: try again when it is quieter"
