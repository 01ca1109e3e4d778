"""Voice prints come down from the server simulator sealed, replaced, removed; hostile ones are refused."""

import base64

import numpy as np
import pytest
from sync_helpers import make_device

from kiosk.storage import people, seal
from kiosk.sync import protocol

MODEL = "campplus-fp16-v1"


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


# --- up: a voice print enrolled at the kiosk travels sealed in the person_enrolled record -------

def test_a_voice_print_enrolled_at_the_kiosk_reaches_the_server_sealed_and_deletion_follows(server, tmp_path):
    import json

    from kiosk.storage import enrolment, outbox

    key = seal.DataKey.create(tmp_path / "data.key")
    device = make_device(tmp_path, server, data_key=key)
    server_public = protocol.public_key_hex(server.server_private_key)
    result = enrolment.enrol_person(device.database, key, person_id="v1", name="Voice Only", voice=[(MODEL, unit(7))],
                                    server_key=server_public, now=device.clock.time())
    assert (result.faces, result.fingers, result.voices) == (0, 0, 1)
    np.testing.assert_allclose(people.voice_template(device.database, key, "v1", MODEL), unit(7))
    [record] = outbox.pending(device.database)
    assert record.payload["voice_count"] == 1
    clear = base64.b64encode(unit(7).astype("<f4").tobytes()).decode()
    assert clear not in json.dumps(record.payload)  # sealed to the server, never in clear
    device.drain()
    [received] = server.enrolled_people()
    assert received["person_id"] == "v1" and [v["model_id"] for v in received["voices"]] == [MODEL]
    np.testing.assert_allclose(np.array(received["voices"][0]["vector"], dtype=np.float32), unit(7))

    deleted = enrolment.delete_person(device.database, "v1", now=device.clock.time())
    assert not people.has_voice_template(device.database, "v1") and deleted.person_id == "v1"
    assert list(device.database.query("SELECT * FROM voice_templates")) == []
    device.drain()
    assert [d["person_id"] for d in server.deleted_people()] == ["v1"]


def test_the_server_rejects_a_record_whose_voice_count_lies(server, tmp_path):
    import json

    from kiosk.storage import enrolment, outbox, sync_state

    key = seal.DataKey.create(tmp_path / "data.key")
    device = make_device(tmp_path, server, data_key=key)
    made = enrolment.enrol_person(device.database, key, person_id="v2", name="V", voice=[(MODEL, unit(8))],
                                  server_key=protocol.public_key_hex(server.server_private_key),
                                  now=device.clock.time())
    row = outbox.pending(device.database)[-1]
    device.database.execute("UPDATE outbox SET payload = ? WHERE record_id = ?",
                            [json.dumps(dict(row.payload, voice_count=0)), made.record_id])
    device.drain()
    assert server.enrolled_people() == [] and sync_state.pending_stats(device.database)["rejected"] == 1


@pytest.mark.parametrize("voice,message", [
    ([(MODEL, np.full(192, np.nan, np.float32))], "NaN"),
    ([(MODEL, np.zeros(192, np.float32))], "zeros"),
    ([(MODEL, np.ones(1025, np.float32))], "at most 1024"),
    ([(MODEL, unit(1)), (MODEL, unit(2))], "one per model"),
])
def test_bad_voice_prints_are_refused_at_enrolment_and_write_nothing(tmp_path, voice, message):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from kiosk.errors import StorageError
    from kiosk.storage import db, enrolment

    key = seal.DataKey.create(tmp_path / "data.key")
    database = db.open_db(":memory:")
    with pytest.raises(StorageError, match=message):
        enrolment.enrol_person(database, key, person_id="v3", name="V", voice=voice, now=1.0,
                               server_key=protocol.public_key_hex(X25519PrivateKey.generate()))
    assert people.count_people(database) == 0


def test_a_revoked_person_loses_their_voice_print(server, tmp_path):
    from kiosk.storage import sync_state

    key = seal.DataKey.create(tmp_path / "data.key")
    device = make_device(tmp_path, server, data_key=key)
    server.add_person("p9", name="Nine")
    server.set_voice_template("p9", MODEL, unit(9))
    device.drain()
    assert people.has_voice_template(device.database, "p9")
    assert sync_state.purge_person(device.database, "p9", keep_person=True)["voice_templates"] == 1
    assert not people.has_voice_template(device.database, "p9")
