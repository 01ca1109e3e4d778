"""The admin and enrolment flows' screens (kiosk/flows/admin.py, kiosk/flows/enrolment.py)."""

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QGridLayout, QHBoxLayout, QScrollArea, QVBoxLayout, QWidget

from kiosk.ui.screen import Screen
from kiosk.ui.screens_attendance import PinKeypad
from kiosk.ui.widgets import CameraView, FingerAnimation, LatinKeyboard, button, label

MAX_ROWS_SHOWN = 50


class AdminLocked(PinKeypad):
    """The admin PIN (masked, any length) or an enrolled admin's finger."""

    exact = False
    top_action = ("btn.exit", "exit_requested")

    def prompt(self):
        return self.words("admin_locked.prompt")


class AdminMenu(Screen):
    """The admin's pages, enrolling someone, and the way out."""

    top_action = ("btn.exit", "exit_requested")

    def build(self):
        w = self.words
        grid = QGridLayout()
        grid.setSpacing(self.theme.spacing_px)
        cols = 2 if self.theme.portrait else 4
        items = [(w(f"page.{p}"), "page_requested", {"page": p, "args": {}}) for p in self.data.get("pages", [])]
        items.append((w("admin_menu.enrol"), "enrol_requested", {}))
        for i, (text, event, data) in enumerate(items):
            b = button(text, self.theme, role="primary" if event == "enrol_requested" else None,
                       name=f"page_{data.get('page', 'enrol')}", on_click=lambda e=event, d=data: self.post(e, **d))
            grid.addWidget(b, i // cols, i % cols)
        self.box.addStretch(1)
        self.box.addLayout(grid)
        self.box.addStretch(1)

    def title(self):
        by = self.data.get("entered_by")
        if by in (None, "pin"):
            return self.words("admin_menu.title")
        return self.words("admin_menu.title_by", who=self.words.ltr(by))


def _value_text(words, value):
    if isinstance(value, bool):
        return words("yes") if value else words("no")
    return words.ltr(value) if isinstance(value, (int, float)) else str(value)


def _field_text(words, key, value):
    """``field: value`` for one value of a page or a result (a punch-state mode in words)."""
    shown = words(f"punch_mode.{value}", default=str(value)) if key == "mode" else _value_text(words, value)
    return f"{words(f'field.{key}', default=key)}: {shown}"


def _error_text(words, error):
    """An error word in the screen's language when it has one (admin_pin_required), else as given."""
    return words(f"error.{error}", default=str(error))


def _row_text(words, row):
    """One row of a page (a person, an event) as a line: ids left to right, roles and flags in words."""
    parts = []
    for key, value in row.items():
        if key == "role":
            parts.append(words(f"role.{value}", default=str(value)))
        elif key.startswith("has_"):
            if value:
                parts.append(words(f"field.{key}", default=key[4:]))
        elif key.endswith("_id") or isinstance(value, (int, float)):
            parts.append(words.ltr(value))
        elif value not in (None, ""):
            parts.append(words.name(value))
    return "   ".join(parts)


class AdminPage(Screen):
    """One admin page: what the port answered (rows, checks, values), its actions, paging."""

    top_action = ("btn.back", "back_requested")

    def title(self):
        return self.words(f"page.{self.data.get('page')}", default=str(self.data.get("page")))

    def build(self):
        d, w = self.data, self.words
        content = d.get("content") or {}
        result = d.get("result")
        if result:
            ok = "error" not in result
            text = w("admin_page.done") if ok else w("admin_page.failed", error=_error_text(w, result.get("error")))
            if not result.get("waiting"):    # a request the system has not answered is neither done nor failed
                self.box.addWidget(label(text, role="ok" if ok else "error", align=Qt.AlignCenter, name="result"))
            if result.get("said"):    # a sentence for what an action did (decommissioned, re-provisioned)
                self.box.addWidget(label(w(f"admin_result.{result['said']}", default=str(result["said"])),
                                         role="ok" if ok else None, align=Qt.AlignCenter, name="result_said"))
            said = [_field_text(w, k, v) for k, v in result.items()
                    if k not in ("done", "error", "page", "said", "waiting") and not isinstance(v, (list, dict))
                    and v not in (None, "")]
            if said:    # what an action did (re-provisioned as, wiped, restarts in)
                self.box.addWidget(label("   ".join(said), align=Qt.AlignCenter, name="result_detail"))
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        inner = QWidget()
        lines = QVBoxLayout(inner)
        lines.setSpacing(self.theme.spacing_px)
        if "error" in content:
            lines.addWidget(label(w("admin_page.failed", error=_error_text(w, content["error"])), role="error"))
        for check in content.get("checks", [])[:MAX_ROWS_SHOWN]:
            mark = "✓" if check.get("status") == "pass" else "✗"
            lines.addWidget(label(f"{mark} {check.get('name')}: {check.get('detail', '')}"))
        for row in content.get("rows", [])[:MAX_ROWS_SHOWN]:
            line = QHBoxLayout()
            text = _row_text(w, row)
            line.addWidget(label(text), 1)
            if d.get("page") == "people" and "person_id" in row:
                line.addWidget(button(w("btn.delete"), self.theme, role="danger", name=f"delete_{row['person_id']}",
                                      on_click=lambda p=row["person_id"]: self.post("person_delete_requested",
                                                                                    person_id=p)))
            lines.addLayout(line)
        for text in content.get("lines", [])[-MAX_ROWS_SHOWN:]:    # the log page: plain text, left to right
            line = label(str(text), role="small")
            line.setLayoutDirection(Qt.LeftToRight)
            lines.addWidget(line)
        for key, value in content.items():
            if key in ("checks", "rows", "page", "error") or isinstance(value, (list, dict)) or value in (None, ""):
                continue
            lines.addWidget(label(_field_text(w, key, value)))
        lines.addStretch(1)
        scroll.setWidget(inner)
        self.box.addWidget(scroll, 1)
        items = [(w(f"action.{a}", default=a), "action_requested", "primary", {"action": a, "args": {}})
                 for a in d.get("actions", []) if a not in ("set_punch_mode", "export")]
        total, offset = content.get("total"), content.get("offset")
        if isinstance(total, int) and isinstance(offset, int) and offset + len(content.get("rows", [])) < total:
            items.append((w("btn.next"), "page_requested", None,
                          {"page": d.get("page"), "args": {"offset": offset + len(content.get("rows", []))}}))
        if items:
            self.actions(items)
        if "set_punch_mode" in d.get("actions", []):    # the action takes a mode: one button per other mode
            grid = QGridLayout()
            grid.setSpacing(self.theme.spacing_px)
            cols = 2 if self.theme.portrait else 4
            modes = [m for m in content.get("modes", []) if m != content.get("mode")]
            for i, mode in enumerate(modes):
                grid.addWidget(button(w(f"punch_mode.{mode}", default=mode), self.theme, name=f"mode_{mode}",
                                      on_click=lambda m=mode: self.post("action_requested", action="set_punch_mode",
                                                                        args={"mode": m})), i // cols, i % cols)
            self.box.addLayout(grid)
        if "export" in d.get("actions", []):    # the action takes a stick: one button per mounted stick
            sticks = [str(stick) for stick in content.get("sticks", [])]
            if not sticks:
                self.box.addWidget(label(w("export.no_stick"), align=Qt.AlignCenter, name="no_stick"))
            for i, stick in enumerate(sticks):
                self.box.addWidget(button(w("action.export_to", path=w.name(stick)), self.theme, name=f"export_{i}",
                                          on_click=lambda p=stick: self.post("action_requested", action="export",
                                                                             args={"path": p})))


class AdminConfirm(Screen):
    """An action that cannot be undone, confirmed first."""

    top_action = ("btn.back", "back_requested")

    def build(self):
        w = self.words
        self.box.addStretch(1)
        action = self.data.get("action")     # a longer name for the confirmation where the button's is short
        self.heading(w("admin_confirm.prompt", action=w.first(f"admin_confirm.{action}", f"action.{action}")))
        self.box.addStretch(1)
        self.actions([(w("btn.confirm"), "confirmed", "danger", None)])


class EnrolDetails(Screen):
    """The new person's ID and name (Latin keyboard; tap a field to type in it) and role."""

    def build(self):
        d, w = self.data, self.words
        self.values = {"person_id": "", "name": ""}
        self.role = "employee"
        self.field = "person_id"
        row = QVBoxLayout() if self.theme.portrait else QHBoxLayout()
        row.setSpacing(self.theme.spacing_px)
        self.fields = {}
        for key in ("person_id", "name"):
            b = button("", self.theme, name=f"field_{key}", on_click=lambda k=key: self.select(k))
            b.setLayoutDirection(Qt.LeftToRight)
            self.fields[key] = b
            row.addWidget(b, 2)
        self.role_button = button("", self.theme, name="field_role", on_click=self.next_role)
        row.addWidget(self.role_button, 1)
        self.box.addLayout(row)
        if d.get("error"):
            self.box.addWidget(label(w(f"error.{d['error']}"), role="error", align=Qt.AlignCenter, name="error"))
        self.keyboard = LatinKeyboard(w, self.theme)
        self.keyboard.changed.connect(self._typed)
        self.keyboard.submitted.connect(lambda _t: self.submit())
        self.box.addStretch(1)
        self.box.addWidget(self.keyboard)
        self._refresh()

    def select(self, key):
        self.field = key
        self.keyboard.text = self.values[key]
        self.keyboard.changed.emit(self.keyboard.text)
        self._refresh()

    def next_role(self):
        roles = self.data.get("roles") or ["employee"]
        self.role = roles[(roles.index(self.role) + 1) % len(roles)] if self.role in roles else roles[0]
        self._refresh()

    def _typed(self, text):
        self.values[self.field] = text
        self._refresh()

    def _refresh(self):
        w = self.words
        for key, b in self.fields.items():
            b.setText(f"{w(f'field.{key}')}: {w.name(self.values[key])}")
            b.setProperty("role", "selected" if key == self.field else None)  # the field the keyboard types in
            b.style().unpolish(b)
            b.style().polish(b)
        self.role_button.setText(w(f"role.{self.role}"))

    def submit(self):
        if self.field == "person_id" and not self.values["name"]:
            self.select("name")
            return
        self.post("details_entered", person_id=self.values["person_id"], name=self.values["name"], role=self.role)


class EnrolFace(Screen):
    """The new person's face: camera, oval, hint, how many captures are in."""

    uses_camera = True
    top_action = ("btn.back", "back_requested")

    def build(self):
        first, second = self.split()
        self.camera_view = CameraView(self.theme)
        first.addWidget(self.camera_view)
        second.addStretch(1)
        self.progress = label("", role="title", align=Qt.AlignCenter, name="progress")
        self.hint = label("", align=Qt.AlignCenter, name="hint")
        second.addWidget(self.progress)
        second.addWidget(self.hint)
        second.addStretch(1)
        self.actions([(self.words("btn.skip_face"), "face_skipped", None, None)], box=second)
        self._fill()

    def take(self, name, data):
        self.data = dict(data)
        self._fill()
        return True

    def _fill(self):
        d = self.data
        self.progress.setText(self.words("enrol_face.progress", captured=d.get("captured", 0),
                                         needed=d.get("needed", 0)))
        self.hint.setText(self.guidance_text(d.get("guidance")) or self.words("enrol_face.look"))
        self.camera_view.state = "hint" if d.get("guidance") else "ok"


class FingerScreen(Screen):
    """A finger on the sensor: which finger, the animation, the step and the guidance."""

    top_action = ("btn.back", "back_requested")
    skip_event = "fingers_skipped"

    def build(self):
        first, second = self.split()
        self.animation = FingerAnimation(self.theme)
        first.addWidget(self.animation)
        second.addStretch(1)
        self.which = label("", role="title", align=Qt.AlignCenter, name="which")
        self.step_text = label("", align=Qt.AlignCenter, name="step")
        self.hint = label("", role="error", align=Qt.AlignCenter, name="hint")
        for w in (self.which, self.step_text, self.hint):
            second.addWidget(w)
        second.addStretch(1)
        self.buttons(second)
        self._fill()

    def buttons(self, box):
        self.actions([(self.words("btn.skip_fingers"), self.skip_event, None, None)], box=box)

    def take(self, name, data):
        if name != self.name:
            return False
        self.data = dict(data)
        self._fill()
        return True

    def _fill(self):
        d, w = self.data, self.words
        self.which.setText(w("enrol_finger.which", finger=d.get("finger", 1), fingers=d.get("fingers", 2)))
        step = d.get("step") or "place_finger"
        self.step_text.setText(w(f"finger.{step}", number=d.get("number", 1), captures=d.get("captures", 3)))
        self.hint.setText(self.guidance_text(d.get("guidance")))
        self.animation.state = {"lift_finger": "lift", "captured": "ok"}.get(step, "place")


class EnrolFingerRetry(Screen):
    """The sensor could not take the finger: what to do about it."""

    def title(self):
        return self.words("enrol_finger.title")

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w("enrol_finger_retry.title", finger=d.get("finger", 1)), role="banner_error")
        self.box.addWidget(label(self.guidance_text(d.get("guidance")), role="title", align=Qt.AlignCenter,
                                 name="hint"))
        self.box.addStretch(1)
        self.actions([(w("btn.skip_fingers"), "fingers_skipped", None, None),
                      (w("btn.try_again"), "retry_requested", "primary", None)])


class EnrolDuplicate(Screen):
    """That face or finger is already someone else's: shown, retry or cancel, never skipped."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w(f"enrol_duplicate.{d.get('kind', 'face')}", other=w.ltr(d.get("other_id", ""))),
                     role="banner_error")
        self.box.addStretch(1)
        self.actions([(w("btn.try_again"), "retry_requested", "primary", None)])


class EnrolPin(PinKeypad):
    """The new person's PIN, typed twice; skippable when a face or finger was taken."""

    top_action = ("btn.back", "back_requested")

    def prompt(self):
        return self.words("enrol_pin.repeat" if self.data.get("repeat") else "enrol_pin.prompt")

    def extra(self, box):
        if self.data.get("optional") and not self.data.get("repeat"):
            self.actions([(self.words("btn.skip_pin"), "pin_skipped", None, None)], box=box)


class EnrolSummary(Screen):
    """What will be saved, confirmed by the admin."""

    top_action = ("btn.back", "back_requested")

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(f"{w.name(d.get('name', ''))}  ({w.ltr(d.get('person_id', ''))})")
        self.box.addWidget(label(w("enrol_summary.line", role=w(f"role.{d.get('role', 'employee')}"),
                                   faces=d.get("faces", 0), fingers=d.get("fingers", 0),
                                   pin=w("yes") if d.get("pin") else w("no")), align=Qt.AlignCenter, name="line"))
        if d.get("voice"):
            self.box.addWidget(label(w("enrol_summary.voice"), align=Qt.AlignCenter, name="voice"))
        self.box.addStretch(1)
        self.actions([(w("btn.cancel"), "cancelled", None, None), (w("btn.save"), "confirmed", "primary", None)])


class EnrolFailed(Screen):
    """Saving or deleting failed (or the person is unknown): why, retry where it can work."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w("enrol_failed.title"), role="banner_error")
        self.box.addWidget(label(self.reason_text(d.get("reason")), role="title", align=Qt.AlignCenter, name="reason"))
        self.box.addStretch(1)
        if d.get("retry"):
            self.actions([(w("btn.try_again"), "retry_requested", "primary", None)])


class EnrolDone(Screen):
    """Saved (or deleted): who, and what was taken; enrol another or finish."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        key = "enrol_done.deleted" if d.get("action") == "deleted" else "enrol_done.enrolled"
        self.heading(w(key, name=w.name(d.get("name", ""))), role="banner_ok")
        if d.get("action") != "deleted":
            self.box.addWidget(label(w("enrol_done.line", faces=d.get("faces", 0), fingers=d.get("fingers", 0)),
                                     align=Qt.AlignCenter, name="line"))
            if d.get("voice"):
                self.box.addWidget(label(w("enrol_summary.voice"), align=Qt.AlignCenter, name="voice"))
        self.box.addStretch(1)
        self.actions([(w("btn.enrol_another"), "enrol_requested", None, None),
                      (w("btn.done"), "cancelled", "primary", None)])


class DeleteConfirm(Screen):
    """Deleting a person (their templates and PIN) is confirmed first."""

    def build(self):
        d, w = self.data, self.words
        self.box.addStretch(1)
        self.heading(w("delete_confirm.prompt", name=w.name(d.get("name", "")), person=w.ltr(d.get("person_id", ""))))
        self.box.addStretch(1)
        self.actions([(w("btn.delete"), "confirmed", "danger", None)])

