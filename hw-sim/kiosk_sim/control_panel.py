"""The demo's simulator control panel (PyQt5): the world outside the kiosk, by hand.

Beside the kiosk window, a person chooses who walks up to the camera (an enrolled person who
follows the screen's prompts, a stranger, a printed photo of an enrolled person), places and
lifts a finger on the simulated sensor (clean, wet, dirty, oily), presses the exit button,
trips the tamper switch, waves at the presence sensor, takes the central server offline, and
reads the SMS log. Every button drives a simulator through its own API, as the tests do.
"""

import logging

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import (QCheckBox, QComboBox, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                             QVBoxLayout, QWidget)

log = logging.getLogger(__name__)

CONDITIONS = ("clean", "wet", "dirty", "oily")
SMS_LINES = 20


class ControlPanel(QWidget):
    """The panel; ``people``: name -> (frontal, turns) photos; ``fingers``: label -> finger identity."""

    def __init__(self, *, player, sensor, gpio_panel, server, listeners, people, photo_of=None, fingers=None,
                 hints=(), door=None):
        super().__init__()
        self.player, self.sensor, self.gpio, self.server = player, sensor, gpio_panel, server
        self.listeners = listeners      # the kiosk screen's listeners: the person in view reads the screen
        self.people = dict(people)
        self.door = door
        self.person = None
        self.follower = None
        self.setWindowTitle("kiosk simulators")
        box = QVBoxLayout(self)
        box.addWidget(self._camera_box(photo_of))
        box.addWidget(self._finger_box(fingers or {}))
        box.addWidget(self._gpio_box())
        box.addWidget(self._server_box())
        for hint in hints:
            box.addWidget(QLabel(hint))
        self.status = QLabel("")
        self.status.setObjectName("status")
        box.addWidget(self.status)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(500)
        self.refresh()

    # --- the camera -----------------------------------------------------------------------------

    def _camera_box(self, photo_of):
        group = QGroupBox("Camera: who walks up")
        lay = QVBoxLayout(group)
        self.who = QComboBox()
        self.who.setObjectName("who")
        for name in self.people:
            self.who.addItem(name.replace("_", " "), ("person", name))
        if photo_of:
            self.who.addItem(f"Printed photo of {photo_of.replace('_', ' ')}", ("photo", photo_of))
        self.who.addItem("Nobody", ("nobody", None))
        lay.addWidget(self.who)
        row = QHBoxLayout()
        row.addWidget(self._button("Walk up", self.walk_up, "walk_up"))
        row.addWidget(self._button("Walk away", self.walk_away, "walk_away"))
        lay.addLayout(row)
        return group

    def walk_up(self):
        from kiosk_sim.scripted_person import PromptFollower, ScriptedPerson

        self.walk_away()
        kind, name = self.who.currentData()
        if kind == "person":
            frontal, turns = self.people[name]
            self.person = ScriptedPerson(frontal, turns=turns, hold_frames=12)
            self.follower = PromptFollower(self.person)
            self.listeners.append(self.follower)
            self.player.play(self.person)
        elif kind == "photo":
            self.player.play(f"printed_photo:person={name},photo=4")
        log.info("control panel: %s walks up", self.who.currentText())

    def walk_away(self):
        if self.follower in self.listeners:
            self.listeners.remove(self.follower)
        if self.person is not None:
            self.person.leave()
        self.person = self.follower = None
        self.player.play("no_face")

    # --- the fingerprint sensor -----------------------------------------------------------------

    def _finger_box(self, fingers):
        group = QGroupBox("Fingerprint sensor")
        lay = QVBoxLayout(group)
        row = QHBoxLayout()
        self.finger = QComboBox()
        self.finger.setObjectName("finger")
        for label, identity in fingers.items():
            self.finger.addItem(label, identity)
        self.condition = QComboBox()
        self.condition.setObjectName("condition")
        self.condition.addItems(CONDITIONS)
        row.addWidget(self.finger, 2)
        row.addWidget(self.condition, 1)
        lay.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self._button("Place finger", self.place_finger, "place_finger"))
        row.addWidget(self._button("Lift finger", self.sensor.lift_finger, "lift_finger"))
        lay.addLayout(row)
        return group

    def place_finger(self):
        self.sensor.lift_finger()
        self.sensor.place_finger(self.finger.currentData(), 2, condition=self.condition.currentText())

    # --- GPIO and the server --------------------------------------------------------------------

    def _gpio_box(self):
        group = QGroupBox("Door and enclosure")
        lay = QHBoxLayout(group)
        lay.addWidget(self._button("Press exit button", self.gpio.click_exit, "exit_button"))
        lay.addWidget(self._button("Someone walks by", self.gpio.motion, "motion"))
        self.tamper = QCheckBox("Enclosure opened (tamper)")
        self.tamper.setObjectName("tamper")
        self.tamper.toggled.connect(lambda on: self.gpio.trip_tamper() if on else self.gpio.restore_tamper())
        lay.addWidget(self.tamper)
        return group

    def _server_box(self):
        group = QGroupBox("Central server")
        lay = QVBoxLayout(group)
        self.offline = QCheckBox("Server offline")
        self.offline.setObjectName("offline")
        self.offline.toggled.connect(lambda on: self.server.set_fault("outage") if on else self.server.clear_fault())
        lay.addWidget(self.offline)
        lay.addWidget(QLabel("SMS log (one-time codes sent by the server):"))
        self.sms = QPlainTextEdit()
        self.sms.setObjectName("sms")
        self.sms.setReadOnly(True)
        lay.addWidget(self.sms)
        return group

    def refresh(self):
        lines = self.server.sms_messages()[-SMS_LINES:]
        text = "\n".join(lines) if lines else "(no messages yet)"
        if self.sms.toPlainText() != text:
            self.sms.setPlainText(text)
        door = self.door
        relay = "open" if door is not None and door.is_open else "closed"
        pulses = door.pulses if door is not None else 0
        self.status.setText(f"door relay {relay}, opened {pulses} times; events on the server: "
                            f"{len(self.server.events())}")

    def closeEvent(self, event):
        self.timer.stop()
        super().closeEvent(event)

    def _button(self, text, action, name):
        b = QPushButton(text)
        b.setObjectName(name)
        b.clicked.connect(lambda _checked=False: action())
        return b
