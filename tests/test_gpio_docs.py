"""docs/hardware.md's wiring table agrees with the GPIO defaults and with the 40-pin header."""

import re

from conftest import ROOT
from gpiozero.pins.mock import MockFactory

from kiosk import config

ROW = re.compile(r"^\|[^|]+\|[^|]+\|\s*GPIO(\d+)\s*\|\s*(\d+)\s*\|\s*([^|]*)\|", re.MULTILINE)


def wiring_rows():
    text = (ROOT / "docs" / "hardware.md").read_text()
    return [(int(bcm), int(pin), setting) for bcm, pin, setting in ROW.findall(text)]


def test_wiring_table_matches_the_gpio_defaults():
    defaults = config.build([]).gpio
    documented = {}
    for bcm, _, setting in wiring_rows():
        for name in re.findall(r"gpio\.(\w+_pin)", setting):
            documented[name] = bcm
    pin_fields = {name for name in vars(defaults) if name.endswith("_pin")}
    assert set(documented) == pin_fields
    for name, bcm in documented.items():
        assert getattr(defaults, name) == bcm, name


def test_physical_pin_numbers_match_the_header():
    header = MockFactory().board_info.headers["J8"]
    for bcm, pin, _ in wiring_rows():
        assert header.pins[pin].name == f"GPIO{bcm}", (bcm, pin)
    assert {bcm for bcm, _, _ in wiring_rows()} >= {14, 15}  # the UART is in the table too
