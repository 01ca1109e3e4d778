"""The attendance flow's screens (kiosk/flows/attendance.py): idle, face, keypads, choice, result."""

from PyQt5.QtCore import Qt

from kiosk.ui.screen import Screen
from kiosk.ui.widgets import CameraView, DigitKeypad, button, entry, label

ID_MAX_DIGITS = 20      # employee numbers and national IDs (10) both fit
PIN_DIGITS = 6


class AttendanceIdle(Screen):
    """Home of the attendance kiosk: the live camera, and the other ways in."""

    interactive = False
    uses_camera = True
    shows_health = True
    top_action = ("btn.admin", "admin_requested")

    def build(self):
        problems = self.data.get("problems") or []
        w = self.words
        first, second = self.split()
        if "camera_unavailable" in problems:  # the other ways in, said where the camera would be
            first.addStretch(1)
            first.addWidget(label(w("error_screen.camera_unavailable.title"), role="banner_error",
                                  align=Qt.AlignCenter, name="camera_unavailable"))
            other_ways = "attendance_idle.pin_only" if "sensor_unavailable" in problems else \
                "error_screen.camera_unavailable.text"
            first.addWidget(label(w(other_ways), align=Qt.AlignCenter))
            first.addStretch(1)
        else:
            self.camera_view = CameraView(self.theme)
            first.addWidget(self.camera_view)
        second.addStretch(1)
        if "camera_unavailable" not in problems:
            second.addWidget(label(w("attendance_idle.prompt"), role="title", align=Qt.AlignCenter))
        if "sensor_unavailable" in problems:
            second.addWidget(label(w("error_screen.sensor_unavailable.title"), role="error", align=Qt.AlignCenter,
                                   name="sensor_unavailable"))
        else:
            second.addWidget(label(w("attendance_idle.finger"), align=Qt.AlignCenter))
        second.addStretch(1)
        second.addWidget(button(self.words("btn.id_and_pin"), self.theme, role="primary", name="action_pin_requested",
                                on_click=lambda: self.post("pin_requested")))
        if self.ctx.extras.get("services", True):
            second.addWidget(button(self.words("btn.services"), self.theme, name="action_services_chosen",
                                    on_click=lambda: self.post("services_chosen")))


class FaceScreen(Screen):
    """Watching a face: the camera with the oval guide, the live hint, the liveness instruction."""

    interactive = False     # the flow's own face timeout ends it; nothing here waits for a touch
    uses_camera = True
    top_action = None
    other_way = ("btn.id_and_pin", "pin_requested")   # the button under the hints (text key, event)

    def build(self):
        first, second = self.split()
        self.camera_view = CameraView(self.theme)
        first.addWidget(self.camera_view)
        second.addStretch(1)
        self.instruction = label("", role="title", align=Qt.AlignCenter, name="instruction")
        self.hint = label("", align=Qt.AlignCenter, name="hint")
        second.addWidget(self.instruction)
        second.addWidget(self.hint)
        second.addStretch(1)
        text, event = self.other_way
        second.addWidget(button(self.words(text), self.theme, name=f"action_{event}",
                                on_click=lambda: self.post(event)))
        self._fill()

    def take(self, name, data):
        self.name, self.data = name, dict(data)
        self._fill()
        return True

    def _fill(self):
        d, w = self.data, self.words
        guidance = d.get("guidance")
        if self.name == "face_challenge" and d.get("challenge"):
            stage = d.get("stage")
            text = w(f"stage.{stage}") if stage in ("baseline", "returning") else w(f"challenge.{d['challenge']}")
            self.camera_view.state = "hint" if guidance else "ok"
        elif self.name == "face_checking":
            text = w("face_checking.title")
            self.camera_view.state = "ok"
        else:
            text = w("face_guidance.title")
            self.camera_view.state = "hint" if guidance else "neutral"
        self.instruction.setText(text)
        self.hint.setText(self.guidance_text(guidance))
        self.camera_view.update()

    def title(self):
        return self.words("face_guidance.title")


class NotRecognised(Screen):
    """Not recognised: why, what to do, and the other ways (finger, ID and PIN) once offered."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(self.reason_text(d.get("reason")), role="banner_error")
        if d.get("guidance") and d.get("guidance") != d.get("reason"):
            self.box.addWidget(label(self.guidance_text(d["guidance"]), align=Qt.AlignCenter))
        fallbacks = d.get("fallbacks") or []
        if "fingerprint" in fallbacks:
            self.box.addWidget(label(w("not_recognised.finger"), align=Qt.AlignCenter, name="fallback_finger"))
        self.box.addStretch(1)
        items = [(w("btn.try_again"), "retry_requested", "primary", None)]
        if "pin" in fallbacks:
            items.append((w("btn.id_and_pin"), "pin_requested", None, None))
        self.actions(items)


class IdKeypad(Screen):
    """The employee or national ID number, on the digit keypad."""

    def build(self):
        first, second = self.split()
        d, w = self.data, self.words
        self.entry = entry(self.theme)
        first.addStretch(1)
        first.addWidget(label(w("id_keypad.prompt"), align=Qt.AlignCenter))
        first.addWidget(self.entry)
        self.error = label(w(f"error.{d['error']}") if d.get("error") else "", role="error", align=Qt.AlignCenter,
                           name="error")
        first.addWidget(self.error)
        first.addStretch(1)
        # the number, then a finger instead of the PIN (claim and verify, kiosk/flows/claim.py)
        self.by_finger = button(w("btn.finger_instead"), self.theme, name="action_finger_claimed",
                                on_click=lambda: self.post("finger_claimed", typed=self.keypad.text))
        first.addWidget(self.by_finger)
        self.keypad = DigitKeypad(w, self.theme, length=ID_MAX_DIGITS)
        self.keypad.changed.connect(self._typed)
        self.keypad.submitted.connect(lambda typed: self.post("id_entered", typed=typed))
        second.addWidget(self.keypad)
        self._typed(self.keypad.text)

    def _typed(self, text):
        self.entry.setText(self.keypad.shown())
        self.by_finger.setEnabled(bool(text))


class PinKeypad(Screen):
    """The personal PIN: six digits, masked."""

    submit_event = "pin_entered"
    exact = True

    def build(self):
        first, second = self.split()
        d, w = self.data, self.words
        self.entry = entry(self.theme)
        first.addStretch(1)
        first.addWidget(label(self.prompt(), align=Qt.AlignCenter, name="prompt"))
        first.addWidget(self.entry)
        error = ""
        if d.get("error"):
            error = w(f"error.{d['error']}", attempts_left=d.get("attempts_left") if d.get("attempts_left")
                      is not None else "-")
        self.error = label(error, role="error", align=Qt.AlignCenter, name="error")
        first.addWidget(self.error)
        first.addStretch(1)
        self.keypad = DigitKeypad(w, self.theme, length=PIN_DIGITS if self.exact else 16, exact=self.exact, mask=True)
        self.keypad.changed.connect(lambda _t: self.entry.setText(self.keypad.shown()))
        self.keypad.submitted.connect(lambda pin: self.post(self.submit_event, pin=pin))
        second.addWidget(self.keypad)
        self.entry.setText(self.keypad.shown())
        self.extra(first)

    def prompt(self):
        return self.words("pin_keypad.prompt")

    def extra(self, box):
        pass


class PunchChoice(Screen):
    """Which punch this is: check-in, check-out, break, overtime; the likely one highlighted."""

    interactive = False     # on its timeout the flow records the highlighted one: nothing is wiped

    def build(self):
        d, w = self.data, self.words
        self.heading(w("punch_choice.prompt", name=w.name(d.get("name", ""))), role="title")
        options = d.get("options") or []
        cols = 2 if self.theme.portrait else 3
        from PyQt5.QtWidgets import QGridLayout

        grid = QGridLayout()
        grid.setSpacing(self.theme.spacing_px)
        for i, status in enumerate(options):
            b = button(w(f"status.{status}"), self.theme, role="primary" if status == d.get("suggested") else None,
                       name=f"status_{status}", on_click=lambda s=status: self.post("punch_chosen", status=s))
            grid.addWidget(b, i // cols, i % cols)
        self.box.addStretch(1)
        self.box.addLayout(grid)
        self.box.addStretch(1)


class Result(Screen):
    """Recorded (green): name, punch state and time; or "already recorded at 08:02"."""

    interactive = False
    top_action = None

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        time = w.ltr(d.get("time", ""))
        banner = w("result.already", time=time) if d.get("already") else w("result.recorded")
        self.heading(banner, role="banner_ok")
        self.heading(d.get("name", ""), role="title")
        self.box.addWidget(label(w("result.line", status=w(f"status.{d.get('status')}"), time=time),
                                 align=Qt.AlignCenter, name="line"))
        self.box.addWidget(label(w(f"verify.{d.get('verify_mode', 'face')}"), role="small", align=Qt.AlignCenter))
        self.box.addStretch(1)
        self.actions([(w("btn.done"), "cancelled", "primary", None)])


class Refused(Screen):
    """Not recorded (red): why (unknown person, PIN locked, storage error); the door stays shut."""

    interactive = False
    top_action = None

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w("refused.title"), role="banner_error")
        self.box.addWidget(label(self.reason_text(d.get("reason")), role="title", align=Qt.AlignCenter, name="reason"))
        self.box.addStretch(1)
        self.actions([(w("btn.done"), "cancelled", "primary", None)])
