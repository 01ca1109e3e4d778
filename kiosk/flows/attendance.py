"""Clocking in and out: by face (with liveness), by fingerprint, or by ID number and PIN.

The chart (``docs/flows/attendance.md`` is drawn from it by ``kiosk flows diagrams``)::

    idle --face_seen--> watching --face_matched--> recording --recorded--> showing_result --> idle
    watching --face_refused--> not_recognised (fallbacks offered after N refusals)
    any waiting state --finger_matched--> recording;  --pin_requested--> entering_id -> entering_pin
    entering_id --finger_claimed--> verifying_finger --finger_verified--> recording (claim and verify,
        kiosk/flows/claim.py); watching --face_matched--> verifying_finger when the door wants two factors
    recording --choice_needed--> choosing_punch --punch_chosen|timed_out--> recording
    recording --already_recorded--> showing_result ("already recorded at 08:02": a success)
    showing_result --timed_out | next_person (someone new already in position)--> watching
    recording --record_failed--> refused (unknown person, storage error: the door stays shut)
    voice (kiosk/flows/voice_step.py): entering_id --id_entered (voice print on file)--> speaking;
    recording --voice_needed (attendance.voice_second_factor)--> speaking;
    speaking --voice_matched--> recording | --voice_refused--> refused | --voice_unusable--> speaking

A record is committed (``ports.record`` returns only once it is on disk) before the door opens
or the screen says "recorded". Every state but ``idle`` returns home on inactivity, and going
home wipes what the attempt held (frames' analysis, typed digits, the pending person).
"""

import logging
from dataclasses import dataclass

from kiosk.flows import claim
from kiosk.flows.base import Flow, State
from kiosk.flows.face_attempt import FaceAttempt
from kiosk.flows.punch import STATUS_NAMES, PunchRule, local_clock_text

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """The person being served and how they proved it."""

    person: object          # ports.Person, or None when the proof named nobody we know
    verify_mode: str        # face | fingerprint | pin | voice (| face+voice, fingerprint+voice once checked)
    score: float = None
    status: int = None      # chosen or decided punch state
    claimed: str = ""       # what was typed or matched, for the refusal message
    voice_checked: bool = False


class AttendanceFlow(Flow):
    """The attendance kiosk's home flow (see the module docstring for the chart)."""

    idle = State(initial=True)
    dimmed = State()
    watching = State()
    not_recognised = State()
    entering_id = State()
    entering_pin = State()
    checking_pin = State()
    verifying_finger = State()
    recording = State()
    choosing_punch = State()
    showing_result = State()
    refused = State()
    speaking = State()

    # waking and watching
    presence_detected = dimmed.to(idle) | idle.to.itself(internal=True, on="stay_awake")
    face_seen = (idle.to(watching, cond="face_enabled") | dimmed.to(watching, cond="face_enabled")
                 | watching.to.itself(internal=True, on="consider_frame")
                 | showing_result.to.itself(internal=True, on="follow_frame"))
    face_matched = watching.to(verifying_finger, cond="two_factor", on="pend_two_factor") | watching.to(recording, on="pend")
    next_person = showing_result.to(watching, cond="face_enabled")
    face_refused = watching.to(not_recognised, on="count_refusal")
    retry_requested = not_recognised.to(watching, cond="face_enabled")

    # fingerprint, alongside everything that waits for a person
    finger_matched = (idle.to(recording, cond="finger_enabled", on="pend_finger")
                      | dimmed.to(recording, cond="finger_enabled", on="pend_finger")
                      | watching.to(recording, cond="finger_enabled", on="pend_finger")
                      | not_recognised.to(recording, cond="finger_enabled", on="pend_finger"))
    finger_not_matched = (verifying_finger.to.itself(internal=True, cond="claim_tries_left", on="claim_refused")
                          | verifying_finger.to(refused, on="claim_failed")
                          | idle.to(not_recognised, cond="finger_enabled", on="count_refusal")
                          | dimmed.to(not_recognised, cond="finger_enabled", on="count_refusal")
                          | watching.to(not_recognised, cond="finger_enabled", on="count_refusal")
                          | not_recognised.to.itself(cond="finger_enabled", on="count_refusal"))

    # ID number + PIN
    pin_requested = (idle.to(entering_id, cond="id_enabled") | dimmed.to(entering_id, cond="id_enabled")
                     | watching.to(entering_id, cond="id_enabled")
                     | not_recognised.to(entering_id, cond="id_enabled"))
    id_entered = (entering_id.to(speaking, cond="id_has_voice", on="remember_voice_id")
                  | entering_id.to(entering_pin, cond=["pin_enabled", "id_has_pin"], on="remember_id")
                  | entering_id.to.itself(internal=True, on="unknown_id"))
    finger_claimed = (entering_id.to(verifying_finger, cond="claim_has_finger", on="remember_claim")
                      | entering_id.to.itself(internal=True, on="unknown_claim"))
    finger_verified = verifying_finger.to(recording, on="take_verified")
    claim_impossible = verifying_finger.to(refused, on="claim_failed")  # a two-factor face with no finger on record
    pin_entered = entering_pin.to(checking_pin, on="check_pin")
    pin_accepted = checking_pin.to(recording)
    pin_wrong = checking_pin.to(entering_pin)
    pin_locked = checking_pin.to(refused)

    # recording
    choice_needed = recording.to(choosing_punch)
    punch_chosen = choosing_punch.to(recording, cond="valid_choice", on="take_choice")
    recorded = recording.to(showing_result)
    already_recorded = recording.to(showing_result)
    record_failed = recording.to(refused)

    # voice print: alone after the ID number, or as a second factor before recording
    voice_needed = recording.to(speaking)
    voice_matched = speaking.to(recording, on="take_voice")
    voice_refused = speaking.to(refused)
    voice_unusable = speaking.to.itself(internal=True, on="retry_voice")

    # going back
    cancelled = (entering_id.to(idle) | entering_pin.to(idle) | not_recognised.to(idle) | verifying_finger.to(idle)
                 | speaking.to(idle)
                 | choosing_punch.to(idle) | showing_result.to(idle) | refused.to(idle))
    timed_out = (idle.to(dimmed) | watching.to(idle) | not_recognised.to(idle) | entering_id.to(idle)
                 | verifying_finger.to(idle)
                 | entering_pin.to(idle) | showing_result.to(watching, cond="face_enabled")
                 | showing_result.to(idle) | refused.to(idle) | speaking.to(idle)
                 | choosing_punch.to(recording, on="take_default"))
    language_chosen = (idle.to.itself(internal=True, on="set_language")
                       | dimmed.to.itself(internal=True, on="set_language")
                       | watching.to.itself(internal=True, on="set_language")
                       | not_recognised.to.itself(internal=True, on="set_language")
                       | entering_id.to.itself(internal=True, on="set_language")
                       | entering_pin.to.itself(internal=True, on="set_language"))

    timeouts = {"idle": "dim_after_s", "watching": "face_wait_s", "not_recognised": "inactivity_s",
                "entering_id": "inactivity_s", "entering_pin": "inactivity_s", "verifying_finger": "inactivity_s",
                "showing_result": "result_s", "refused": "result_s", "choosing_punch": "ask_timeout_s",
                "speaking": "inactivity_s"}

    def __init__(self, *, ports, clock, settings, rng=None):
        self.settings = settings
        self.rule = PunchRule.from_settings(settings)
        self.attempt = FaceAttempt(settings.face, rng=rng,
                                   unrecognised_frames=settings.attendance.unrecognised_frames,
                                   attempt_s=settings.attendance.face_attempt_s)
        self.pending = None
        self.refusals = 0
        self.language = settings.ui.language
        super().__init__(ports=ports, clock=clock)

    # --- timeouts and guards --------------------------------------------------------------------

    def dim_after_s(self):
        return self.settings.ui.dim_after_s

    def face_wait_s(self):
        return self.settings.attendance.face_wait_s

    def inactivity_s(self):
        return self.settings.ui.inactivity_timeout_s

    def result_s(self):
        return self.settings.attendance.result_s

    def ask_timeout_s(self):
        return self.settings.attendance.ask_timeout_s

    def _enabled(self, mode):
        return mode in self.settings.attendance.verify_modes

    def face_enabled(self):
        return self._enabled("face")

    def finger_enabled(self):
        return self._enabled("fingerprint")

    def pin_enabled(self):
        return self._enabled("pin")

    def id_enabled(self):
        return self._enabled("pin") or self._enabled("voice")

    def id_has_voice(self, typed=""):
        person = self.ports.find_person(typed)
        return self._enabled("voice") and person is not None and person.has_voice

    def id_has_pin(self, typed=""):
        person = self.ports.find_person(typed)
        return person is not None and person.has_pin

    def two_factor(self, person_id=None, score=None):
        return self.settings.attendance.face_then_finger and self.finger_enabled()

    def claim_has_finger(self, typed=""):
        person = self.ports.find_person(typed)
        return self.finger_enabled() and person is not None and self.ports.has_fingers(person.person_id)

    def claim_tries_left(self, guidance=None):
        return claim.tries_left(self)

    def valid_choice(self, status=None):
        return status in STATUS_NAMES

    # --- screens --------------------------------------------------------------------------------

    def _show(self, screen, **data):
        self.ports.show(screen, language=self.language, **data)

    def on_enter_idle(self):
        self.pending = None
        self.refusals = 0
        self.attempt.reset()
        self.language = self.settings.ui.language
        self.ports.dim(False)
        self.ports.start_capture("face", mode="detect")
        self.ports.start_capture("finger", mode="identify")
        self._show("attendance_idle")

    def resume(self):
        """Back home from another flow (admin): show the idle screen and restart the captures."""
        if self.state == "idle":
            self.on_enter_idle()

    def set_punch_rule(self, rule):
        """The admin changed the punch-state rule (takes effect for the next person)."""
        self.rule = PunchRule(rule, timezone=self.settings.device.timezone,
                              windows=self.settings.attendance.time_windows,
                              fixed_status=self.settings.attendance.fixed_status)

    def stay_awake(self):
        self.extend_deadline()

    def on_enter_dimmed(self):
        self.ports.dim(True)

    def on_exit_dimmed(self):
        self.ports.dim(False)

    def on_enter_watching(self, source=None):
        self.attempt.restart()
        self.ports.start_capture("face", mode="identify")
        self._show("face_guidance", guidance=None)

    def set_language(self, language=None):
        if language in ("ar", "en"):
            self.language = language
            self.extend_deadline()

    # --- the face path --------------------------------------------------------------------------

    def consider_frame(self, frame=None):
        """One analysed camera frame while watching: guidance, challenge, accept or refuse."""
        if frame is None:
            return
        outcome = self.attempt.update(frame)
        if outcome.kind == "spent":
            self.extend_deadline()  # the person just served is still here: wait for them to go
            return
        if outcome.kind == "no_face":
            return
        self.extend_deadline()  # a face is in view: keep watching
        if outcome.kind == "accepted":
            self.send("face_matched", person_id=outcome.person_id, score=outcome.score)
        elif outcome.kind == "refused":
            self.send("face_refused", reason=outcome.reason)
        elif outcome.kind == "challenge":
            self._show("face_challenge", challenge=outcome.challenge, stage=outcome.stage,
                       guidance=outcome.guidance)
        elif outcome.kind == "checking":
            self._show("face_checking")  # live: now matching, hold still
        else:
            self._show("face_guidance", guidance=outcome.guidance)

    def pend(self, person_id=None, score=None):
        self.pending = Pending(self.ports.person(person_id), "face", score, claimed=person_id or "")

    def count_refusal(self, reason=None, guidance=None):
        self.refusals += 1
        self.ports.signal("error")
        self.attempt.restart()
        offer = self.refusals >= self.settings.attendance.face_attempts_before_fallback
        fallbacks = [mode for mode in ("fingerprint", "pin") if self._enabled(mode)] if offer else []
        self._show("not_recognised", reason=reason or guidance, guidance=guidance, fallbacks=fallbacks,
                   attempts=self.refusals)

    def on_enter_not_recognised(self):
        self.ports.start_capture("face", mode="detect")

    # --- the fingerprint path -------------------------------------------------------------------

    def pend_finger(self, slot=None, score=None):
        self.pending = Pending(self.ports.person_for_finger(slot), "fingerprint", score, claimed=f"slot {slot}")

    # --- claim and verify (kiosk/flows/claim.py) ------------------------------------------------

    def pend_two_factor(self, person_id=None, score=None):
        person = self.ports.person(person_id)
        if person is None or not self.ports.has_fingers(person_id):
            # a face with no finger on record cannot pass a two-factor door: refuse it there
            self.pending = Pending(None, "face", score, claimed=person_id or "")
            return
        claim.begin(self, person, "face")

    def remember_claim(self, typed=""):
        claim.begin(self, self.ports.find_person(typed), "typed")

    def unknown_claim(self, typed=""):
        self.extend_deadline()
        self._show("id_keypad", error="unknown_id")

    def on_enter_verifying_finger(self):
        if self.pending is None or self.pending.person is None:
            self.send("claim_impossible")
            return
        claim.start_capture(self)
        claim.show_prompt(self)

    def claim_refused(self, guidance=None):
        claim.refused(self, guidance)

    def claim_failed(self, guidance=None):
        self.ports.signal("error")
        self._show("refused", reason="finger_not_verified")

    def take_verified(self, score=None):
        claim.verified(self, score)

    # --- the PIN path ---------------------------------------------------------------------------

    def on_enter_entering_id(self):
        self.ports.stop_capture("face")
        self._show("id_keypad", error=None)

    def unknown_id(self, typed=""):
        self.extend_deadline()
        self._show("id_keypad", error="unknown_id")

    def remember_id(self, typed=""):
        self.pending = Pending(self.ports.find_person(typed), "pin", claimed=typed)

    def on_enter_entering_pin(self, source=None):
        if source is not None and source.id == "entering_id":
            self._show("pin_keypad", error=None)

    def check_pin(self, pin=""):
        result = self.ports.check_pin(self.pending.person.person_id, pin)
        if result.ok:
            self.send("pin_accepted")
        elif result.outcome == "locked":
            self.ports.signal("error")
            self.send("pin_locked", until=result.locked_until_s)
        else:
            self.ports.signal("error")
            self.send("pin_wrong", attempts_left=result.attempts_left)

    def on_pin_wrong(self, attempts_left=None):
        self._show("pin_keypad", error="wrong_pin", attempts_left=attempts_left)

    def on_pin_locked(self, until=None):
        self._show("refused", reason="pin_locked", until=until)

    # --- recording ------------------------------------------------------------------------------

    def on_enter_recording(self):
        pending = self.pending
        self.ports.stop_capture("face")
        if pending is None or pending.person is None:
            log.warning("attendance refused: the proof named nobody enrolled on this kiosk")
            self.send("record_failed", reason="unknown_person")
            return
        now = self.clock.time()
        last = self.ports.last_punch(pending.person.person_id)
        guard = self.settings.attendance.repeat_guard_s
        # either way: a clock stepped back a few seconds must not turn a second tap into a check-out,
        # and a punch dated far ahead by a wrong clock must not block the person until then
        if last is not None and abs(now - last.wall_time_s) < guard:
            self.send("already_recorded", last=last)
            return
        if self._voice_still_needed(pending):
            self.send("voice_needed")
            return
        if pending.status is None:
            today = self.ports.punches_since(pending.person.person_id, self.rule.day_start_s(now))
            if self.rule.asks:
                self.send("choice_needed", suggested=self.rule.toggle(today))
                return
            pending.status = self.rule.decide(now, today)
        try:
            recorded = self.ports.record(person_id=pending.person.person_id, status=pending.status,
                                         verify_mode=pending.verify_mode, score=pending.score)
        except Exception as e:  # storage refused (disk full, ...): say so, keep the door shut
            log.error("attendance not recorded: %s", e)
            self.send("record_failed", reason=getattr(e, "guidance", None) or "not_recorded")
            return
        self.send("recorded", recorded=recorded)

    # --- the voice path (capture and decision: kiosk/flows/voice_step.py on the voice worker) ----

    def _voice_still_needed(self, pending):
        return (self.settings.attendance.voice_second_factor and pending.verify_mode in ("face", "fingerprint")
                and not pending.voice_checked)

    def remember_voice_id(self, typed=""):
        self.pending = Pending(self.ports.find_person(typed), "voice", claimed=typed)

    def on_enter_speaking(self):
        self.voice_attempts = 0
        self.ports.stop_capture("face")
        self.ports.start_capture("voice", person_id=self.pending.person.person_id, language=self.language)

    def on_exit_speaking(self):
        # however the step ends (matched, refused, cancelled, inactivity): the worker drops the attempt,
        # so a recording still under way neither draws over the next screen nor answers a later voice step
        self.ports.stop_capture("voice")

    def retry_voice(self, guidance=None):
        # the voice worker has shown the guidance; a new phrase follows, up to the attempt limit
        self.voice_attempts += 1
        self.extend_deadline()
        if self.voice_attempts >= self.settings.attendance.voice_attempts:
            self.send("voice_refused", reason=guidance or "voice_unusable")
        else:
            self.ports.start_capture("voice", person_id=self.pending.person.person_id, language=self.language)

    def take_voice(self, score=None):
        pending = self.pending
        pending.voice_checked = True
        if pending.verify_mode == "voice":
            pending.score = score
        else:
            pending.verify_mode = f"{pending.verify_mode}+voice"

    def on_voice_refused(self, score=None, reason=None):
        self.ports.signal("error")
        self._show("refused", reason=reason or "voice_not_matched")

    def on_choice_needed(self, suggested=None):
        self.suggested = suggested
        self._show("punch_choice", options=sorted(STATUS_NAMES), suggested=suggested,
                   name=self.pending.person.name)

    def take_choice(self, status=None):
        self.pending.status = int(status)

    def take_default(self):
        self.pending.status = self.suggested

    def on_recorded(self, recorded=None):
        if self.settings.attendance.open_door:
            self.ports.open_door()
        self.ports.signal("ok")
        self._result(recorded.status, recorded.wall_time_s, already=False)

    def on_already_recorded(self, last=None):
        if self.settings.attendance.open_door:
            self.ports.open_door()
        self.ports.signal("ok")
        self._result(last.status, last.wall_time_s, already=True)

    def _result(self, status, wall_s, *, already):
        person = self.pending.person
        self.attempt.restart(spend=True)
        self._show("result", ok=True, name=person.name, person_id=person.person_id, status=status,
                   status_name=STATUS_NAMES[status], time=local_clock_text(wall_s, self.settings.device.timezone),
                   already=already, verify_mode=self.pending.verify_mode)
        if self.face_enabled():
            # the camera keeps looking while the result shows: the person just served is followed
            # (never served twice) and the next one in line is served as soon as they stand in the guide
            self.ports.start_capture("face", mode="identify")

    def on_record_failed(self, reason=None):
        self.ports.signal("error")
        self._show("refused", reason=reason)

    def follow_frame(self, frame=None):
        """While the result shows, keep following the face just served (so it is not served twice);
        when the next person in line is already in position, serve them without waiting."""
        if frame is not None and self.attempt.follow(frame):
            self.send("next_person")
