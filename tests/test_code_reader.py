"""The provisioning-code reader on the camera simulator's code scenarios, and its bounds."""

import sys
import time

import numpy as np
import pytest
from conftest import ROOT
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import code_maker, code_reader
from kiosk import provision_code as pc
from kiosk.bench.codes import sample_code

sys.path.insert(0, str(ROOT / "hw-sim"))
from kiosk_sim import scenarios  # noqa: E402

HD = (1280, 720)


@pytest.fixture(scope="module")
def key():
    return Ed25519PrivateKey.generate()


def check_with(key):
    return lambda text: pc.decode(text, public_keys=[code_maker.public_hex(key)], now_s=time.time())


def test_a_signed_code_on_paper_is_read_and_accepted(key, tmp_path):
    text = sample_code(key)
    (tmp_path / "code.txt").write_text(text)
    scenario = scenarios.build(f"code_paper:code_file={tmp_path / 'code.txt'}", seed=1, size=HD)
    scanner = code_reader.CodeScanner(check=check_with(key))
    verdict, code = scanner.offer(scenario.render(0).image)
    assert verdict == "accepted" and code.payload["s"] == "Head office"


def test_a_stranger_code_on_a_phone_is_refused_once_not_every_frame(key):
    scenario = scenarios.build("code_phone", seed=2, size=HD)      # the default: a code no fleet key signed
    scanner = code_reader.CodeScanner(check=check_with(key))
    verdict, error = scanner.offer(scenario.render(0).image)
    assert verdict == "refused" and error.reason == "bad_signature"
    assert scanner.offer(scenario.render(1).image) is None


def test_no_code_and_hostile_frames_read_nothing():
    reader = code_reader.CodeReader()
    assert reader.read(scenarios.build("no_face", seed=1).render(0).image) == ""
    assert reader.read(np.zeros((5000, 5000), np.uint8)) == ""          # over the pixel bound: not searched
    assert reader.read(np.zeros((4, 4, 4, 4), np.uint8)) == ""
    assert reader.read(None) == ""


def test_the_scenario_shows_the_code_file_it_is_given(key, tmp_path):
    (tmp_path / "code.txt").write_text("KP1:ABCDEFGH")
    shown = scenarios.build(f"code_paper:code_file={tmp_path / 'code.txt'}", seed=1, size=HD).render(0).image
    assert code_reader.CodeReader().read(shown) == "KP1:ABCDEFGH"
    with pytest.raises(scenarios.ScenarioSpecError, match="code_file"):
        scenarios.build(f"code_paper:code_file={tmp_path / 'absent.txt'}", seed=1, size=HD)
