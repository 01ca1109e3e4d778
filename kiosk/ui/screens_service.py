"""The citizen-service screens: one widget per screen of kiosk/flows/services/screens.py, with exactly its data.

The flows decide everything (rules, attempts, what comes next); these widgets only draw the data
a flow passed to ``show()`` and post back what the person did. What each posts back:

- ``service_menu`` (the only screen no flow shows: the window opens it from the attendance idle
  screen): ``activation_requested``, ``account_requested``, ``fingerprints_requested``,
  ``mobile_change_requested`` (FlowHost starts the service), or back to the attendance screen
- every service screen: ``cancelled`` (top bar), ``back_requested`` (top bar, when ``can_back``)
- ``service_id``: ``id_entered(national_id=)``;  ``service_mobile``: ``mobile_entered(mobile=)``
- ``service_email``: ``email_entered(email=)``
- ``service_code``: ``code_entered(code=)``, ``resend_requested``
- ``service_consent``: ``consent_given`` | ``consent_declined``
- ``service_face`` / ``service_finger``: ``capture_impossible`` (the camera and the sensor post the rest)
- ``service_assisted``: ``continue_requested``;  ``service_verify``: ``method_chosen(method="face"|"finger")``
  when both are offered, else ``retry_requested`` (the face again)
- ``service_pin``: ``pin_entered(pin=)``
- ``service_credentials``: ``credentials_typed(username=, password=, confirmation=)`` on each key (the
  flow answers with each rule met or not), ``credentials_entered(...)`` on OK after the confirmation
- ``service_language``: ``language_chosen(language=)``;  ``service_terms``: ``terms_accepted``
- ``service_confirm``: ``confirmed``;  ``service_done`` / ``service_refused`` / ``service_offline``: ``cancelled``
"""

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QGridLayout

from kiosk.ui.screen import Screen
from kiosk.ui.screens_admin import FingerScreen
from kiosk.ui.screens_attendance import FaceScreen, PinKeypad
from kiosk.ui.widgets import DigitKeypad, button, entry, label

SERVICES = ("activation", "account", "fingerprints", "mobile_change")
NATIONAL_ID_DIGITS = 10
MOBILE_DIGITS = 10
LANGUAGE_NAMES = {"ar": "العربية", "en": "English"}  # each in its own script, whatever the page's language


class ServiceMenu(Screen):
    """The four citizen services; shown by the window itself (no flow runs until one is chosen)."""

    local = True            # the window's own screen: no flow is waiting on it
    top_action = ("btn.back", "home_chosen")

    def build(self):
        w = self.words
        grid = QGridLayout()
        grid.setSpacing(self.theme.spacing_px)
        cols = 1 if self.theme.portrait else 2
        for i, service in enumerate(SERVICES):
            event = f"{service}_requested"
            grid.addWidget(button(w(f"service.{service}"), self.theme, role="primary", name=f"action_{event}",
                                  on_click=lambda e=event: self.post(e)), i // cols, i % cols)
        self.box.addStretch(1)
        self.box.addLayout(grid)
        self.box.addStretch(1)


class ServiceScreen(Screen):
    """A screen of a service flow: its title with the step (n of m), cancel, and back when offered."""

    def title(self):
        text = self.words(f"{self.name}.title", default="")
        n, of = (list(self.data.get("step") or [0, 0]) + [0, 0])[:2]
        return self.words("service.step", title=text, n=n, of=of) if n and of else text

    def short_title(self):
        return self.words(f"{self.name}.title", default="")

    @property
    def back_action(self):
        return ("btn.back", "back_requested") if self.data.get("can_back") else None


class NumberEntry(ServiceScreen):
    """A number on the digit keypad (left to right in both languages), refused as typed with the reason."""

    submit_event, field, digits, exact = "id_entered", "national_id", NATIONAL_ID_DIGITS, True

    def build(self):
        first, second = self.split()
        w = self.words
        self.entry = entry(self.theme)
        first.addStretch(1)
        first.addWidget(label(w(f"{self.name}.prompt"), align=Qt.AlignCenter, name="prompt"))
        first.addWidget(self.entry)
        self.error = label("", role="error", align=Qt.AlignCenter, name="error")
        first.addWidget(self.error)
        self.more(first)
        first.addStretch(1)
        self.keypad = DigitKeypad(w, self.theme, length=self.length(), exact=self.exact)
        self.keypad.changed.connect(lambda _t: self.entry.setText(self.keypad.shown()))
        self.keypad.submitted.connect(lambda text: self.post(self.submit_event, **{self.field: text}))
        second.addWidget(self.keypad)
        self.entry.setText(self.keypad.shown())
        self._fill()

    def length(self):
        return self.digits

    def more(self, box):
        pass

    def error_text(self):
        error = self.data.get("error")
        return self.words.first(f"error.{self.name}.{error}", "reason.other") if error else ""

    def _fill(self):
        self.error.setText(self.error_text())


class ServiceId(NumberEntry):
    submit_event, field, digits = "id_entered", "national_id", NATIONAL_ID_DIGITS


class ServiceMobile(NumberEntry):
    submit_event, field, digits = "mobile_entered", "mobile", MOBILE_DIGITS


class ServiceCode(NumberEntry):
    """The one-time code: where it went, a countdown to its expiry, resend once allowed."""

    submit_event, field = "code_entered", "code"

    def length(self):
        return int(self.data.get("code_length") or 6)

    def more(self, box):
        self.countdown = label("", role="small", align=Qt.AlignCenter, name="countdown")
        self.resend = button(self.words("btn.resend"), self.theme, name="action_resend_requested",
                             on_click=lambda: self.post("resend_requested"))
        box.addWidget(self.countdown)
        box.addWidget(self.resend)
        self.elapsed_s = 0.0

    def error_text(self):
        d = self.data
        if d.get("error") == "wrong":
            return self.words("error.service_code.wrong", attempts_left=d.get("attempts_left", 0))
        return super().error_text()

    def tick(self, dt_s):
        """The countdowns run on the screen; the flow and the server enforce them."""
        self.elapsed_s += dt_s
        self._fill()

    def _fill(self):
        if not hasattr(self, "countdown"):
            return
        d, w = self.data, self.words
        super()._fill()
        expires = max(0, int(float(d.get("expires_in_s") or 0) - self.elapsed_s))
        resend = max(0, int(float(d.get("resend_in_s") or 0) - self.elapsed_s + 0.999))
        sent = w("service_code.sent_to", phone=w.ltr(d.get("phone_hint", ""))) + " · " if d.get("phone_hint") else ""
        self.countdown.setText(sent + (w("service_code.expires", time=w.ltr(f"{expires // 60}:{expires % 60:02d}"))
                                       if expires else w("service_code.expired")))
        self.resend.setEnabled(resend == 0)
        self.resend.setText(w("btn.resend") if resend == 0 else w("btn.resend_in", seconds=resend))


class ServiceCodeCooldown(ServiceScreen):
    """Too many wrong codes: a countdown; the flow offers a new code when it ends."""

    interactive = False     # the flow's own timer ends it

    def build(self):
        self.box.addStretch(1)
        self.heading(self.words("service_code_cooldown.text"), role="banner_error")
        self.wait = self.heading("", role=None)
        self.wait.setObjectName("countdown")
        self.box.addStretch(1)
        self.elapsed_s = 0.0
        self._fill()

    def tick(self, dt_s):
        self.elapsed_s += dt_s
        self._fill()

    def _fill(self):
        left = max(0, int(float(self.data.get("retry_in_s") or 0) - self.elapsed_s + 0.999))
        clock = self.words.ltr(f"{left // 60}:{left % 60:02d}")
        self.wait.setText(self.words("service_code_cooldown.wait", time=clock))


class ServiceConsent(ServiceScreen):
    """What will be captured and why, before any capture; agree or decline."""

    def build(self):
        w = self.words
        kinds = "_".join(k for k in ("face", "finger") if k in (self.data.get("kinds") or []))
        self.box.addWidget(label(w(f"service_consent.{kinds or 'face_finger'}"), name="text"), 1)
        self.actions([(w("btn.decline"), "consent_declined", None, None),
                      (w("btn.agree"), "consent_given", "primary", None)])


class ServiceFace(ServiceScreen, FaceScreen):
    """The face inside the oval guide, the live hint, the liveness instruction; "I cannot" opens the assisted path."""

    other_way = ("btn.cannot_capture", "capture_impossible")
    interactive = True      # the flow's inactivity applies here
    top_action = ("btn.cancel", "cancelled")

    def take(self, name, data):
        if name != self.name:
            return False
        self.data = dict(data)
        self._fill()
        return True

    def _fill(self):
        d, w = self.data, self.words
        guidance = d.get("guidance")
        challenge = d.get("challenge")
        self.instruction.setText(w(f"challenge.{challenge}") if challenge else w("face_guidance.title"))
        hint = self.guidance_text(guidance)
        if (d.get("attempt") or 1) > 1:
            attempt = w("service.attempt", attempt=d["attempt"], attempts=d.get("attempts"))
            hint = f"{hint} · {attempt}" if hint else attempt
        self.hint.setText(hint)
        self.camera_view.state = "hint" if guidance else ("ok" if challenge else "neutral")
        self.camera_view.update()

    def title(self):
        return ServiceScreen.title(self)


class ServiceFinger(ServiceScreen, FingerScreen):
    """Which finger by name, place or lift, and why the last capture failed (wet, dirty, oily, misplaced)."""

    top_action = ("btn.cancel", "cancelled")

    def buttons(self, box):
        self.actions([(self.words("btn.cannot_capture"), "capture_impossible", None, None)], box=box)

    def _fill(self):
        d, w = self.data, self.words
        if d.get("finger") is None:  # the identity check: any finger on record will do
            self.which.setText(w("service_finger.any"))
        else:
            self.which.setText(w("service_finger.which", finger=w(f"finger_name.{d.get('finger')}", default=""),
                                 number=d.get("number", 1), of=d.get("of", 1)))
        action = d.get("action") or "place_finger"
        step = w(f"guidance.{action}")
        if (d.get("attempt") or 1) > 1:
            step += " · " + w("service.attempt", attempt=d["attempt"], attempts=d.get("attempts"))
        self.step_text.setText(step)
        self.hint.setText(self.guidance_text(d.get("guidance")))
        self.animation.state = "lift" if action == "lift_finger" else "place"

    def title(self):
        return ServiceScreen.title(self)


class ServicePin(ServiceScreen, PinKeypad):
    """The personal PIN: exactly 6 digits, masked, typed twice; the reason when refused."""

    def build(self):
        data, self.data = self.data, {**self.data, "error": None}   # the base would name the error its own way
        PinKeypad.build(self)
        self.data = data
        error = data.get("error")
        self.error.setText(self.words.first(f"error.service_pin.{error}", "reason.other") if error else "")

    def prompt(self):
        return self.words("service_pin.confirm" if self.data.get("stage") == "confirm" else "service_pin.prompt")

    def title(self):
        return ServiceScreen.title(self)
