"""Voice prints come down from the server simulator sealed, replaced, removed; hostile ones are refused."""

import base64

import numpy as np
import pytest
from kiosk_sim.server import ServerSimulator
from sync_helpers import make_device

from kiosk.storage import people, seal
from kiosk.sync import protocol

MODEL = "campplus-fp16-v1"


@pytest.fixture
def server(tmp_path):
    with ServerSimulator(db_path=tmp_path / "server.db") as sim:
        yield sim


def unit(seed):
    v = np.random.default_rng(seed).standard_normal(192).astype(np.float32)
    return v / np.linalg.norm(v)


def test_voice_prints_are_downloaded_sealed_replaced_and_removed(server, tmp_path):
    key = seal.DataKey.create(tmp_path / "data.key")
    device = make_device(tmp_path, server, data_key=key)
    server.add_person("p1", name="One")
    server.set_voice_template("p1", MODEL, unit(1) * 3.0)  # stored unit length whatever was sent
    device.drain()
    np.testing.assert_allclose(people.voice_template(device.database, key, "p1", MODEL), unit(1), atol=1e-6)
    assert people.has_voice_template(device.database, "p1")
    server.set_voice_template("p1", MODEL, unit(2))
    device.worker.run_once()
    np.testing.assert_allclose(people.voice_template(device.database, key, "p1", MODEL), unit(2), atol=1e-6)
    server.set_voice_template("p1", MODEL, None)
    device.worker.run_once()
    assert people.voice_template(device.database, key, "p1", MODEL) is None


@pytest.mark.parametrize("vector", [
    np.full(192, np.nan, np.float32), np.zeros(192, np.float32), np.ones(5000, np.float32),
    np.array([1.0, np.inf], np.float32)])
def test_hostile_voice_prints_are_skipped_and_the_old_one_kept(server, tmp_path, vector):
    key = seal.DataKey.create(tmp_path / "data.key")
    device = make_device(tmp_path, server, data_key=key)
    server.add_person("p1")
    server.set_voice_template("p1", MODEL, unit(1))
    device.drain()
    server.set_voice_template("p1", MODEL, vector)
    device.worker.run_once()
    np.testing.assert_allclose(people.voice_template(device.database, key, "p1", MODEL), unit(1), atol=1e-6)


def test_odd_length_bytes_are_not_a_voice_print(server, tmp_path):
    key = seal.DataKey.create(tmp_path / "data.key")
    device = make_device(tmp_path, server, data_key=key)
    server.add_person("p1")
    server._change("voice_template", {"person_id": "p1", "model_id": MODEL,
                                      "vector": base64.b64encode(b"\x00\x00\x80?\x01").decode()})
    device.drain()
    assert people.voice_template(device.database, key, "p1", MODEL) is None
    assert "voice_template" in protocol.CHANGE_TYPES
