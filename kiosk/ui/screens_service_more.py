"""The rest of the citizen-service screens: typed text, choices, and the ends (done, refused, offline).

What each posts back is listed in kiosk/ui/screens_service.py; ``finger_verify`` (the attendance
claim-and-verify, kiosk/flows/claim.py) is here too: the sensor posts its result, the person may cancel.
"""

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QHBoxLayout, QVBoxLayout

from kiosk.ui.screen import Screen
from kiosk.ui.screens_admin import FingerScreen
from kiosk.ui.screens_service import LANGUAGE_NAMES, ServiceScreen
from kiosk.ui.widgets import LatinKeyboard, RulesChecklist, entry, label

CREDENTIAL_FIELDS = ("username", "password", "confirmation")


class ServiceEmail(ServiceScreen):
    """An e-mail address on the Latin keyboard."""

    def build(self):
        w = self.words
        self.entry = entry(self.theme)
        self.box.addWidget(self.entry)
        error = self.data.get("error")
        self.box.addWidget(label(w.first(f"error.{self.name}.{error}", "reason.other") if error else "",
                                 role="error", align=Qt.AlignCenter, name="error"))
        self.box.addStretch(1)
        self.keyboard = LatinKeyboard(w, self.theme)
        self.keyboard.changed.connect(
            lambda text: self.entry.setText(self.keyboard.shown() if text else w("service_email.prompt")))
        self.keyboard.submitted.connect(lambda text: self.post("email_entered", email=text))
        self.box.addWidget(self.keyboard)
        self.entry.setText(w("service_email.prompt"))


class ServiceCredentials(ServiceScreen):
    """Username, password, the password again, on one keyboard; each rule ticked live from the flow's answer.

    OK moves to the next field; on the confirmation it sends all three. The rules are the flow's
    (``credentials_typed`` after each key, answered with ``username_rules``/``password_rules``).
    """

    def build(self):
        w = self.words
        self.values = dict.fromkeys(CREDENTIAL_FIELDS, "")
        self.field = "username"
        row = QVBoxLayout() if self.theme.portrait else QHBoxLayout()
        row.setSpacing(self.theme.spacing_px)
        side = QVBoxLayout()              # the field, and under it the refusal or the reminder
        side.setSpacing(0)
        self.entry = entry(self.theme)     # the field's prompt while it is empty
        self.error = label("", role="error", align=Qt.AlignCenter, name="error")
        side.addWidget(self.entry)
        side.addWidget(self.error)
        row.addLayout(side, 1)
        self.user_list = RulesChecklist(w, self.theme, "username_rule", self._rules("username_rules"), columns=2)
        self.pass_list = RulesChecklist(w, self.theme, "password_rule", self._rules("password_rules"), columns=2)
        row.addWidget(self.user_list, 1)
        row.addWidget(self.pass_list, 1)
        self.box.addLayout(row)
        self.box.addStretch(1)
        self.keyboard = LatinKeyboard(w, self.theme, mask=False)
        self.keyboard.changed.connect(self._typed)
        self.keyboard.submitted.connect(self._next)
        self.box.addWidget(self.keyboard)
        self._show_field()

    def _rules(self, key):
        return list((self.data.get(key) or {}).items())

    def take(self, name, data):
        """The flow's answer to a key: new ticks, the typed text kept."""
        if name != self.name:
            return False
        self.data = dict(data)
        self.user_list.set_rules(self._rules("username_rules"))
        self.pass_list.set_rules(self._rules("password_rules"))
        if data.get("error"):
            self._to_field("username" if not all((data.get("username_rules") or {}).values()) else "password")
        self._show_error()
        return True

    def _show_error(self):
        """The refusal in red, else (on the username) the reminder that it cannot be changed later."""
        error = self.data.get("error")
        note = not error and self.field == "username"
        self.error.setText(self.words.first(f"error.{self.name}.{error}", "reason.other") if error else
                           self.words("service_credentials.note") if note else "")
        self.error.setProperty("role", "small" if note else "error")
        self.error.style().unpolish(self.error)
        self.error.style().polish(self.error)

    def _to_field(self, field):
        self.field = field
        self.keyboard.set_text(self.values[field])
        self._show_field()

    def _show_field(self):
        self.keyboard.mask = self.field != "username"
        self.user_list.setVisible(self.field == "username")
        self.pass_list.setVisible(self.field != "username")
        self._show_entry()
        self._show_error()

    def _show_entry(self):
        text = self.values[self.field]
        self.entry.setText(self.keyboard.shown() if text else self.words(f"service_credentials.{self.field}"))

    def _typed(self, text):
        self.values[self.field] = text
        self._show_entry()
        self.post("credentials_typed", **self.values)

    def _next(self, _text):
        i = CREDENTIAL_FIELDS.index(self.field)
        if i + 1 < len(CREDENTIAL_FIELDS):
            self._to_field(CREDENTIAL_FIELDS[i + 1])
        else:
            self.post("credentials_entered", **self.values)


class ServiceLanguage(ServiceScreen):
    """The preferred language, each name in its own script."""

    language_switch = False   # the top bar's switch would answer this screen's question by accident

    def build(self):
        w = self.words
        self.box.addStretch(1)
        self.heading(w("service_language.prompt"), role=None)
        error = self.data.get("error")
        if error:
            self.box.addWidget(label(w("reason.other"), role="error", align=Qt.AlignCenter, name="error"))
        self.box.addStretch(1)
        made = self.actions([(LANGUAGE_NAMES.get(code, code), "language_chosen", "primary", {"language": code})
                             for code in self.data.get("languages") or []])
        for code, b in zip(self.data.get("languages") or [], made):
            b.setObjectName(f"language_{code}")


class ServiceTerms(ServiceScreen):
    """The terms, and the username once more (it cannot be changed later); accept to create the account."""

    def build(self):
        w = self.words
        self.box.addWidget(label(w("service_terms.text"), name="text"), 1)
        self.box.addWidget(label(w("service_terms.username", username=w.ltr(self.data.get("username") or "")),
                                 align=Qt.AlignCenter, name="username"))
        if self.data.get("error"):
            self.box.addWidget(label(w("reason.not_saved"), role="error", align=Qt.AlignCenter, name="error"))
        self.actions([(w("btn.accept"), "terms_accepted", "primary", None)])


class ServiceVerify(ServiceScreen):
    """Face or finger for the identity check, or try again after one that did not verify (the flow counts)."""

    def build(self):
        d, w = self.data, self.words
        methods = [m for m in ("face", "finger") if m in (d.get("methods") or ())]
        self.box.addStretch(1)
        if d.get("error"):
            self.heading(w.first(f"service_verify.{d.get('error')}", "service_verify.not_matched"),
                         role="banner_error").setObjectName("error")
        else:
            self.heading(w("service_verify.choose")).setObjectName("choose")
        self.box.addWidget(label(w("service_verify.attempts_left", attempts_left=d.get("attempts_left", 0)),
                                 align=Qt.AlignCenter, name="attempts_left"))
        self.box.addStretch(1)
        if len(methods) < 2:  # the face only: the flow takes "try again" as the face again
            self.actions([(w("btn.try_again"), "retry_requested", "primary", None)])
            return
        made = self.actions([(w(f"btn.verify_{m}"), "method_chosen", "primary", {"method": m}) for m in methods])
        for method, made_button in zip(methods, made):
            made_button.setObjectName(f"action_method_{method}")


class ServiceAssisted(ServiceScreen):
    """Biometrics failed or cannot be taken: not a dead end; what happens next."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        what = w(f"finger_name.{d['finger']}", default="") if d.get("finger") else w("service_face.title")
        self.heading(w(f"service_assisted.{d.get('reason') or 'failed_repeatedly'}", what=what), role="banner_error")
        next_step = d.get("next_step") or "continue_assisted"
        self.box.addWidget(label(w(f"service_assisted.{next_step}"), align=Qt.AlignCenter, name="text"))
        self.box.addStretch(1)
        text = "btn.continue" if next_step == "continue_assisted" else "btn.done"
        self.actions([(w(text), "continue_requested", "primary", None)])


class ServiceConfirm(ServiceScreen):
    """What will be sent, item by item (numbers left to right), before it is."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        for key, value in (d.get("summary") or {}).items():
            self.box.addWidget(label(f"{w(f'field.{key}', default=key)}: {w.ltr(value)}", name=f"row_{key}"))
        if d.get("error"):
            self.box.addWidget(label(w("reason.not_saved"), role="error", align=Qt.AlignCenter, name="error"))
        self.box.addStretch(1)
        self.actions([(w("btn.confirm"), "confirmed", "primary", None)])


class ServiceEnd(ServiceScreen):
    """The last screen of a service: one message and a way home (``cancelled``)."""

    interactive = False     # nothing to lose: the flow's own timer takes it home
    top_action = None

    def build(self):
        self.box.addStretch(1)
        self.body()
        self.box.addStretch(1)
        self.actions([(self.words("btn.done"), "cancelled", "primary", None)])

    def title(self):
        return self.words(f"{self.name}.title", default="")


class ServiceDone(ServiceEnd):
    """Done: the reference number to keep, and whether it still waits to be sent."""

    def body(self):
        w = self.words
        self.heading(w("service_done.done", service=w(f"service.{self.data.get('service')}", default="")),
                     role="banner_ok")
        self.heading(w("service_done.reference"), role=None)
        self.heading(w.ltr(self.data.get("reference") or "")).setObjectName("reference")
        if self.data.get("queued"):
            self.box.addWidget(label(w("service_done.queued"), role="small", align=Qt.AlignCenter, name="queued"))


class ServiceRefused(ServiceEnd):
    """Refused (by the server, or declined): why, and when a new try is allowed."""

    def body(self):
        d, w = self.data, self.words
        self.heading(w.first(f"service_refused.{d.get('reason')}", "service_refused.refused"), role="banner_error")
        retry = d.get("retry_in_s")
        if isinstance(retry, (int, float)) and retry > 0:
            self.box.addWidget(label(w("service_refused.retry", minutes=max(1, int(retry + 59) // 60)),
                                     align=Qt.AlignCenter, name="retry"))


class ServiceOffline(ServiceEnd):
    """The central server cannot be reached: nothing was sent; come back later."""

    def body(self):
        w = self.words
        self.heading(w("service_offline.text"), role="banner_error")
        self.box.addWidget(label(w(f"service_offline.{self.data.get('at') or 'code'}"), align=Qt.AlignCenter,
                                 name="text"))


class FingerVerify(FingerScreen):
    """Attendance claim and verify: the claimed person's finger on the sensor (matched 1:1 there)."""

    top_action = ("btn.cancel", "cancelled")

    def buttons(self, box):
        pass

    def _fill(self):
        d, w = self.data, self.words
        self.which.setText(w("finger_verify.named", name=d["name"]) if d.get("name") else w("finger_verify.prompt"))
        self.step_text.setText(w("finger_verify.tries_left", tries_left=d.get("tries_left", 0)))
        self.hint.setText(self.guidance_text(d.get("guidance")))
        self.animation.state = "place"

    def title(self):
        return self.words("finger_verify.title")



class ErrorScreen(Screen):
    """What the window shows for a screen name it has no widget for (a bug): say so, and a way back."""

    local = True
    top_action = None

    def build(self):
        w = self.words
        self.box.addStretch(1)
        self.heading(w("error_screen.unknown_screen.title"), role="banner_error")
        self.box.addWidget(label(w("error_screen.unknown_screen.text"), align=Qt.AlignCenter, name="text"))
        self.box.addStretch(1)
        self.actions([(w("btn.ok"), "home_chosen", "primary", None)])  # back to what the flows showed last
