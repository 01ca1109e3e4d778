"""The GPIO board on the simulator's mock pins: door relay, lights, buzzer and the inputs."""

import pytest
from gpiozero import LED

from kiosk import config
from kiosk.drivers import gpio
from kiosk.drivers.gpio import BEEP_PATTERNS, Board
from kiosk.errors import ConfigError, HardwareError
from kiosk_sim.gpio import Panel, SimFactory


def make(**gpio_overrides):
    settings = config.build([]).replace(gpio=gpio_overrides) if gpio_overrides else config.build([])
    factory = SimFactory()
    panel = Panel(factory, settings.gpio)
    return Board(settings.gpio, pin_factory=factory), panel


@pytest.fixture
def rig():
    board, panel = make()
    yield board, panel
    board.close()


def test_door_pulse_opens_and_closes_on_time(rig):
    board, panel = rig
    assert not board.door.is_open and not panel.is_active("door")
    board.open_door(0.05)
    assert board.door.is_open and panel.is_active("door")
    assert board.door.wait_for_closed(timeout=2.0)
    assert not panel.is_active("door")
    (start, duration), = panel.pulses("door")
    assert 0.05 <= duration < 0.5


def test_a_second_pulse_while_open_extends_the_opening(rig):
    board, panel = rig
    board.door.pulse(0.5)   # long enough that the second call surely finds the door still open
    board.door.pulse(0.6)
    assert board.door.wait_for_closed(timeout=3.0)
    (_, duration), = panel.pulses("door")  # one opening, not two
    assert duration >= 0.6
    assert board.door.pulses == 2


def test_lock_ends_a_pulse_early(rig):
    board, panel = rig
    board.door.pulse(9.0)
    board.door.lock()
    assert board.door.wait_for_closed(timeout=1.0)
    (_, duration), = panel.pulses("door")
    assert duration < 1.0


def test_active_low_relay_is_driven_low_to_open():
    board, panel = make(door_active_low=True)
    with board:
        pin = panel.pin("door")
        assert pin.state == 1 and not board.door.is_open  # idle high: relay off from the first moment
        board.open_door(0.05)
        assert pin.state == 0 and panel.is_active("door")
        assert board.door.wait_for_closed(timeout=2.0)
        assert [level for _, level in panel.history("door", levels=True)] == [True, False, True]
        assert [active for _, active in panel.history("door")] == [False, True, False]


def test_status_lights(rig):
    board, panel = rig
    expected = {"off": (), "ready": ("green",), "busy": ("amber",), "error": ("red",), "offline": ("amber", "red")}
    for status, lit in expected.items():
        board.show(status)
        assert {name for name in ("green", "red", "amber") if panel.is_active(name)} == set(lit), status
    with pytest.raises(ValueError, match="unknown status"):
        board.show("purple")


@pytest.mark.parametrize("pattern", ["ok", "error"])
def test_buzzer_patterns(rig, pattern):
    board, panel = rig
    on_s, off_s, count = BEEP_PATTERNS[pattern]
    board.beep(pattern, wait=True)
    beeps = panel.pulses("buzzer")
    assert len(beeps) == count
    for start, duration in beeps:
        assert on_s <= duration < on_s + 0.2
    gaps = [b[0] - (a[0] + a[1]) for a, b in zip(beeps, beeps[1:])]
    assert all(off_s - 0.01 <= gap < off_s + 0.2 for gap in gaps)
    assert not panel.is_active("buzzer")


def test_ok_and_error_beeps_sound_different(rig):
    assert BEEP_PATTERNS["ok"][2] == 1 and BEEP_PATTERNS["error"][2] > 1
    board, _ = rig
    with pytest.raises(ValueError, match="unknown beep"):
        board.beep("fanfare")


def test_exit_tamper_and_pir_callbacks(rig):
    board, panel = rig
    events = []
    for name in ("exit_pressed", "tampered", "tamper_cleared", "motion", "no_motion"):
        setattr(board, f"when_{name}", lambda name=name: events.append(name))
    assert not board.is_tampered and not board.is_exit_pressed and not board.motion_detected
    panel.press_exit()
    assert board.is_exit_pressed
    panel.release_exit()
    panel.trip_tamper()
    assert board.is_tampered
    panel.restore_tamper()
    panel.motion(True)
    assert board.motion_detected
    panel.motion(False)
    assert events == ["exit_pressed", "tampered", "tamper_cleared", "motion", "no_motion"]


def test_a_failing_callback_does_not_break_the_board(rig):
    board, panel = rig
    board.when_exit_pressed = lambda: 1 / 0
    panel.click_exit()
    panel.click_exit()
    assert not board.is_exit_pressed


def test_an_open_enclosure_reads_as_tampered_from_the_start():
    settings = config.build([])
    factory = SimFactory()
    Panel(factory, settings.gpio, enclosure_closed=False)
    with Board(settings.gpio, pin_factory=factory) as board:
        assert board.is_tampered


def test_close_is_idempotent_and_releases_the_pins(rig):
    board, panel = rig
    board.door.pulse(9.0)
    board.close()
    board.close()
    assert board.closed and not panel.is_active("door")
    with Board(board.settings, pin_factory=panel.factory) as again:  # the pins are free again
        again.show("ready")
        assert panel.is_active("green")


def test_board_closes_its_children_when_construction_fails():
    settings = config.build([])
    factory = SimFactory()
    squatter = LED(settings.gpio.pir_pin, pin_factory=factory)  # the PIR pin is already taken
    with pytest.raises(HardwareError, match="could not be set up"):
        Board(settings.gpio, pin_factory=factory)
    squatter.close()
    # everything the failed board had reserved was released
    for pin in (settings.gpio.door_pin, settings.gpio.green_pin, settings.gpio.exit_button_pin):
        LED(pin, pin_factory=factory).close()


def test_pin_conflicts_are_config_errors():
    with pytest.raises(ConfigError, match="both GPIO17"):
        make(green_pin=17)
    with pytest.raises(ConfigError, match="UART"):
        make(buzzer_pin=14)


def test_pin_factory_is_chosen_by_pi_model_never_silently(tmp_path):
    pi5 = tmp_path / "pi5"
    pi5.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    pi4 = tmp_path / "pi4"
    pi4.write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\x00")
    laptop = tmp_path / "none"
    assert gpio.pin_factory_name("sim") == "mock"
    assert gpio.pin_factory_name("pi", model_path=pi5) == "lgpio"
    assert gpio.pin_factory_name("usb", model_path=pi4) == "rpigpio"
    assert gpio.pin_factory_name("pi", "pi5", model_path=laptop) == "lgpio"
    with pytest.raises(HardwareError, match="not a Raspberry Pi"):
        gpio.pin_factory_name("pi", model_path=laptop)
    with pytest.raises(ConfigError):
        gpio.make_pin_factory("auto")
    assert type(gpio.make_pin_factory("mock")).__name__ == "MockFactory"


def test_a_missing_gpio_library_is_an_error_not_a_fallback():
    try:
        import RPi.GPIO  # noqa: F401
        pytest.skip("RPi.GPIO is installed here")
    except (ImportError, RuntimeError):
        pass
    with pytest.raises(HardwareError, match="RPi.GPIO"):
        gpio.make_pin_factory("rpigpio")


@pytest.mark.hardware
def test_real_board_pulses_the_door_and_reads_inputs():
    """On a Pi: builds the board with the detected pin factory and pulses the relay briefly."""
    settings = config.load()
    factory = gpio.make_pin_factory(gpio.pin_factory_name("pi", settings.hardware.pi_model))
    with Board(settings.gpio, pin_factory=factory, close_factory=True) as board:
        board.door.pulse(0.2)
        assert board.door.is_open
        assert board.door.wait_for_closed(timeout=2.0) and not board.door.is_open
        board.show("ready")
        assert board.green.is_active
        board.beep("ok", wait=True)
        assert isinstance(board.is_tampered, bool) and isinstance(board.motion_detected, bool)
