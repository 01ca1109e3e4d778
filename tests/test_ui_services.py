"""The four citizen services driven through the touchscreen's widgets: clicks -> FlowHost -> flow -> screen.

Offscreen Qt, the fake clock, no sleeps. The attendance flow is home; its idle screen's "citizen
services" button opens the window's service menu, whose buttons post the events FlowHost starts
each service on. The service flows answer the server questions from ``service_fakes`` (which also
checks every screen against the contract); the camera's frames and the sensor's templates are
posted as the workers would post them. Everything a person does is a click on a widget.
"""

import pytest

pytest.importorskip("PyQt5")

from PyQt5.QtWidgets import QAbstractButton, QLabel  # noqa: E402

from kiosk import config  # noqa: E402
from kiosk.clock import FakeClock  # noqa: E402
from kiosk.device_ports import HeadlessScreen  # noqa: E402
from kiosk.flows.attendance import AttendanceFlow  # noqa: E402
from kiosk.flows.ports import Person  # noqa: E402
from kiosk.flows.services.account import AccountFlow  # noqa: E402
from kiosk.flows.services.activation import ActivationFlow  # noqa: E402
from kiosk.flows.services.fingerprints import FingerprintsFlow  # noqa: E402
from kiosk.flows.services.mobile_change import MobileChangeFlow  # noqa: E402
from kiosk.flows.services.ports import OFFLINE, CodeRequest, Verification  # noqa: E402
from kiosk.host import FlowHost  # noqa: E402
from kiosk.ui.bridge import QtScreen  # noqa: E402
from kiosk.ui.window import KioskWindow, Options, ScreenLink  # noqa: E402

from flow_fakes import Faces, FirstChoice, RecordingPorts  # noqa: E402
from service_fakes import ServicePortsFake  # noqa: E402
from ui_driver import WindowDriver, windows_built_by  # noqa: E402

INACTIVITY_S = 30.0
FLOWS = {"activation": ActivationFlow, "account": AccountFlow, "fingerprints": FingerprintsFlow,
         "mobile_change": MobileChangeFlow}
PASSWORD = "Kiosk#Pass1"


class QtServicePorts(ServicePortsFake):
    """The service fake (contract-checked screens, scripted server answers) also drawing on the Qt window."""

    def __init__(self, clock, qt):
        super().__init__(clock)
        self.qt = qt

    def show(self, screen, **data):
        super().show(screen, **data)
        self.qt.show(screen, **data)


class QtAttendancePorts(RecordingPorts):
    def __init__(self, clock, qt):
        super().__init__(clock)
        self.qt = qt

    def show(self, screen, **data):
        super().show(screen, **data)
        self.qt.show(screen, **data)

    def dim(self, dimmed):
        super().dim(dimmed)
        self.qt.dim(dimmed)


class Kiosk(WindowDriver):
    """A window on a FlowHost with attendance at home and the four services, all on the test's thread."""

    def __init__(self, qapp, language="en"):
        self.app = qapp
        self.clock = FakeClock(start=1_700_000_000.0)
        self.settings = config.build([("test", {"device": {"timezone": "UTC"},
                                                 "face": {"liveness": "challenge", "challenge": "turn"},
                                                 "ui": {"language": language,
                                                        "inactivity_timeout_s": INACTIVITY_S}})])
        self.screen = QtScreen(HeadlessScreen())
        self.home = AttendanceFlow(ports=QtAttendancePorts(self.clock, self.screen), clock=self.clock,
                                   settings=self.settings, rng=FirstChoice())
        self.host = FlowHost(self.home, clock=self.clock)
        self.ports = QtServicePorts(self.clock, self.screen)   # one session's ports, kept to script and inspect
        self.flows = []
        for service, cls in FLOWS.items():
            self.host.flow_factories[f"{service}_requested"] = lambda cls=cls: self._made(cls)
        self.window = KioskWindow(post=self.host.post, clock=self.clock,
                                  options=Options.from_settings(self.settings.ui), size=(1024, 600))
        self.window.setFixedSize(1024, 600)
        self.link = ScreenLink(self.screen, self.window)
        self.window.show()
        self.settle()

    def _made(self, cls):
        flow = cls(ports=self.ports, clock=self.clock, settings=self.settings, rng=FirstChoice())
        self.flows.append(flow)
        return flow

    @property
    def flow(self):
        return self.flows[-1]

    def keypad(self, digits):
        self.type_digits(digits)
        self.click("key_ok")

    def keyboard(self, text):
        """Type on the Latin keyboard as a person would: shift for a capital, ?123 for digits and symbols."""
        for ch in text:
            symbols = self.window.findChild(QAbstractButton, "key_symbols").text() == "ABC"
            needs_symbols = not ch.isalpha() and ch not in "@."
            if needs_symbols != symbols:
                self.window.findChild(QAbstractButton, "key_symbols").click()
            if ch.isupper():
                self.window.findChild(QAbstractButton, "key_shift").click()
            self.window.findChild(QAbstractButton, f"key_{ch.lower()}").click()
            self.settle()

    def post(self, event, **data):
        """What the camera or the sensor worker posts."""
        self.host.post(event, **data)
        self.settle()



@pytest.fixture
def kiosk(qapp):
    yield from windows_built_by(lambda **kw: Kiosk(qapp, **kw))


def start(k, service):
    assert k.shown == "attendance_idle"
    k.click("action_services_chosen")
    assert k.shown == "service_menu"
    k.click(f"action_{service}_requested")
    assert k.shown == "service_id" and type(k.flow) is FLOWS[service]


def through_code(k):
    assert k.shown == "service_code"
    assert "+9665******12" in k.text("countdown")
    k.keypad("123456")


def live_face(k):
    assert k.shown == "service_face"
    for frame in Faces([]).turn_left("carol"):
        k.post("face_seen", frame=frame)


def finish(k):
    assert k.shown == "service_done"
    assert k.text("reference").strip("\u2066\u2069") == k.flow.result
    k.click("action_cancelled")
    assert k.shown == "attendance_idle" and k.host.flow is k.home


def test_activation_through_the_widgets(kiosk):
    k = kiosk()
    start(k, "activation")
    k.keypad("1000000000")                               # the Luhn check digit is wrong: refused as typed
    assert k.shown == "service_id" and "not valid" in k.text("error")
    k.keypad("1000000008")
    through_code(k)
    assert k.shown == "service_consent"
    k.click("action_consent_given")
    live_face(k)
    assert k.shown == "service_finger" and "Right index" in k.text("which")
    k.post("finger_enrolled", template=b"\x01" * 512)
    assert "Left index" in k.text("which")
    k.post("finger_enrolled", template=b"\x02" * 512)
    assert k.shown == "service_pin"
    k.keypad("902468")
    assert k.text("prompt") == "Type the PIN again"
    k.keypad("902468")
    assert k.shown == "service_confirm"
    k.click("action_confirmed")
    [request] = k.ports.submitted
    assert request.service == "activation" and request.fields["pin"] == "902468"
    assert set(request.sealed) == {"face", "finger:right_index", "finger:left_index"}
    finish(k)


def test_account_through_the_widgets_with_rules_ticked_by_the_flow(kiosk):
    k = kiosk()
    start(k, "account")
    k.keypad("1000000008")
    assert k.shown == "service_mobile"
    k.keypad("0551234567")
    assert k.shown == "service_email"
    k.keyboard("carol@example.org")
    k.click("key_ok")
    assert k.shown == "service_credentials"
    k.keyboard("carolcole77")
    assert k.text("rule_has_upper").startswith("✗")     # the flow's answer to each key
    for _ in "carolcole77":
        k.click("key_delete")
    k.keyboard("CarolCole77")
    assert k.text("rule_has_upper").startswith("✓") and k.text("rule_min_length").startswith("✓")
    k.click("key_ok")
    assert k.text("entry") == "Choose a password" and k.window.findChild(QLabel, "rule_confirmed").isVisible()
    k.keyboard(PASSWORD)
    assert "Kiosk" not in k.text("entry")                # the password is masked
    k.click("key_ok")
    k.keyboard(PASSWORD)
    assert k.text("rule_confirmed").startswith("✓")
    k.click("key_ok")
    assert k.shown == "service_language"
    k.click("language_ar")
    through_code(k)
    assert k.shown == "service_terms" and "CarolCole77" in k.text("username")
    k.click("action_terms_accepted")
    [request] = k.ports.submitted
    assert request.fields == {"mobile": "+966551234567", "email": "carol@example.org", "username": "CarolCole77",
                              "password": PASSWORD, "language": "ar"}
    finish(k)


def test_fingerprints_through_the_widgets_with_the_assisted_path(kiosk):
    k = kiosk()
    start(k, "fingerprints")
    k.keypad("1000000008")
    through_code(k)
    k.click("action_consent_given")
    assert k.shown == "service_finger" and "Right thumb" in k.text("which")
    k.post("finger_enrolled", template=b"\x01" * 512)
    k.click("action_capture_impossible")                 # the person cannot give the right index
    assert k.shown == "service_assisted"
    k.click("action_continue_requested")
    assert k.shown == "service_finger" and "Left thumb" in k.text("which")
    k.post("finger_failed", guidance="clean_and_dry")
    assert "Clean and dry" in k.text("hint")
    for i in range(2):
        k.post("finger_enrolled", template=bytes([3 + i]) * 512)
    assert k.shown == "service_confirm"
    k.click("action_confirmed")
    [request] = k.ports.submitted
    assert request.exceptions == ({"kind": "finger", "finger": "right_index", "reason": "cannot_capture"},)
    finish(k)


def test_mobile_change_through_the_widgets_after_a_face_that_did_not_match(kiosk):
    k = kiosk()
    k.ports.verify_answers.append(Verification("no_match"))
    start(k, "mobile_change")
    k.keypad("1000000008")
    assert k.shown == "service_consent"
    k.click("action_consent_given")
    live_face(k)
    assert k.shown == "service_verify" and "did not match" in k.text("error")
    assert "2 tries left" in k.text("attempts_left")
    k.click("action_retry_requested")
    live_face(k)
    assert k.shown == "service_mobile"
    k.keypad("0559876543")
    through_code(k)
    assert k.shown == "service_confirm"
    k.click("action_confirmed")
    [request] = k.ports.submitted
    assert request.fields["mobile"] == "+966559876543" and request.proofs["verified"] == "tok-face"
    finish(k)


def test_inactivity_wipes_the_service_and_goes_home(kiosk):
    k = kiosk()
    start(k, "activation")
    k.keypad("1000000008")
    assert k.shown == "service_code"
    flow = k.flow
    assert flow.national_id == "1000000008"
    k.clock.advance(INACTIVITY_S + 1.0)
    k.window.tick()
    k.settle()
    assert k.shown == "attendance_idle" and k.host.flow is k.home
    assert flow.state == "finished" and flow.national_id is None and flow.code is None and not flow.proofs


def test_back_cancel_and_the_menu(kiosk):
    k = kiosk(language="ar")
    start(k, "activation")
    assert not k.window.step_back.isVisible()            # the first step offers no "back"
    k.keypad("1000000008")
    k.click("back_action")
    assert k.shown == "service_id"
    k.click("top_action")                                # cancel: home, everything wiped
    assert k.shown == "attendance_idle" and k.flow.national_id is None
    k.click("action_services_chosen")
    k.click("top_action")                                # back from the menu: no flow was started
    assert k.shown == "attendance_idle" and len(k.flows) == 1
    k.click("action_services_chosen")
    k.clock.advance(INACTIVITY_S + 1.0)
    k.window.tick()
    assert k.shown == "attendance_idle"                  # the menu left alone goes back by itself


def test_claim_and_verify_through_the_id_keypad_and_finger_verify(kiosk):
    k = kiosk()
    k.home.ports.people["1000000008"] = Person("1000000008", "Sara Al-Harbi", has_pin=True)
    k.home.ports.fingers_off_sensor.add("1000000008")
    k.click("action_pin_requested")
    assert k.shown == "id_keypad" and not k.window.findChild(QAbstractButton, "action_finger_claimed").isEnabled()
    k.type_digits("1000000008")
    k.click("action_finger_claimed")
    assert k.shown == "finger_verify" and k.text("which") == "Place your finger on the sensor"  # nobody named
    k.post("finger_not_matched", guidance="clean_and_dry")
    assert "Clean and dry" in k.text("hint") and k.text("step") == "2 tries left"
    k.post("finger_verified", score=88)
    assert k.shown == "result" and k.home.ports.records[-1].verify_mode == "fingerprint"


def test_no_services_button_where_no_service_is_registered(qapp):
    window = KioskWindow(post=lambda *a, **k: None, clock=FakeClock(), size=(1024, 600), services=False)
    window.show_screen("attendance_idle", {})
    assert window.findChild(QAbstractButton, "action_services_chosen") is None
    assert window.findChild(QAbstractButton, "action_pin_requested") is not None
    window.close()


def test_offline_and_refused_end_with_a_way_home(kiosk):
    k = kiosk()
    k.ports.code_answers.append(CodeRequest(OFFLINE))
    start(k, "fingerprints")
    k.keypad("1000000008")
    assert k.shown == "service_offline" and "come back later" in k.text("text")
    k.click("action_cancelled")
    assert k.shown == "attendance_idle"
    k.ports.code_answers.append(CodeRequest("too_many_codes", retry_after_s=3600.0))
    start(k, "activation")
    k.keypad("1000000008")
    assert k.shown == "service_refused" and "60 min" in k.text("retry")
    k.click("action_cancelled")
    assert k.shown == "attendance_idle"


def test_mobile_change_offers_face_or_finger_when_the_kiosk_has_a_sensor(kiosk):
    k = kiosk()
    k.ports.finger_sensor = True
    k.ports.verify_answers.append(Verification("no_match"))
    start(k, "mobile_change")
    k.keypad("1000000008")
    k.click("action_consent_given")
    assert k.shown == "service_verify" and "face or a finger" in k.text("choose")
    k.click("action_method_finger")
    assert k.shown == "service_finger" and "when your ID was registered" in k.text("which")
    k.post("finger_sampled", sample=b"\x05" * 512)
    assert k.shown == "service_verify" and "did not match" in k.text("error")
    assert "2 tries left" in k.text("attempts_left")
    k.click("action_method_face")
    live_face(k)
    assert k.shown == "service_mobile" and k.ports.asked[-1][0] == "verify_face"
    k.keypad("0559876543")
    through_code(k)
    k.click("action_confirmed")
    finish(k)
