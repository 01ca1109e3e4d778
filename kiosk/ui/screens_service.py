"""Home, the error screens, and the citizen-service screens waiting for their flows (issue 10).

The citizen-service flows do not exist yet: these screens are built and tested with sample data
so that wiring a flow is only naming its ``show()`` calls after them. What each posts back:

- ``home``: ``attendance_chosen``, ``services_chosen``
- ``service_menu``: ``service_chosen(service=activate|new_account|fingerprints|change_mobile)``
- ``service_id`` / ``service_mobile``: ``id_entered(typed=)`` / ``mobile_entered(typed=)``
- ``service_code``: ``code_entered(code=)``, ``resend_requested``
- ``service_face``: ``assist_requested`` (the assisted path); the camera and hints as attendance
- ``service_finger``: ``fingers_skipped`` -> the assisted path is the flow's to decide
- ``service_pin``: ``pin_entered(pin=)`` (twice: ``repeat``)
- ``service_username`` / ``service_password`` / ``service_email``: ``username_entered(text=)`` ...
- ``service_consent``: ``consent_given`` | ``cancelled``;  ``service_confirm``: ``confirmed`` | ``back_requested``
- ``service_success``, ``service_assisted``: ``cancelled`` (done)
- ``error``: ``retry_requested``, ``pin_requested`` (when offered), ``cancelled``
"""

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QGridLayout, QHBoxLayout, QVBoxLayout

from kiosk.flows.credentials import password_rules, username_rules
from kiosk.ui.screen import Screen
from kiosk.ui.screens_admin import FingerScreen
from kiosk.ui.screens_attendance import FaceScreen, PinKeypad
from kiosk.ui.widgets import DigitKeypad, LatinKeyboard, RulesChecklist, button, entry, label

NATIONAL_ID_DIGITS = 10
MOBILE_DIGITS = 10
CODE_DIGITS = 6


class Home(Screen):
    """The start: attendance or citizen services (the language is on every screen's top bar)."""

    interactive = False
    top_action = None

    def build(self):
        w = self.words
        self.box.addStretch(1)
        self.heading(w("home.welcome"))
        self.box.addStretch(1)
        self.actions([(w("home.attendance"), "attendance_chosen", "primary", None),
                      (w("home.services"), "services_chosen", "primary", None)])
        self.box.addStretch(1)


class ServiceMenu(Screen):
    """The four citizen services."""

    def build(self):
        w = self.words
        grid = QGridLayout()
        grid.setSpacing(self.theme.spacing_px)
        cols = 1 if self.theme.portrait else 2
        for i, service in enumerate(("activate", "new_account", "fingerprints", "change_mobile")):
            grid.addWidget(button(w(f"service.{service}"), self.theme, role="primary", name=f"service_{service}",
                                  on_click=lambda s=service: self.post("service_chosen", service=s)), i // cols,
                           i % cols)
        self.box.addStretch(1)
        self.box.addLayout(grid)
        self.box.addStretch(1)


class NumberEntry(Screen):
    """A number on the digit keypad: national ID, mobile or code (left to right in both languages)."""

    submit_event, field, digits = "id_entered", "typed", NATIONAL_ID_DIGITS

    def build(self):
        first, second = self.split()
        d, w = self.data, self.words
        self.entry = entry(self.theme)
        first.addStretch(1)
        first.addWidget(label(w(f"{self.name}.prompt"), align=Qt.AlignCenter, name="prompt"))
        first.addWidget(self.entry)
        error = w(f"error.{d['error']}", attempts_left=d.get("attempts_left", "-")) if d.get("error") else ""
        first.addWidget(label(error, role="error", align=Qt.AlignCenter, name="error"))
        self.more(first)
        first.addStretch(1)
        self.keypad = DigitKeypad(w, self.theme, length=self.digits, exact=True)
        self.keypad.changed.connect(lambda _t: self.entry.setText(self.keypad.shown()))
        self.keypad.submitted.connect(lambda text: self.post(self.submit_event, **{self.field: text}))
        second.addWidget(self.keypad)
        self.entry.setText(self.keypad.shown())

    def more(self, box):
        pass


class ServiceId(NumberEntry):
    submit_event, field, digits = "id_entered", "typed", NATIONAL_ID_DIGITS


class ServiceMobile(NumberEntry):
    submit_event, field, digits = "mobile_entered", "typed", MOBILE_DIGITS


class ServiceCode(NumberEntry):
    """The one-time code sent by SMS: where it went, how long it lives, resend when allowed."""

    submit_event, field, digits = "code_entered", "code", CODE_DIGITS

    def more(self, box):
        self.countdown = label("", role="small", align=Qt.AlignCenter, name="countdown")
        self.resend = button(self.words("btn.resend"), self.theme, name="action_resend_requested",
                             on_click=lambda: self.post("resend_requested"))
        box.addWidget(self.countdown)
        box.addWidget(self.resend)
        self._fill()

    def take(self, name, data):
        """Only the countdown moved: update in place so the typed digits stay."""
        if name != self.name or {k: v for k, v in data.items() if k not in ("expires_in_s", "resend_in_s")} != \
                {k: v for k, v in self.data.items() if k not in ("expires_in_s", "resend_in_s")}:
            return False
        self.data = dict(data)
        self._fill()
        return True

    def _fill(self):
        d, w = self.data, self.words
        expires = max(0, int(d.get("expires_in_s") or 0))
        resend = max(0, int(d.get("resend_in_s") or 0))
        sent = w("service_code.sent_to", phone=w.ltr(d.get("phone", ""))) + " · " if d.get("phone") else ""
        self.countdown.setText(sent + (w("service_code.expires", time=w.ltr(f"{expires // 60}:{expires % 60:02d}"))
                                       if expires else w("service_code.expired")))
        self.resend.setEnabled(resend == 0)
        self.resend.setText(w("btn.resend") if resend == 0 else w("btn.resend_in", seconds=resend))


class ServiceFace(FaceScreen):
    """Face capture for a service: oval guide, live hints, the liveness instruction; assisted path."""

    other_way = ("btn.assist", "assist_requested")
    interactive = True
    top_action = ("btn.cancel", "cancelled")

    def _fill(self):
        d = self.data
        if d.get("challenge"):
            self.name, saved = "face_challenge", self.name
            super()._fill()
            self.name = saved
        else:
            super()._fill()

    def title(self):
        return self.words("service_face.title")


class ServiceFinger(FingerScreen):
    """Fingerprints for a service: which finger by name (right index ...), animation, guidance."""

    top_action = ("btn.cancel", "cancelled")

    def _fill(self):
        super()._fill()
        d, w = self.data, self.words
        self.which.setText(w(f"finger_name.{d.get('finger_name', 'right_index')}"))

    def title(self):
        return self.words("service_finger.title")


class ServicePin(PinKeypad):
    """The personal PIN of a service: exactly 6 digits, masked, entered twice."""

    def prompt(self):
        return self.words("enrol_pin.repeat" if self.data.get("repeat") else "service_pin.prompt")


class TextEntry(Screen):
    """A Latin-keyboard field (username, password, e-mail), with its rules ticked live when it has any."""

    submit_event, mask, rules_prefix = "username_entered", False, None

    def build(self):
        d, w = self.data, self.words
        row = QVBoxLayout() if self.theme.portrait else QHBoxLayout()
        row.setSpacing(self.theme.spacing_px)
        self.entry = entry(self.theme)
        row.addWidget(self.entry, 1)
        self.checklist = None
        if self.rules_prefix:
            self.checklist = RulesChecklist(w, self.theme, self.rules_prefix, self.rules(""), columns=2)
            row.addWidget(self.checklist, 1)
        self.box.addLayout(row)
        if d.get("error"):
            self.box.addWidget(label(w(f"error.{d['error']}"), role="error", align=Qt.AlignCenter, name="error"))
        self.box.addStretch(1)
        self.keyboard = LatinKeyboard(w, self.theme, mask=self.mask)
        self.keyboard.changed.connect(self._typed)
        self.keyboard.submitted.connect(lambda text: self.post(self.submit_event, text=text))
        self.box.addWidget(self.keyboard)
        self._typed("")

    def rules(self, text):
        return []

    def _typed(self, text):
        self.entry.setText(self.keyboard.shown() if text else self.words(f"{self.name}.prompt"))
        if self.checklist is not None:
            self.checklist.set_rules(self.rules(text))


class ServiceUsername(TextEntry):
    submit_event, rules_prefix = "username_entered", "username_rule"

    def rules(self, text):
        return username_rules(text)


class ServicePassword(TextEntry):
    submit_event, mask, rules_prefix = "password_entered", True, "password_rule"

    def rules(self, text):
        return password_rules(text, username=self.data.get("username", ""))


class ServiceEmail(TextEntry):
    submit_event = "email_entered"


class ServiceConsent(Screen):
    """What will be done with the person's data; agree or leave."""

    def build(self):
        w = self.words
        service = w(f"service.{self.data.get('service', 'activate')}")
        self.box.addWidget(label(w("service_consent.text", service=service), name="text"), 1)
        self.actions([(w("btn.agree"), "consent_given", "primary", None)])


class ServiceConfirm(Screen):
    """What will be submitted, row by row (numbers left to right), before it is."""

    top_action = ("btn.back", "back_requested")

    def build(self):
        w = self.words
        self.box.addStretch(1)
        for key, value in self.data.get("rows", []):
            self.box.addWidget(label(f"{w(f'field.{key}', default=key)}: {w.ltr(value)}", name=f"row_{key}"))
        self.box.addStretch(1)
        self.actions([(w("btn.confirm"), "confirmed", "primary", None)])


class ServiceSuccess(Screen):
    """Done: the service's name and the reference number to keep."""

    interactive = False
    top_action = None

    def build(self):
        w = self.words
        self.box.addStretch(1)
        self.heading(w("service_success.done", service=w(f"service.{self.data.get('service', 'activate')}")),
                     role="banner_ok")
        self.heading(w("service_success.reference"), role=None)
        ref = self.heading(w.ltr(self.data.get("reference", "")))
        ref.setObjectName("reference")
        self.box.addStretch(1)
        self.actions([(w("btn.done"), "cancelled", "primary", None)])


class ServiceAssisted(Screen):
    """Biometrics failed (worn fingerprints, the elderly): not a dead end, a person helps."""

    interactive = False
    top_action = None

    def build(self):
        w = self.words
        self.box.addStretch(1)
        self.heading(w("service_assisted.text"))
        if self.data.get("reference"):
            self.heading(w("service_success.reference") + " " + w.ltr(self.data["reference"]), role=None)
        self.box.addStretch(1)
        self.actions([(w("btn.done"), "cancelled", "primary", None)])


class ErrorScreen(Screen):
    """Offline, sensor unavailable, camera unavailable: what happened and a way forward."""

    def build(self):
        d, w = self.data, self.words
        kind = d.get("kind", "offline")
        self.box.addStretch(1)
        self.heading(w(f"error_screen.{kind}.title"), role="banner_error")
        self.box.addWidget(label(w(f"error_screen.{kind}.text"), align=Qt.AlignCenter, name="text"))
        self.box.addStretch(1)
        items = [(w("btn.try_again"), "retry_requested", "primary", None)]
        if d.get("pin"):
            items.append((w("btn.id_and_pin"), "pin_requested", None, None))
        self.actions(items)
