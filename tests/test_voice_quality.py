"""Voice capture quality gate and VAD on recordings from the simulated microphone (real speech)."""

import numpy as np
import pytest

from kiosk import config
from kiosk.drivers.microphone import Microphone
from kiosk.models.vad import Vad
from kiosk.models.voice_quality import GUIDANCE, VoiceLimits, assess
from kiosk_sim.microphone import ScenarioMicrophone


@pytest.fixture(scope="module")
def vad():
    return Vad()


def record(datasets, spec, *, scale=1.0, seconds=5.0):
    player = ScenarioMicrophone(speed=0, seed=3, root=datasets)
    player.play(spec)
    with Microphone(player) as mic:
        return mic.record(seconds) * scale


@pytest.mark.parametrize("spec,guidance", [
    ("reading:carlo_it", None),
    ("reading:june_fr:2", None),
    ("noise:carlo_it", "too_noisy"),
    ("clipping:june_fr", "clipped"),
    ("early:carlo_it", "outside_window"),
    ("silence", "too_little_speech"),
])
def test_each_scenario_gets_its_guidance(datasets, vad, spec, guidance):
    quality = assess(record(datasets, spec), vad)
    assert quality.guidance == guidance, quality
    assert quality.ok == (guidance is None)


def test_a_far_away_voice_is_too_quiet(datasets, vad):
    quality = assess(record(datasets, "reading:carlo_it", scale=0.02), vad)
    assert quality.guidance == "too_quiet", quality


def test_a_reading_cut_off_by_the_end_of_the_window(datasets, vad):
    quality = assess(record(datasets, "reading:carlo_it", seconds=2.5), vad)
    assert quality.guidance == "outside_window", quality


def test_speech_is_trimmed_out_of_the_window(datasets, vad):
    samples = record(datasets, "reading:carlo_it")
    quality = assess(samples, vad)
    assert 3.0 <= quality.speech.size / 16000 <= 4.2 < samples.size / 16000
    assert quality.speech_s >= 2.5 and quality.snr_db > 30


def test_limits_come_from_the_voice_settings(datasets, vad):
    settings = config.build([("test", {"voice": {"min_snr_db": 60.0, "min_speech_s": 5.0}})])
    limits = VoiceLimits.from_settings(settings.voice)
    assert (limits.min_snr_db, limits.min_speech_s) == (60.0, 5.0)
    assert assess(record(datasets, "reading:carlo_it"), vad, limits=limits).guidance == "too_noisy"
    loose = VoiceLimits(min_snr_db=0.0, max_clipped_fraction=1.0)
    assert assess(record(datasets, "clipping:june_fr"), vad, limits=loose).guidance != "clipped"
    assert set(GUIDANCE) == {"clipped", "too_noisy", "too_quiet", "too_little_speech", "outside_window"}


def test_vad_finds_speech_and_not_room_noise(datasets, vad):
    samples = record(datasets, "reading:carlo_it")
    flags = vad.speech_frames(samples)
    assert not flags[:10].any()  # the 0.4 s of room before the reading
    assert flags[20:120].mean() > 0.6
    assert vad.trim(np.zeros(16000, np.float32)).size == 0


def test_one_recording_does_not_leak_speech_into_the_next(datasets, vad):
    noisy = record(datasets, "noise:carlo_it")
    clean = record(datasets, "reading:carlo_it")
    fresh = Vad().speech_frames(clean)
    vad.speech_frames(noisy)
    assert np.array_equal(vad.speech_frames(clean), fresh)
