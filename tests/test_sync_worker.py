"""The sync worker: downlink and hooks, commands, Retry-After, retention, restart, its thread, the CLI."""

import json
import random
import subprocess
import sys
import threading

import numpy as np
from sync_helpers import make_device, sync_settings

from kiosk.storage import db, outbox, people, seal, sync_state
from kiosk.storage.db import get_meta
from kiosk.sync import keys, protocol
from kiosk.sync.client import SyncClient
from kiosk.sync.worker import SyncHooks, SyncWorker, status


class Recorder:
    """Collects what the hooks were told."""

    def __init__(self):
        self.faces, self.fingers, self.settings, self.doors = [], [], [], []

    def hooks(self):
        return SyncHooks(on_faces_changed=self.faces.append, on_fingers_changed=self.fingers.append,
                         on_settings_changed=self.settings.append,
                         commands={"open_door": lambda args: self.doors.append(args) or {"opened_s": args["seconds"]}})


def test_delta_download_applies_people_templates_settings_and_revocations(server, tmp_path):
    key = seal.DataKey.create(tmp_path / "data.key")
    recorder = Recorder()
    device = make_device(tmp_path, server, data_key=key, hooks=recorder.hooks(), face_model="sface_int8",
                         finger_sensor="R307", settings=sync_settings(delta_page_size=3))
    rng = np.random.default_rng(0)
    vectors = {f"p{n}": rng.standard_normal((2, 128)).astype(np.float32) for n in range(5)}
    for person_id, vecs in vectors.items():
        server.add_person(person_id, name=f"Person {person_id}")
        server.set_face_templates(person_id, "sface_int8", vecs)
    server.set_face_templates("p0", "other_model", [np.ones(64)])  # not this kiosk's embedder
    server.set_finger_templates("p1", "R307", [(7, b"\x01" * 512), (8, b"\x02" * 512)])
    server.set_settings({"attendance.repeat_guard_s": 120})
    device.drain()
    assert people.count_people(device.database) == 5
    gallery = people.face_templates(device.database, key, "sface_int8")
    assert len(gallery) == 10
    np.testing.assert_array_equal(np.stack([v for pid, v in gallery if pid == "p0"]), vectors["p0"])
    assert people.face_templates(device.database, key, "other_model") == []
    assert people.finger_templates(device.database, key, "R307") == [("p1", 7, b"\x01" * 512), ("p1", 8, b"\x02" * 512)]
    assert set().union(*recorder.faces) == set(vectors)
    assert recorder.fingers == [{"p1"}]
    assert recorder.settings == [{"attendance.repeat_guard_s": 120}]
    assert get_meta(device.database, sync_state.SERVER_SETTINGS_KEY) == {"attendance.repeat_guard_s": 120}
    # changes after the cursor only
    server.revoke("p1", reason="left the company")
    server.remove_person("p4")
    server.set_face_templates("p2", "sface_int8", [])
    device.worker.run_once()
    assert people.get_person(device.database, "p4") is None
    assert people.get_person(device.database, "p1")["active"] == 0
    assert sync_state.is_revoked(device.database, "p1")
    assert people.finger_templates(device.database, key, "R307") == []
    assert {pid for pid, _ in people.face_templates(device.database, key, "sface_int8")} == {"p0", "p3"}
    assert recorder.faces[-1] >= {"p1", "p2", "p4"}


def test_a_person_deactivated_centrally_leaves_the_gallery_and_comes_back_when_reactivated(server, tmp_path):
    from kiosk.app import refresh_gallery
    from kiosk.models.gallery import Gallery

    key = seal.DataKey.create(tmp_path / "data.key")
    fingers, running = [], {}
    hooks = SyncHooks(on_faces_changed=lambda ids: refresh_gallery(running["gallery"], device.database, key, ids),
                      on_fingers_changed=fingers.append)
    device = make_device(tmp_path, server, data_key=key, hooks=hooks, face_model="sface_int8", finger_sensor="R307")
    rng = np.random.default_rng(1)
    for person_id in ("p1", "p2"):
        server.add_person(person_id)
        server.set_face_templates(person_id, "sface_int8", rng.standard_normal((2, 16)).astype(np.float32))
    server.set_finger_templates("p1", "R307", [(4, b"\x01" * 512)])
    running["gallery"] = Gallery.load(device.database, key, "sface_int8", dim=16)  # the kiosk starts
    device.drain()
    assert set(running["gallery"].person_ids()) == {"p1", "p2"}

    server.add_person("p1", active=False)  # left, or on leave: their templates stay on the device
    device.worker.run_once()
    assert people.get_person(device.database, "p1")["active"] == 0
    assert set(running["gallery"].person_ids()) == {"p2"}
    assert fingers[-1] == {"p1"}  # the sensor library is reconciled for them too

    server.add_person("p1", active=True)  # back: by face again without a restart
    device.worker.run_once()
    assert set(running["gallery"].person_ids()) == {"p1", "p2"}
    assert fingers[-1] == {"p1"}


def test_a_face_template_the_gallery_cannot_hold_is_skipped_and_the_kiosk_still_starts(server, tmp_path):
    # a zero vector, or one of another size than the model's, used to be stored: the refresh hook
    # failed half way and the next start (Gallery.load) raised, so the kiosk did not come up
    from kiosk.app import refresh_gallery
    from kiosk.models.gallery import Gallery

    key = seal.DataKey.create(tmp_path / "data.key")
    running = {}
    hooks = SyncHooks(on_faces_changed=lambda ids: refresh_gallery(running["gallery"], device.database, key, ids))
    device = make_device(tmp_path, server, data_key=key, hooks=hooks, face_model="sface_int8")
    rng = np.random.default_rng(2)
    good = {p: rng.standard_normal((2, 16)).astype(np.float32) for p in ("p1", "p2", "p3", "p4")}
    for person_id, vectors in good.items():
        server.add_person(person_id)
        server.set_face_templates(person_id, "sface_int8", vectors)
    running["gallery"] = Gallery.load(device.database, key, "sface_int8", dim=16)
    device.drain()
    assert set(running["gallery"].person_ids()) == set(good)

    server.set_face_templates("p1", "sface_int8", [np.zeros(16)])
    server.set_face_templates("p2", "sface_int8", [rng.standard_normal(16), rng.standard_normal(8)])
    server.set_face_templates("p3", "sface_int8", [rng.standard_normal(8)])
    server.set_face_templates("p4", "sface_int8", [rng.standard_normal(16)])  # a good change beside them
    device.worker.run_once()
    assert status(device.database)["state"] == "ok"
    assert set(running["gallery"].person_ids()) == set(good)
    restarted = Gallery.load(device.database, key, "sface_int8", dim=16)  # the kiosk starts again
    assert set(restarted.person_ids()) == set(good)
    kept = {p: np.stack([v for q, v in people.face_templates(device.database, key, "sface_int8") if q == p])
            for p in good}
    for person_id in ("p1", "p2", "p3"):  # the set on the device stays as it was
        np.testing.assert_array_equal(kept[person_id], good[person_id])
    assert len(kept["p4"]) == 1


def test_a_malformed_change_is_skipped_and_the_changes_after_it_still_arrive(server, tmp_path):
    # one bad record on the server used to roll every download back at the same change, for ever:
    # no new people, templates or revocations reached the kiosk
    key = seal.DataKey.create(tmp_path / "data.key")
    device = make_device(tmp_path, server, data_key=key, finger_sensor="R307")
    server.add_person("p1")
    server.add_person("p3")
    server.set_finger_templates("p1", "R307", [(3, b"\x01" * 512)])
    device.worker.run_once()
    with server.store.lock:
        server.store.add_change("finger_templates", {"person_id": "p1", "sensor_model": "R307",
                                                     "templates": [{"slot": 4, "template": protocol.b64(b"\x02" * 512)},
                                                                   {"slot": 5, "template": "not base64!"}]},
                                model="R307", now=0.0)
        server.store.add_change("person", {"op": "upsert", "person": {"name": "no id"}}, now=0.0)
    server.add_person("p2")
    server.revoke("p3", reason="left")
    device.worker.run_once()
    assert status(device.database)["state"] == "ok"
    assert people.get_person(device.database, "p2") is not None
    assert sync_state.is_revoked(device.database, "p3")
    # none of the bad change was applied: p1's set stays as it was
    assert people.finger_templates(device.database, key, "R307") == [("p1", 3, b"\x01" * 512)]


def test_people_deleted_centrally_take_their_queued_enrolment_with_them(server, tmp_path):
    from kiosk.storage import enrolment

    key = seal.DataKey.create(tmp_path / "data.key")
    # one record a cycle: the download comes before the kiosk's enrolments are all uploaded
    device = make_device(tmp_path, server, data_key=key,
                         settings=sync_settings(batch_size=1, max_batch_size=1, max_batches_per_cycle=1))
    server_public = protocol.public_key_hex(server.server_private_key)
    for n, person_id in enumerate(("a", "gone", "revoked", "purged")):
        enrolment.enrol_person(device.database, key, person_id=person_id, name="N", fingers=[("R307", n, b"\x5a" * 64)],
                               server_key=server_public, now=device.clock.time())
    server.remove_person("gone")
    server.revoke("revoked", reason="left")
    server.queue_command(device.device_id, "purge_person", {"person_id": "purged"})
    device.worker.run_once()
    assert [p["person_id"] for p in server.enrolled_people()] == ["a"]
    assert people.get_person(device.database, "gone") is None
    device.drain()
    assert [p["person_id"] for p in server.enrolled_people()] == ["a"]  # their templates never left the kiosk
    assert sync_state.pending_stats(device.database)["pending"] == 0
    left = device.database.execute("SELECT json_extract(payload, '$.person_id') FROM outbox WHERE kind = ?",
                                   [enrolment.ENROLLED_KIND]).fetchall()
    assert not {row[0] for row in left} & {"gone", "revoked", "purged"}


def test_delta_page_is_atomic_with_its_cursor(server, tmp_path):
    """A template for a person the kiosk cannot seal (no data key) rolls the whole download back."""
    device = make_device(tmp_path, server, data_key=None)
    server.add_person("p1")
    server.set_face_templates("p1", "sface_int8", [np.ones(8)])
    device.worker.run_once()
    assert status(device.database)["state"] == "error"
    assert people.count_people(device.database) == 0
    assert get_meta(device.database, "sync.delta_cursor") is None


def test_a_server_that_says_more_without_moving_the_cursor_is_not_asked_again_at_once(server, tmp_path):
    # the same page used to be fetched max_pages times a cycle and the next cycle started at once,
    # for ever: the kiosk hammered the server and its CPU
    device = make_device(tmp_path, server)
    server.add_person("p1")
    real_delta, asked = device.client.delta, []

    def stuck(*, cursor, **options):
        asked.append(cursor)
        return {**real_delta(cursor=cursor, **options), "cursor": cursor, "more": True}

    device.client.delta = stuck
    delay = device.worker.run_once()
    assert asked == [""]
    assert delay == device.worker.settings.interval_s
    assert people.get_person(device.database, "p1") is not None


def test_commands_run_once_and_report_results(server, tmp_path):
    key = seal.DataKey.create(tmp_path / "data.key")
    recorder = Recorder()
    device = make_device(tmp_path, server, data_key=key, hooks=recorder.hooks())
    server.add_person("p9")
    server.set_face_templates("p9", "sface_int8", [np.ones(8)])
    device.drain()
    door = server.queue_command(device.device_id, "open_door", {"seconds": 3})
    purge = server.queue_command(device.device_id, "purge_person", {"person_id": "p9"})
    reboot = server.queue_command(device.device_id, "reboot")
    expired = server.queue_command(device.device_id, "sync_now", ttl_s=-5)
    device.worker.run_once()
    assert recorder.doors == [{"seconds": 3.0, "door": 1}]  # checked and bounded by the command path
    assert server.command(door)["status"] == "done" and server.command(door)["detail"] == {"opened_s": 3}
    assert server.command(purge)["status"] == "done"
    assert server.command(purge)["detail"]["face_templates"] == 1
    assert people.get_person(device.database, "p9") is None
    assert recorder.faces[-1] == {"p9"}
    assert server.command(reboot)["status"] == "unsupported"
    assert server.command(expired)["status"] == "expired"


def test_command_result_lost_is_reported_again_without_running_twice(server, tmp_path):
    recorder = Recorder()
    device = make_device(tmp_path, server, hooks=recorder.hooks())
    door = server.queue_command(device.device_id, "open_door", {"seconds": 1})
    # the GET of commands succeeds, the result POST is lost: the command ran but the server does not know
    real_result = device.client.command_result
    calls = []

    def lose_first(command_id, **kw):
        calls.append(command_id)
        if len(calls) == 1:
            from kiosk.sync.client import ServerUnavailableError

            raise ServerUnavailableError("lost")
        return real_result(command_id, **kw)

    device.client.command_result = lose_first
    device.worker.run_once()
    device.clock.advance(60)
    device.worker.run_once()
    assert recorder.doors == [{"seconds": 1.0, "door": 1}]
    assert server.command(door)["status"] == "done"


def test_rotate_key_switches_keys_on_both_sides(server, tmp_path):
    device = make_device(tmp_path, server)
    old = protocol.public_key_hex(device.key)
    command = server.queue_command(device.device_id, "rotate_key")
    device.worker.run_once()
    assert server.command(command)["status"] == "done"
    new = protocol.public_key_hex(keys.load_device_key(device.key_path))
    assert new != old and protocol.public_key_hex(device.client.device_key) == new
    device.record(3)
    device.worker.run_once()
    assert len(server.events()) == 3
    assert server.devices()[0]["public_key"] == new  # the old key is retired once the new one is used
    device.client.device_key = device.key
    device.record(1, start=3)
    device.worker.run_once()
    assert status(device.database)["last_rejection"]["reason"] == protocol.BAD_SIGNATURE


def test_interrupted_rotation_is_finished_at_the_next_start(server, tmp_path):
    device = make_device(tmp_path, server)
    pending = keys.load_or_create_device_key(keys.next_key_path(device.key_path))
    device.record(2)
    device.worker.run_once()
    assert not keys.next_key_path(device.key_path).exists()
    assert protocol.public_key_hex(keys.load_device_key(device.key_path)) == protocol.public_key_hex(pending)
    assert len(server.events()) == 2


def test_retry_after_is_honoured_and_backoff_grows(server, tmp_path):
    device = make_device(tmp_path, server, settings=sync_settings(min_backoff_s=0.5, max_backoff_s=8.0))
    device.record(5)
    server.set_fault("unavailable", retry_after_s=42, times=1)
    delay = device.worker.run_once()
    assert delay == 42
    current = status(device.database)
    assert current["state"] == "offline" and "503" in current["last_error"] and current["pending"] == 5
    server.set_fault("error500")
    delays = [device.worker.run_once() for _ in range(6)]
    assert delays[0] <= 2.0 and max(delays) <= 8.0 and delays[-1] >= 4.0
    assert status(device.database)["consecutive_failures"] == 7
    server.clear_fault()
    assert device.worker.run_once() in (0.0, device.worker.settings.interval_s)
    assert status(device.database)["state"] == "ok" and len(server.events()) == 5


def test_outage_then_recovery(server, tmp_path):
    device = make_device(tmp_path, server)
    device.record(8)
    server.set_fault("outage")
    device.worker.run_once()
    current = status(device.database)
    assert current["state"] == "offline" and current["pending"] == 8
    assert current["oldest_pending"] is not None and current["last_error"]
    server.clear_fault()
    device.drain()
    assert status(device.database)["pending"] == 0 and len(server.events()) == 8


def test_acknowledged_records_are_kept_for_the_retention_window(server, tmp_path):
    device = make_device(tmp_path, server, settings=sync_settings(retention_days=1.0))
    device.record(4)
    device.worker.run_once()
    assert outbox.stats(device.database) == {"pending": 0, "oldest_pending": None, "acknowledged_kept": 4}
    device.clock.advance(3600)
    device.worker.run_once()
    assert outbox.stats(device.database)["acknowledged_kept"] == 4
    device.clock.advance(86400)
    device.worker.run_once()
    assert outbox.stats(device.database)["acknowledged_kept"] == 0


def test_a_restart_resumes_where_it_stopped(server, tmp_path):
    device = make_device(tmp_path, server, settings=sync_settings(batch_size=10, max_batch_size=10,
                                                                  max_batches_per_cycle=2))
    device.record(50)
    device.worker.run_once()
    assert len(server.events()) == 20
    server.add_person("p1")
    device.client.close()
    device.database.conn.close()
    # a new process: new connection, new client, new worker, same files
    database = db.open_db(device.path)
    assert status(database)["pending"] == 30
    client = SyncClient(server_url=server.url, server_key=device.server_key, device_id=device.device_id,
                        device_key=keys.load_device_key(device.key_path), clock=device.clock)
    worker = SyncWorker(database, client, settings=device.worker.settings, clock=device.clock, rng=random.Random(2))
    for _ in range(5):
        worker.run_once()
    assert status(database)["pending"] == 0
    assert [e["seq"] for e in server.events()] == list(range(1, 51))
    assert people.get_person(database, "p1") is not None


def test_worker_thread_drains_and_stops(server, tmp_path):
    from kiosk.clock import SystemClock

    device = make_device(tmp_path, server)
    device.record(300)
    done = threading.Event()
    acked = []

    def on_ack(ids):
        acked.extend(ids)
        if len(acked) >= 300:
            done.set()

    client = SyncClient(server_url=server.url, server_key=device.server_key, device_id=device.device_id,
                        device_key=device.key, clock=SystemClock())
    worker = SyncWorker(db.open_db(device.path), client, settings=sync_settings(), clock=SystemClock(),
                        on_acknowledged=on_ack)
    with worker.start():
        assert done.wait(30), "the worker thread did not upload the backlog"
        worker.sync_now()
    assert worker._thread is None
    assert len(server.events()) == 300


def _kiosk(args, tmp_path, env_extra):
    import os

    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=tmp_path)


def test_cli_sync_now_and_status(server, tmp_path):
    device = make_device(tmp_path, server)
    device.record(25)
    device.database.conn.close()
    env = {"KIOSK_SYNC__SERVER_URL": server.url, "KIOSK_SYNC__DEVICE_ID": device.device_id,
           "KIOSK_SECURITY__DEVICE_KEY_FILE": str(device.key_path),
           "KIOSK_SECURITY__SERVER_SIGNING_KEY": f'"{device.server_key}"',
           "KIOSK_SECURITY__DATA_KEY_FILE": str(tmp_path / "none.key"), "KIOSK_STORAGE__DATA_DIR": str(tmp_path)}
    before = _kiosk(["sync", "status", "--db", str(device.path)], tmp_path, env)
    assert before.returncode == 0 and "pending records:  25" in before.stdout
    server.set_fault("outage")
    offline = _kiosk(["sync", "--now", "--db", str(device.path)], tmp_path, env)
    assert offline.returncode == 1 and "offline" in offline.stdout
    server.clear_fault()
    now = _kiosk(["sync", "--now", "--db", str(device.path), "--json"], tmp_path, env)
    assert now.returncode == 0, now.stderr
    assert json.loads(now.stdout)["pending"] == 0
    after = _kiosk(["sync", "status", "--json", "--db", str(device.path)], tmp_path, env)
    figures = json.loads(after.stdout)
    assert figures["state"] == "ok" and figures["last_success_at"] and "Connection" in figures["last_error"]
    assert len(server.events()) == 25
    unregistered = _kiosk(["sync", "--now", "--db", str(device.path)], tmp_path,
                          dict(env, KIOSK_SYNC__DEVICE_ID=""))
    assert unregistered.returncode == 2 and "not registered" in unregistered.stderr


def test_lost_answer_is_resent_as_duplicates_and_stray_acks_are_ignored(server, tmp_path):
    acked = []
    device = make_device(tmp_path, server, on_acknowledged=acked.extend)
    created = device.record(40)
    server.set_fault("lost_ack", times=1)
    device.worker.run_once()
    assert status(device.database)["pending"] == 40 and len(server.events()) == 40  # stored, answer lost
    device.clock.advance(5)
    server.set_fault("duplicate_ack", times=1)
    device.worker.run_once()
    # every result came twice plus an ack for a record this batch did not carry: each id acked once
    assert sorted(acked) == sorted(e.id for e in created)
    assert status(device.database)["pending"] == 0
    assert server.stats()["duplicate_results"] == 40 and len(server.events()) == 40
