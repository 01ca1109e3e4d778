"""The demo's simulator control panel drives the real simulators: sensor, GPIO panel, server, camera."""

import pytest

pytest.importorskip("PyQt5")

from PyQt5.QtWidgets import QCheckBox, QPushButton  # noqa: E402

from kiosk import config  # noqa: E402
from kiosk_sim.camera import ScenarioPlayer  # noqa: E402
from kiosk_sim.control_panel import ControlPanel  # noqa: E402
from kiosk_sim.gpio import Panel, SimFactory  # noqa: E402
from kiosk_sim.r30x import start_simulator  # noqa: E402
from kiosk_sim.server import ServerSimulator  # noqa: E402


@pytest.fixture
def world(tmp_path, qapp):
    settings = config.build([])
    factory = SimFactory()
    gpio = Panel(factory, settings.gpio)
    sensor = start_simulator(speed=0)
    server = ServerSimulator(workdir=tmp_path / "server").start()
    player = ScenarioPlayer("no_face")
    player.open()
    listeners = []
    panel = ControlPanel(player=player, sensor=sensor, gpio_panel=gpio, server=server, listeners=listeners,
                         people={}, photo_of="Richard_Myers",
                         fingers={"a known finger": "FVC2002_DB1_B/101", "unknown": "FVC2002_DB1_B/109"})
    yield panel, sensor, gpio, server, player, listeners
    panel.close()
    player.close()
    server.close()
    sensor.close()
    factory.close()


def click(panel, name):
    panel.findChild(QPushButton, name).click()


def test_fingers_are_placed_with_their_condition_and_lifted(world):
    panel, sensor, *_ = world
    panel.finger.setCurrentIndex(1)
    panel.condition.setCurrentText("wet")
    click(panel, "place_finger")
    finger = sensor.status()["finger"]
    assert finger["identity"] == "FVC2002_DB1_B/109" and finger["condition"] == "wet"
    click(panel, "lift_finger")
    assert sensor.status()["finger"] is None


def test_exit_button_tamper_and_presence_reach_the_kiosks_gpio_board(world):
    from kiosk.drivers.gpio import Board

    panel, _sensor, gpio, *_ = world
    seen = []
    with Board(config.build([]).gpio, pin_factory=gpio.factory) as board:
        board.when_exit_pressed = lambda: seen.append("exit")
        board.when_tampered = lambda: seen.append("tamper")
        board.when_motion = lambda: seen.append("motion")
        click(panel, "exit_button")
        panel.findChild(QCheckBox, "tamper").setChecked(True)
        click(panel, "motion")
        panel.findChild(QCheckBox, "tamper").setChecked(False)
    assert seen == ["exit", "tamper", "motion"]


def test_server_offline_stops_it_answering_and_the_sms_log_is_shown(world, tmp_path):
    import requests

    panel, _sensor, _gpio, server, *_ = world
    panel.findChild(QCheckBox, "offline").setChecked(True)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/openapi.json", timeout=5)
    panel.findChild(QCheckBox, "offline").setChecked(False)
    assert requests.get(server.url + "/openapi.json", timeout=5).status_code == 200
    server.sms_log.write_text("to 05xxxxxx12: your code is 123456\n")
    panel.refresh()
    assert "123456" in panel.sms.toPlainText()


def test_a_printed_photo_is_played_to_the_camera(world):
    panel, *_, player, _listeners = world
    panel.who.setCurrentIndex(0)
    click(panel, "walk_up")
    assert "printed_photo" in str(player.source)
    click(panel, "walk_away")
    assert "no_face" in str(player.source)
