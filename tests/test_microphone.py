"""Microphone driver against the simulated microphone: recording, level meter, lost and recovered device."""

import numpy as np
import pytest

from kiosk import app, config
from kiosk.drivers.microphone import SAMPLE_RATE, Microphone, level_dbfs
from kiosk.errors import MicrophoneError
from kiosk_sim.microphone import ScenarioMicrophone, build


@pytest.fixture
def player(datasets):
    return ScenarioMicrophone(speed=0, seed=1, root=datasets)


def test_records_the_scenario_with_a_level_for_every_block(player):
    player.play("reading:carlo_it")
    levels = []
    with Microphone(player, block_s=0.02) as mic:
        samples = mic.record(5.0, on_level=levels.append)
    assert samples.dtype == np.float32 and samples.size == 5 * SAMPLE_RATE
    assert len(levels) == 250
    # room noise before the reading, speech during it
    assert max(levels[:15]) < -55 and max(levels[30:150]) > -30
    assert mic.level_dbfs == levels[-1]
    expected = build("reading:carlo_it", root=player.root, seed=1)
    assert np.array_equal(samples[:expected.size], expected)


def test_recording_length_is_bounded(player):
    mic = Microphone(player, max_record_s=10.0)
    for bad in (0.0, -1.0, float("nan"), float("inf"), 11.0):
        with pytest.raises(ValueError):
            mic.record(bad)


def test_unplugged_microphone_is_lost_then_recovered(player):
    lost, recovered = [], []
    mic = Microphone(player)
    mic.when_lost, mic.when_recovered = lost.append, lambda: recovered.append(True)
    mic.record(0.5)
    player.unplug()
    with pytest.raises(MicrophoneError, match="stopped delivering"):
        mic.record(1.0)
    assert not mic.is_healthy and "unplugged" in mic.error
    with pytest.raises(MicrophoneError, match="cannot open"):
        mic.record(1.0)
    assert len(lost) == 1 and mic.losses == 1  # reported once per loss
    player.replug()
    assert mic.record(0.5).size == SAMPLE_RATE // 2
    assert mic.is_healthy and mic.error is None and recovered == [True]


def test_digital_silence_counts_as_a_lost_microphone(player):
    mic = Microphone(player, dead_s=1.0)
    player.dead()
    with pytest.raises(MicrophoneError, match="digital silence"):
        mic.record(3.0)
    assert not mic.is_healthy


def test_level_meter_in_dbfs():
    assert level_dbfs(np.zeros(100)) == pytest.approx(-100.0)
    assert level_dbfs(np.ones(100)) == pytest.approx(0.0)
    assert level_dbfs(np.full(100, 0.1)) == pytest.approx(-20.0)


def test_app_picks_the_player_only_for_the_simulator_backend(player):
    settings = config.build([("test", {"hardware": {"backend": "sim"}})])
    mic = app.build_microphone(settings, player=player)
    assert mic.source is player
    pi = app.build_microphone(config.build([("test", {"hardware": {"backend": "pi"}, "voice": {"microphone_device": "hw:1"}})]))
    assert pi.source.name == "sounddevice:hw:1"
