"""The flows' ports on a real kiosk: the screen, the GPIO board, storage, the sensor, the camera mode.

``app.py`` builds one ``DevicePorts`` per kiosk and hands it to the flows; every method runs on
the flows' thread (``kiosk.host.FlowHost``) with the database connection given here and used
only there. ``HeadlessScreen`` is the screen until the touchscreen lands: it keeps the last
screen for `kiosk run` status and logs each change without biometric data, PINs or codes.
"""

import logging
import threading

from kiosk.digits import western_digits
from kiosk.errors import NoMatchError
from kiosk.flows import ports
from kiosk.storage import enrolment, events, people, pins, sensor_slots
from kiosk.storage.sensor_slots import template_digest

log = logging.getLogger(__name__)

# screen fields that may be logged; everything else (typed digits, vectors, templates) never is
LOGGABLE = ("name", "status_name", "time", "already", "reason", "guidance", "challenge", "stage", "verify_mode",
            "error", "attempts_left", "fallbacks")


class HeadlessScreen:
    """No display yet: remembers what would be shown and logs it (safe fields only)."""

    def __init__(self):
        self.current = None
        self.dimmed = False
        self.history = []
        self._lock = threading.Lock()
        self.listeners = []

    def show(self, screen, **data):
        with self._lock:
            self.current = (screen, data)
            self.history.append(screen)
            del self.history[:-200]
        for listener in list(self.listeners):
            listener(screen, data)
        safe = ", ".join(f"{k}={data[k]}" for k in LOGGABLE if data.get(k) not in (None, [], ""))
        level = logging.INFO if screen in ("result", "refused", "not_recognised") else logging.DEBUG
        log.log(level, "screen %s%s", screen, f" ({safe})" if safe else "")

    def dim(self, dimmed):
        self.dimmed = bool(dimmed)


class DevicePorts:
    """The Ports protocol (kiosk.flows.ports) over the real parts."""

    def __init__(self, *, settings, database, data_key, clock, screen, board=None, host=None, poller=None,
                 gallery=None, server_key=None, sensor_model=None, pages=None, on_fingers_changed=None, voice=None):
        self.settings = settings
        self.db = database
        self.key = data_key
        self.clock = clock
        self.screen = screen
        self.board = board
        self.host = host
        self.poller = poller
        self.gallery = gallery
        self.server_key = server_key
        self.sensor_model = sensor_model or settings.fingerprint.sensor_model
        self.pages = pages                            # kiosk.admin_pages.AdminPages
        self.on_fingers_changed = on_fingers_changed  # queue a sensor library reconcile
        self.door_pulses = 0
        self.voice = voice                            # kiosk.voice_worker.VoiceWorker, when voice is on

    # --- effects --------------------------------------------------------------------------------

    def show(self, screen, **data):
        self.screen.show(screen, **data)

    def dim(self, dimmed):
        self.screen.dim(dimmed)

    def signal(self, kind):
        if self.board is None:
            return
        self.board.show({"ok": "ok", "error": "error"}.get(kind, "busy"))
        self.board.beep("ok" if kind == "ok" else "error")

    def open_door(self):
        self.door_pulses += 1
        if self.board is not None:
            self.board.open_door()

    def start_capture(self, kind, **options):
        if kind == "face" and self.host is not None:
            self.host.set_face_mode(options.get("mode", "identify"))
        elif kind == "finger" and self.poller is not None:
            mode = options.get("mode", "identify")
            if mode == "verify":  # claim and verify: the claimed person's templates go down to the sensor
                options = {"templates": people.finger_templates_of(self.db, self.key, self.sensor_model,
                                                                   options.get("person_id"))}
            self.poller.set_mode(mode, **{k: v for k, v in options.items() if k != "mode"})
        elif kind == "voice" and self.voice is not None:
            if options.get("mode") == "enrol":
                self.voice.request_enrol(language=options.get("language"))
            else:
                self.voice.request(person_id=options["person_id"], language=options.get("language"))

    def stop_capture(self, kind):
        if kind == "face" and self.host is not None:
            self.host.set_face_mode(None)
        elif kind == "finger" and self.poller is not None:
            self.poller.set_mode(None)
        elif kind == "voice" and self.voice is not None:
            self.voice.cancel()

    def voice_print(self, person_id):
        """The person's sealed voice print for the voice model, opened; None without one."""
        from kiosk.models.voice_embedder import CamppEmbedder

        return people.voice_template(self.db, self.key, person_id, CamppEmbedder.model_id)

    # --- attendance -----------------------------------------------------------------------------

    def _person(self, row, *, include_inactive=False):
        if row is None or not (include_inactive or row.get("active", 1)):
            return None
        return ports.Person(row["person_id"], row.get("name") or row["person_id"], row.get("role") or "employee",
                            has_pin=bool(row.get("pin_hash")),
                            has_voice=people.has_voice_template(self.db, row["person_id"]))

    def person(self, person_id, *, include_inactive=False):
        if person_id is None:
            return None
        return self._person(people.get_person(self.db, person_id), include_inactive=include_inactive)

    def person_for_finger(self, slot):
        if slot is None:
            return None
        return self.person(self._slot_owner(int(slot))[1])

    def _slot_owner(self, slot):
        """(whether we wrote ``slot``, whose current template we wrote there or None)."""
        # the sensor slot table names whom each slot we wrote is for (the working set moves people
        # between slots); a row from before it named people falls back to the slot the database gave
        # the template. A slot we never wrote (a lost database's, left alone) names nobody
        written = sensor_slots.written_at(self.db, slot)
        if written is None or written.sensor_model not in (self.sensor_model, ""):
            return False, None
        person_id = written.person_id or people.person_for_slot(self.db, self.sensor_model, slot)
        if person_id is None:
            return True, None
        # what we wrote there must still be one of their templates: a deleted or re-enrolled
        # person's old finger stays on the sensor until a reconcile reaches it (unplugged, budget)
        theirs = people.finger_templates_of(self.db, self.key, self.sensor_model, person_id)
        if written.digest not in {template_digest(t) for t in theirs}:
            return True, None
        return True, person_id

    def has_fingers(self, person_id):
        row = self.db.execute("SELECT 1 FROM finger_templates WHERE person_id = ? AND sensor_model = ? LIMIT 1",
                              [person_id, self.sensor_model]).fetchone()
        return row is not None

    def find_person(self, typed):
        typed = western_digits(typed or "")
        return self.person(typed) if typed else None

    def last_punch(self, person_id):
        punch = events.last_event_for(self.db, person_id)
        return None if punch is None else ports.Punch(punch.status, punch.wall_s)

    def punches_since(self, person_id, since_s):
        return [ports.Punch(p.status, p.wall_s) for p in events.events_of_person_since(self.db, person_id, since_s)]

    def record(self, *, person_id, status, verify_mode, score=None):
        event = events.record_event(self.db, person_id=person_id, status_code=status, verify_mode=verify_mode,
                                    score=score, clock=self.clock)
        wall_s = self.clock.time()
        log.info("attendance #%d recorded: %s status %d by %s", event.seq, person_id, status, verify_mode)
        if self.on_fingers_changed is not None:
            self.on_fingers_changed({person_id})  # a punch moves its person up the working set
        return ports.Recorded(event.seq, person_id, status, verify_mode, wall_s)

    def _pin_check(self, check):
        return ports.PinCheck(check.outcome if check.outcome != "no_pin" else "wrong",
                              locked_until_s=check.lockout.locked_until, attempts_left=check.attempts_left)

    def check_pin(self, person_id, pin):
        a = self.settings.attendance
        return self._pin_check(pins.check_person_pin(self.db, person_id, pin, max_failures=a.pin_max_failures,
                                                     cooldown_s=a.pin_cooldown_s, now=self.clock.time()))

    def check_admin_pin(self, pin):
        s = self.settings.security
        return self._pin_check(pins.check_admin_pin(self.db, pin, s.admin_pin_hash, max_failures=s.admin_max_failures,
                                                    cooldown_s=s.admin_cooldown_s, now=self.clock.time()))

    # --- enrolment and admin (used by the admin flows) ------------------------------------------

    def face_duplicate(self, vectors):
        if self.gallery is None or not len(self.gallery):
            return None
        threshold = self.settings.face.match_threshold
        for vector in vectors:
            best = self.gallery.search(vector, k=1)
            if best and best[0].score >= threshold:
                return best[0].person_id
        return None

    def finger_duplicate(self, template):
        """The person already enrolled with this finger (searched on the sensor), or None."""
        if self.poller is None:
            return None

        def search(sensor):
            sensor.load_characteristics(template)
            return sensor.search()

        try:
            slot, _score = self.poller.worker.run(search).result(timeout=30)
        except NoMatchError:
            return None
        ours, person_id = self._slot_owner(int(slot))
        if ours and person_id is None:
            return None  # a template we wrote for nobody now (deleted, replaced), waiting for a reconcile
        return person_id if person_id is not None else f"slot {slot}"

    def enrol(self, *, person_id, name, role, faces, fingers, pin=None, voice=None):
        from kiosk.storage import db

        model_id = self.settings.face.embedder
        db.ensure_room_for_enrolment(self.settings.storage.data_dir, self.settings.storage)
        finger_items, taken = [], []
        capacity, occupied = self._sensor_library() if fingers else (0, [])
        for template in fingers:
            # not a slot holding a template we did not write (a lost database's): reconcile would
            # leave it there and never write this finger
            slot = enrolment.next_free_slot(self.db, self.sensor_model, occupied=[*occupied, *taken],
                                            capacity=capacity)
            taken.append(slot)
            finger_items.append((self.sensor_model, slot, bytes(template)))
        saved = enrolment.enrol_person(self.db, self.key, person_id=person_id, name=name, role=role,
                                       face=[(model_id, v) for v in faces], fingers=finger_items, pin=pin,
                                       voice=[voice] if voice is not None else [],
                                       server_key=self.server_key, now=self.clock.time())
        if self.gallery is not None:
            self.gallery.remove(person_id)
            for vector in faces:
                self.gallery.add(person_id, vector, model_id=model_id)
        if finger_items and self.on_fingers_changed is not None:
            self.on_fingers_changed({person_id})  # the sensor's thread writes the new slots
        log.info("enrolled %s at the kiosk: %d face, %d finger template(s)", person_id, len(faces), len(fingers))
        return ports.EnrolResult(person_id, len(faces), len(finger_items), tuple(taken), saved.voices)

    def _sensor_library(self):
        """(capacity, occupied slots) of the sensor; (0, []) without one."""
        if self.poller is None:
            return 0, []
        return self.poller.worker.run(lambda sensor: (int(sensor.capacity), sensor.slots())).result(timeout=30)

    def delete_person(self, person_id):
        enrolment.delete_person(self.db, person_id, now=self.clock.time())
        if self.gallery is not None:
            self.gallery.remove(person_id)
        if self.on_fingers_changed is not None:
            self.on_fingers_changed({person_id})  # empties the slots the database wrote for them
        log.info("deleted %s at the kiosk", person_id)

    def admin_page(self, page, **args):
        if self.pages is None:
            return {"page": page, "error": "not available"}
        return self.pages.answer(page, **args)

