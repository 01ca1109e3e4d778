"""The R30x simulator: packet codec, matcher, template library, and the protocol as pyfingerprint sees it."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyfingerprint.pyfingerprint import PyFingerprint

from kiosk_sim import r30x_control
from kiosk_sim import r30x_fingers as fingers
from kiosk_sim import r30x_minutiae as minutiae
from kiosk_sim import r30x_protocol as p
from kiosk_sim.r30x import SensorSimulator
from kiosk_sim.r30x_library import TemplateLibrary

GENUINE = "FVC2002_DB1_B/104"  # fingers whose impressions 1 and 2 merge under the real matcher
OTHER = "FVC2002_DB1_B/107"


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


def _records(datasets, identity, impressions):
    catalog = fingers.FingerCatalog(datasets / "fingers")
    return [fingers.character_file(catalog.image(identity, n)) for n in impressions]


def test_minutiae_from_real_images_separate_fingers(datasets):
    one, other = _records(datasets, GENUINE, range(1, 9)), _records(datasets, OTHER, range(1, 9))
    threshold = fingers.THRESHOLDS[3]
    enrolled = {GENUINE: fingers.merge(one[0], one[1]), OTHER: fingers.merge(other[0], other[1])}
    impostor = [fingers.raw_score(probe, enrolled[GENUINE]) for probe in other]
    assert max(impostor) < threshold  # no impression of another finger is taken for this one
    genuine = [fingers.raw_score(probe, enrolled[GENUINE]) for probe in one[2:]]
    genuine += [fingers.raw_score(probe, enrolled[OTHER]) for probe in other[2:]]
    assert sum(s >= threshold for s in genuine) > len(genuine) / 2  # most later impressions are
    # the character file is an ISO 19794-2 record of what was extracted, within the module's 512 bytes
    assert len(one[0]) == fingers.CHAR_LEN == 512 and one[0][:8] == b"FMR\0 20\0"
    assert minutiae.minutiae_count(one[0]) >= minutiae.MIN_MINUTIAE
    assert fingers.character_file(fingers.FingerCatalog(datasets / "fingers").image(GENUINE, 1)) == one[0]


@given(points=st.lists(st.tuples(st.integers(0, 255), st.integers(0, 287), st.integers(0, 255),
                                 st.sampled_from([0, 1, 2]), st.integers(0, 100)), max_size=100))
def test_iso_records_round_trip_and_keep_at_most_80_minutiae(points):
    record = minutiae.encode_record([(x, y, a * 1.40625, k, q) for x, y, a, k, q in points], width=256, height=288)
    assert len(record) == 512
    width, height, decoded = minutiae.decode_record(record)
    assert (width, height) == (256, 288) and len(decoded) == min(len(points), minutiae.MAX_MINUTIAE)
    if len(points) <= minutiae.MAX_MINUTIAE:
        assert [(x, y, round(a / 1.40625), k, q) for x, y, a, k, q in decoded] == points


@given(blob=st.binary(max_size=600))
def test_hostile_character_bytes_parse_to_nothing_or_bounded_minutiae(blob):
    for data in (blob, b"FMR\0 20\0" + blob):
        decoded = minutiae.decode_record(data)
        if decoded is not None:
            width, height, points = decoded
            assert all(0 <= x < width and 0 <= y < height for x, y, *_ in points)
        assert minutiae.score(data, data) >= 0  # never raises, whatever the host downloads


def test_image_quality_gives_the_guidance(datasets):
    catalog = fingers.FingerCatalog(datasets / "fingers")
    for identity in (GENUINE, "FVC2000_DB2_B/103"):
        assert minutiae.guidance(catalog.image(identity, 2)) is None
        assert minutiae.guidance(catalog.image(identity, 2, "wet")) == "messy"
        assert minutiae.guidance(catalog.image(identity, 2, "oily")) == "messy"
    # measured, not looked up: a blank window and a flat dark one, whatever the condition says
    assert minutiae.guidance(np.full((288, 256), 255, np.uint8)) == "few"
    assert minutiae.guidance(np.full((288, 256), 40, np.uint8)) == "messy"


def test_injected_error_rates_follow_the_configuration(datasets):
    template, = _records(datasets, GENUINE, (1,))
    probe = template  # a comparison far above the threshold, so every reject is an injected one
    impostor, = _records(datasets, OTHER, (1,))
    matcher = fingers.Matcher(false_reject_rate=0.25, false_accept_rate=0.1, seed=7)
    trials = 2000
    rejected = sum(not matcher.compare(probe, template, 3)[0] for _ in range(trials))
    accepted = sum(matcher.compare(impostor, template, 3)[0] for _ in range(trials))
    assert 0.20 < rejected / trials < 0.30
    assert 0.06 < accepted / trials < 0.14
    exact = fingers.Matcher()
    assert exact.compare(probe, template, 3)[0] and not exact.compare(impostor, template, 3)[0]


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


def test_the_matcher_loads_only_when_a_finger_first_touches_the_glass(datasets):
    """NBIS's extractor costs about 80 MB resident: a simulated kiosk nobody touches never loads it."""
    import subprocess
    import sys

    script = f"""
import sys
from pyfingerprint.pyfingerprint import PyFingerprint
from kiosk_sim import r30x_minutiae
from kiosk_sim.r30x import SensorSimulator
with SensorSimulator(capacity=8, speed=0, fingers_dir={str(datasets / "fingers")!r}) as sim:
    fp = PyFingerprint(sim.port, 57600, 0xFFFFFFFF, 0)
    assert fp.verifyPassword() and fp.readImage() is False
    assert "nbis" not in sys.modules and not r30x_minutiae._extractor_made, "loaded before any finger"
    sim.place_finger({GENUINE!r}, 1)
    assert fp.readImage()
    fp.convertImage(1)
    assert r30x_minutiae._extractor_made
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


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
    sim.place_finger("FVC2002_DB1_B/110", 7)
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


def test_any_image_placed_through_the_control_interface_is_matched(sim, client, datasets):
    """Real R30x images (one finger read five times, another finger) placed as files by path."""
    r30x = datasets / "fingers" / "r30x"
    same = [f"image:{r30x / 'raws-97_skripsi-iot' / f'registerFinger{n}.bmp'}" for n in (1, 2, 3)]
    for buffer, identity in zip((1, 2), same):
        assert r30x_control.execute(sim, {"cmd": "place", "finger": identity})["ok"]
        assert client.readImage()
        client.convertImage(buffer)
    assert client.createTemplate()
    template = client.downloadCharacteristics(1)
    r30x_control.execute(sim, {"cmd": "place", "finger": same[2]})
    client.readImage()
    client.convertImage(1)
    assert client.uploadCharacteristics(2, template)  # the template goes back as any host would send it
    assert client.compareCharacteristics() >= fingers.THRESHOLDS[3]
    r30x_control.execute(sim, {"cmd": "place", "finger": f"image:{r30x / 'lbaitemple_pyfingerprint' / 'fingerprint.bmp'}"})
    client.readImage()
    client.convertImage(1)
    assert client.compareCharacteristics() < fingers.THRESHOLDS[3]
    assert not r30x_control.execute(sim, {"cmd": "place", "finger": "image:/nonexistent.png"})["ok"]
