"""The R30x simulator: packet codec, matcher, template library, and the protocol as pyfingerprint sees it."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyfingerprint.pyfingerprint import PyFingerprint

from kiosk_sim import r30x_control
from kiosk_sim import r30x_fingers as fingers
from kiosk_sim import r30x_protocol as p
from kiosk_sim.r30x import SensorSimulator
from kiosk_sim.r30x_library import TemplateLibrary

GENUINE = "FVC2002_DB1_B/101"
OTHER = "FVC2002_DB1_B/102"


@given(address=st.integers(0, 0xFFFFFFFF), kind=st.sampled_from([p.COMMAND, p.DATA, p.ACK, p.END]),
       payload=st.binary(max_size=256), noise=st.binary(max_size=40))
def test_packets_round_trip_through_the_reader_even_after_noise(address, kind, payload, noise):
    reader = p.PacketReader()
    # noise without a start code in it, as line noise before a real packet
    reader.feed(noise.replace(b"\xef", b"\x00") + p.encode(address, kind, payload))
    packet = reader.next_packet()
    assert packet == p.Packet(address, kind, payload)
    assert reader.next_packet() is None


def test_reader_reports_a_corrupt_checksum_and_keeps_going():
    reader = p.PacketReader()
    bad = bytearray(p.encode(0xFFFFFFFF, p.COMMAND, b"\x1d"))
    bad[-1] ^= 1
    reader.feed(bytes(bad) + p.encode(0xFFFFFFFF, p.COMMAND, b"\x0f"))
    with pytest.raises(p.BadPacket):
        reader.next_packet()
    assert reader.next_packet().instruction == p.READ_SYS_PARA


def test_features_separate_fingers_by_identity():
    genuine = [fingers.raw_score(fingers.character_file(GENUINE, a), fingers.character_file(GENUINE, b))
               for a in range(1, 9) for b in range(a + 1, 9)]
    impostor = [fingers.raw_score(fingers.character_file(GENUINE, a), fingers.character_file(OTHER, b))
                for a in range(1, 9) for b in range(1, 9)]
    threshold = fingers.THRESHOLDS[5]
    assert min(genuine) > threshold > max(impostor)
    # deterministic: the same impression always gives the same character file
    assert fingers.character_file(GENUINE, 3) == fingers.character_file(GENUINE, 3)
    assert len(fingers.character_file(GENUINE, 3)) == fingers.CHAR_LEN


def test_injected_error_rates_follow_the_configuration():
    template = fingers.merge(fingers.character_file(GENUINE, 1), fingers.character_file(GENUINE, 2))
    probe = fingers.character_file(GENUINE, 5)
    impostor = fingers.character_file(OTHER, 5)
    matcher = fingers.Matcher(false_reject_rate=0.25, false_accept_rate=0.1, seed=7)
    trials = 2000
    rejected = sum(not matcher.compare(probe, template, 4)[0] for _ in range(trials))
    accepted = sum(matcher.compare(impostor, template, 4)[0] for _ in range(trials))
    assert 0.20 < rejected / trials < 0.30
    assert 0.06 < accepted / trials < 0.14
    exact = fingers.Matcher()
    assert exact.compare(probe, template, 4)[0] and not exact.compare(impostor, template, 4)[0]


def test_library_persists_templates_and_settings(tmp_path):
    path = tmp_path / "library.json"
    library = TemplateLibrary(capacity=20, path=path)
    library.put(3, b"\x01" * 512)
    library.put(17, b"\x02" * 512)
    library.set_setting("security_level", 5)
    again = TemplateLibrary(capacity=20, path=path)
    assert again.slots() == [3, 17] and again.get(17) == b"\x02" * 512
    assert again.settings["security_level"] == 5
    assert again.index_page(0)[:3] == bytes([0b1000, 0, 0b10])
    with pytest.raises(ValueError, match="beyond the capacity"):
        TemplateLibrary(capacity=10, path=path)


def test_model_sets_the_default_capacity():
    assert SensorSimulator(model="R503").library.capacity == 200
    assert SensorSimulator(model="R307").library.capacity == 1000
    assert SensorSimulator(model="AS608", capacity=42).library.capacity == 42
    with pytest.raises(ValueError):
        SensorSimulator(model="X1")


@pytest.fixture
def sim(datasets, tmp_path):
    with SensorSimulator(capacity=64, library_path=tmp_path / "lib.json", speed=0,
                         fingers_dir=datasets / "fingers") as simulator:
        yield simulator


@pytest.fixture
def client(sim):
    fp = PyFingerprint(sim.port, 57600, 0xFFFFFFFF, 0)
    yield fp
    fp._PyFingerprint__serial.close()


def enroll_raw(fp, sim, identity, impressions=(1, 2)):
    for buffer, impression in zip((1, 2), impressions):
        sim.place_finger(identity, impression)
        assert fp.readImage()
        fp.convertImage(buffer)
    merged = fp.createTemplate()
    sim.lift_finger()
    return merged


def test_unmodified_pyfingerprint_enrolls_and_searches(sim, client):
    assert client.verifyPassword()
    assert client.getStorageCapacity() == 64
    assert client.readImage() is False  # nothing on the glass
    assert enroll_raw(client, sim, GENUINE)
    assert client.storeTemplate() == 0
    assert enroll_raw(client, sim, OTHER)
    assert client.storeTemplate() == 1
    assert client.getTemplateCount() == 2
    assert client.getTemplateIndex(0)[:3] == [True, True, False]
    sim.place_finger(OTHER, 6)
    client.readImage()
    client.convertImage(1)
    slot, score = client.searchTemplate()
    assert slot == 1 and score > fingers.THRESHOLDS[3]
    sim.place_finger("FVC2002_DB1_B/109", 6)
    client.readImage()
    client.convertImage(1)
    assert client.searchTemplate() == (-1, -1)
    assert client.deleteTemplate(1) and client.getTemplateCount() == 1
    assert client.clearDatabase() and client.getTemplateCount() == 0


def test_two_different_fingers_do_not_merge(sim, client):
    sim.place_finger(GENUINE, 1)
    client.readImage()
    client.convertImage(1)
    sim.place_finger(OTHER, 1)
    client.readImage()
    client.convertImage(2)
    assert client.createTemplate() is False
    assert client.compareCharacteristics() == 0


def test_image_download_is_the_dataset_image_at_4_bits(sim, client, tmp_path, datasets):
    from PIL import Image

    sim.place_finger(GENUINE, 4)
    assert client.readImage()
    client.downloadImage(str(tmp_path / "finger.bmp"))
    with Image.open(tmp_path / "finger.bmp") as image:
        received = np.asarray(image.convert("L"))
    expected = fingers.FingerCatalog(datasets / "fingers").image(GENUINE, 4)
    assert received.shape == (288, 256)
    assert np.array_equal(received, expected)
    assert len(np.unique(received)) > 8  # a real ridge image, not a flat fill


def test_template_round_trip_and_packet_size(sim, client):
    enroll_raw(client, sim, GENUINE)
    client.storeTemplate(5)
    client.loadTemplate(5, 1)
    template = client.downloadCharacteristics(1)
    assert len(template) == fingers.TEMPLATE_LEN
    client.setMaxPacketSize(32)
    assert client.getMaxPacketSize() == 32
    assert client.uploadCharacteristics(2, template)  # the library reads it back and compares
    client.storeTemplate(6, 2)
    client.loadTemplate(6, 1)
    assert client.downloadCharacteristics(1) == template


def test_password_protected_module(datasets):
    with SensorSimulator(capacity=10, speed=0, password=0x1234, fingers_dir=datasets / "fingers") as sim:
        wrong = PyFingerprint(sim.port, 57600, 0xFFFFFFFF, 0x9999)
        assert wrong.verifyPassword() is False
        with pytest.raises(Exception, match="0x21"):  # password must be verified first
            wrong.getTemplateCount()
        wrong._PyFingerprint__serial.close()
        right = PyFingerprint(sim.port, 57600, 0xFFFFFFFF, 0x1234)
        assert right.verifyPassword() and right.getTemplateCount() == 0
        right._PyFingerprint__serial.close()


def test_random_numbers_and_led_ring(datasets):
    with SensorSimulator(model="R503", speed=0, seed=3, fingers_dir=datasets / "fingers") as sim:
        fp = PyFingerprint(sim.port, 57600, 0xFFFFFFFF, 0)
        numbers = {fp.generateRandomNumber() for _ in range(5)}
        assert len(numbers) == 5
        fp._PyFingerprint__writePacket(p.COMMAND, (p.AURA_LED_CONFIG, 1, 100, 2, 0))
        kind, payload = fp._PyFingerprint__readPacket()
        assert (kind, payload[0]) == (p.ACK, p.OK)
        assert sim.led == {"ctrl": 1, "speed": 100, "color": 2, "count": 0}
        fp._PyFingerprint__serial.close()


def test_control_requests(sim):
    answer = r30x_control.execute(sim, {"cmd": "place", "finger": GENUINE, "impression": 2, "condition": "wet"})
    assert answer["ok"] and answer["status"]["finger"] == {"identity": GENUINE, "impression": 2, "condition": "wet"}
    assert r30x_control.execute(sim, {"cmd": "fault", "kind": "busy", "count": 2})["status"]["faults"] == {"busy": 2}
    assert r30x_control.execute(sim, {"cmd": "clear"})["status"]["faults"] == {}
    assert not r30x_control.execute(sim, {"cmd": "place", "finger": "nope/1"})["ok"]
    assert not r30x_control.execute(sim, {"cmd": "fault", "kind": "meteor"})["ok"]
    assert GENUINE in r30x_control.execute(sim, {"cmd": "fingers"})["fingers"]
    with r30x_control.ControlServer(sim, sim_socket := sim.library.path.with_suffix(".ctl")):
        assert r30x_control.send(sim_socket, {"cmd": "lift"})["status"]["finger"] is None
    json.dumps(sim.status())  # everything in the status is JSON


def test_synthetic_fingers_need_no_dataset(tmp_path):
    with SensorSimulator(capacity=5, speed=0, fingers_dir=tmp_path) as sim:
        fp = PyFingerprint(sim.port, 57600, 0xFFFFFFFF, 0)
        assert enroll_raw(fp, sim, "synthetic/alice")
        fp.storeTemplate(0)
        sim.place_finger("synthetic/alice", 3)
        fp.readImage()
        fp.convertImage(1)
        assert fp.searchTemplate()[0] == 0
        fp._PyFingerprint__serial.close()
