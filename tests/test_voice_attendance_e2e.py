"""End to end on the simulators: enrol by voice, clock in by ID number and voice, refusals and guidance.

Real parts throughout: the simulated microphone playing the voices dataset through the
microphone driver, VAD, quality gate, CAM++ TFLite, the sealed database, the device ports and
the attendance flow; the voice worker's requests are served on the test's thread.
"""

import random

import pytest

from kiosk import app, config
from kiosk.clock import FakeClock
from kiosk.device_ports import DevicePorts, HeadlessScreen
from kiosk.flows.attendance import AttendanceFlow
from kiosk.models.voice_embedder import CamppEmbedder
from kiosk.storage import db, events, people
from kiosk.storage.seal import DataKey
from kiosk_sim.microphone import ScenarioMicrophone


def reads(spec, digits):
    """A scenario spec with ``{digits}`` (those shown) or ``{wrong}`` (each shown digit + 1) filled in."""
    shown = digits.replace(" ", "")
    return spec.format(digits=shown, wrong="".join(str((int(d) + 1) % 10) for d in shown))


class Rig:
    def __init__(self, tmp_path, datasets, voice=None, **attendance):
        self.clock = FakeClock(start=1_700_000_000.0)
        self.settings = config.build([("test", {
            "hardware": {"backend": "sim"}, "storage": {"data_dir": str(tmp_path)}, "voice": voice or {},
            "attendance": {"verify_modes": ["face", "fingerprint", "pin", "voice"], "status_rule": "toggle",
                           **attendance}})])
        self.database = db.open_db(tmp_path / "kiosk.db")
        self.key = DataKey.create(tmp_path / "data.key")
        self.player = ScenarioMicrophone(speed=0, seed=4, root=datasets)
        self.microphone = app.build_microphone(self.settings, player=self.player)
        self.screen = HeadlessScreen()
        self.shown = []
        self.screen.listeners.append(lambda screen, data: self.shown.append((screen, data)))
        self.ports = DevicePorts(settings=self.settings, database=self.database, data_key=self.key,
                                 clock=self.clock, screen=self.screen)
        self.posted = []
        self.speaks = []  # what the simulated person reads when the next phrase is shown
        self.ports.voice = app.build_voice_worker(
            self.settings, microphone=self.microphone, ports=self.ports,
            post=lambda event, **data: self.posted.append((event, data)),
            before=lambda phrase, digits: self.player.play(reads(self.speaks.pop(0), digits)))
        self.flow = AttendanceFlow(ports=self.ports, clock=self.clock, settings=self.settings,
                                   rng=random.Random(1))

    def enrol(self, person_id, name, speaker):
        people.upsert_person(self.database, {"person_id": person_id, "name": name})
        step = app.build_voice_step(self.settings, microphone=self.microphone, show=self.ports.show)
        specs = [f"reading:{speaker}:{take}" for take in range(3)]
        template = step.enrol(before_each=lambda phrase, digits: self.player.play(specs.pop(0)))
        assert template is not None
        people.set_voice_template(self.database, self.key, person_id, CamppEmbedder.model_id, template)

    def clock_in(self, typed, *speaks):
        """Type the ID number, then read as ``speaks`` says (one scenario per phrase shown)."""
        self.flow.handle("pin_requested")
        self.flow.handle("id_entered", typed=typed)
        self.speaks.extend(speaks)
        for _ in speaks:
            self.ports.voice.run_pending()
            for event, data in self.posted:
                self.flow.handle(event, **data)
            self.posted.clear()

    def screens(self, name):
        return [data for screen, data in self.shown if screen == name]

    def recorded(self):
        return [(r["person_id"], r["verify_mode"]) for r in events.events_after(self.database, 0, limit=100)]


@pytest.fixture
def rig(tmp_path, datasets):
    made = Rig(tmp_path, datasets)
    made.enrol("1042", "Carlo", "carlo_it")
    return made


def test_an_employee_enrolled_by_voice_clocks_in_by_voice(rig):
    rig.clock_in("1042", "reading:carlo_it:8")
    assert rig.flow.state == "showing_result"
    assert rig.recorded() == [("1042", "voice")]
    result = rig.screens("result")[-1]
    assert result["name"] == "Carlo" and result["verify_mode"] == "voice"
    phrase = rig.screens("voice_phrase")[-1]
    assert phrase["language"] == "ar" and len(phrase["digits"].split()) == 4
    assert rig.screens("voice_recording")[-1]["level_dbfs"] < -50  # room noise after the reading


def test_another_speaker_claiming_the_id_is_refused(rig):
    rig.clock_in("1042", "reading:paola_it8k:8")
    assert rig.flow.state == "refused" and rig.screens("refused")[-1]["reason"] == "voice_not_matched"
    assert rig.recorded() == []


def test_noisy_and_clipped_recordings_get_guidance_then_a_good_one_passes(rig):
    rig.clock_in("1042", "noise:carlo_it:8", "clipping:carlo_it:9", "reading:carlo_it:10")
    assert [g["guidance"] for g in rig.screens("voice_guidance")] == ["too_noisy", "clipped"]
    assert rig.flow.state == "showing_result" and rig.recorded() == [("1042", "voice")]


def test_a_person_who_cancels_during_the_recording_leaves_the_home_screen_home(rig):
    """Cancel pressed while the phrase shows: the flow goes home and drops the attempt; the recording
    still runs out (it cannot be cut short), but neither its meter nor its guidance comes back
    over the home screen, and its answer goes nowhere."""
    rig.flow.handle("pin_requested")
    rig.flow.handle("id_entered", typed="1042")
    assert rig.flow.state == "speaking"

    def walks_off(phrase, digits):
        rig.player.play("noise:carlo_it:8")
        rig.flow.handle("cancelled")

    rig.ports.voice.before = walks_off
    rig.ports.voice.run_pending()
    assert rig.flow.state == "idle" and rig.posted == []
    assert rig.shown[-1][0] == "attendance_idle"
    assert rig.recorded() == []


def test_someone_without_a_voice_print_is_refused(rig):
    people.upsert_person(rig.database, {"person_id": "2001", "name": "No Voice", "pin_hash": None})
    rig.flow.handle("pin_requested")
    rig.flow.handle("id_entered", typed="2001")
    assert rig.flow.state == "entering_id"  # no voice print and no PIN: not a known ID for this door


def test_a_lost_microphone_is_guidance_not_a_crash(rig):
    rig.player.unplug()
    rig.clock_in("1042", "reading:carlo_it:8")
    assert rig.screens("voice_guidance")[-1]["guidance"] == "microphone"
    assert rig.flow.state == "speaking" and rig.recorded() == []


# The digit check (voice.digit_check): Allison, whose digit readings the simulator has, reads
# the phrase and then digits; the window is long enough for both (6.5 s, as documented).
DIGITS_ON = {"digit_check": True, "record_s": 6.5}


@pytest.fixture
def allison(tmp_path, datasets):
    def make(voice):
        made = Rig(tmp_path, datasets, voice=voice)
        made.enrol("1077", "Allison", "allison")
        return made
    return make


def test_digit_check_on_the_person_reading_the_digits_shown_clocks_in(allison):
    rig = allison(DIGITS_ON)
    rig.clock_in("1077", "reading:allison:8:{digits}")
    assert rig.flow.state == "showing_result" and rig.recorded() == [("1077", "voice")]
    assert rig.player.played[-1].endswith(rig.screens("voice_phrase")[-1]["digits"].replace(" ", ""))


@pytest.mark.parametrize("spec", ["playback:allison:8:{wrong}", "reading:allison:8:{wrong}"])
def test_digit_check_on_a_recording_with_other_digits_is_refused(allison, spec):
    rig = allison(DIGITS_ON)
    rig.clock_in("1077", spec)
    assert rig.flow.state == "refused" and rig.screens("refused")[-1]["reason"] == "digits_not_spoken"
    assert rig.recorded() == []


def test_digit_check_on_another_speaker_is_still_refused_for_the_voice(allison):
    rig = allison(DIGITS_ON)
    rig.clock_in("1077", "reading:june_fr:8")
    assert rig.flow.state == "refused" and rig.screens("refused")[-1]["reason"] == "voice_not_matched"


def test_digit_check_off_a_replayed_recording_with_other_digits_is_accepted(allison):
    """The gap the digit check closes: without it, a replay of the right voice clocks in."""
    rig = allison({"record_s": 6.5})
    rig.clock_in("1077", "playback:allison:8:{wrong}")
    assert rig.flow.state == "showing_result" and rig.recorded() == [("1077", "voice")]


def test_an_employee_enrolled_by_voice_in_the_admin_enrolment_flow_clocks_in_by_voice(tmp_path, datasets):
    """The admin's enrolment flow, the voice worker's enrol mode and the sealed database, then attendance."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.flows.enrolment import EnrolmentFlow
    from kiosk.storage import outbox
    from kiosk.sync import protocol

    rig = Rig(tmp_path, datasets)
    rig.ports.server_key = protocol.public_key_hex(X25519PrivateKey.generate())
    enrol = EnrolmentFlow(ports=rig.ports, clock=rig.clock, settings=rig.settings)
    enrol.handle("enrol_requested")
    enrol.handle("details_entered", person_id="2050", name="June", role="employee")
    enrol.handle("face_skipped")
    enrol.handle("fingers_skipped")
    assert enrol.state == "capturing_voice"
    rig.speaks.extend(["noise:june_fr:0", "reading:june_fr:1", "reading:june_fr:2", "reading:june_fr:3"])
    rig.ports.voice.run_pending()
    [(event, data)] = rig.posted
    rig.posted.clear()
    enrol.handle(event, **data)
    assert event == "voice_enrolled" and enrol.state == "entering_pin"
    assert [g["guidance"] for g in rig.screens("voice_guidance")] == ["too_noisy"]  # retried with a new phrase
    enrol.handle("pin_skipped")
    enrol.handle("confirmed")
    assert enrol.state == "done" and rig.screens("enrol_done")[-1]["voice"] is True
    assert outbox.pending(rig.database)[-1].payload["voice_count"] == 1

    rig.clock_in("2050", "reading:june_fr:8")
    assert rig.flow.state == "showing_result" and rig.recorded() == [("2050", "voice")]
    rig.clock.advance(600)
    rig.flow.tick()
    rig.clock_in("2050", "reading:armelle_fr8k:8")
    assert rig.screens("refused")[-1]["reason"] == "voice_not_matched" and len(rig.recorded()) == 1


def test_a_voice_enrolment_with_the_microphone_unplugged_fails_with_its_guidance(tmp_path, datasets):
    from kiosk.flows.enrolment import EnrolmentFlow

    rig = Rig(tmp_path, datasets)
    enrol = EnrolmentFlow(ports=rig.ports, clock=rig.clock, settings=rig.settings)
    enrol.handle("enrol_requested")
    enrol.handle("details_entered", person_id="2051", name="Nobody", role="employee")
    enrol.handle("face_skipped")
    enrol.handle("fingers_skipped")
    rig.player.unplug()
    rig.speaks.extend(["reading:june_fr:1"])
    rig.ports.voice.run_pending()
    for event, data in rig.posted:
        enrol.handle(event, **data)
    assert enrol.state == "voice_retry" and rig.screens("enrol_voice_retry")[-1]["guidance"] == "microphone"
