"""The central server simulator's state, in SQLite: devices, records, changes, commands, activations.

All methods are called under one lock by the HTTP handler threads. A refusal is raised as
``Refusal(http_status, code, message)`` and becomes a JSON error answer.
"""

import hashlib
import json
import logging
import secrets
import sqlite3
import threading
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from kiosk_sim import server_people, server_services
from kiosk_sim.server_batches import (check_batch, event_content_problem, event_problem, event_text,
                                      record_result)
from kiosk_sim.server_refusal import Refusal

from kiosk.digits import EASTERN_TO_WESTERN
from kiosk.storage.chain import GENESIS
from kiosk.sync import protocol

log = logging.getLogger(__name__)

MAX_DELTA_LIMIT = 5000  # as the schema says
NONCE_KEEP_S = 2 * protocol.MAX_SKEW_S
CODE_TTL_S = 300.0
CODE_ATTEMPTS = 3

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS tokens (token_hash TEXT PRIMARY KEY, created_at REAL, expires_at REAL,
        device_id TEXT, public_key TEXT)""",
    """CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, public_key TEXT NOT NULL,
        next_public_key TEXT, info TEXT, registered_at REAL, revoked INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS records (record_id TEXT PRIMARY KEY, device_id TEXT NOT NULL,
        kind TEXT NOT NULL, seq INTEGER, hash TEXT, payload TEXT NOT NULL, batch_id TEXT, stored_at REAL)""",
    "CREATE INDEX IF NOT EXISTS records_device_seq ON records(device_id, kind, seq)",
    """CREATE TABLE IF NOT EXISTS refused_records (record_id TEXT, device_id TEXT, reason TEXT, at REAL)""",
    "CREATE TABLE IF NOT EXISTS chain_heads (device_id TEXT PRIMARY KEY, seq INTEGER, hash TEXT)",
    """CREATE TABLE IF NOT EXISTS checkpoints (device_id TEXT, seq INTEGER, hash TEXT NOT NULL,
        signature TEXT NOT NULL, received_at REAL, PRIMARY KEY (device_id, seq))""",
    """CREATE TABLE IF NOT EXISTS batches (batch_id TEXT PRIMARY KEY, device_id TEXT, digest TEXT,
        received_at REAL, results TEXT)""",
    "CREATE TABLE IF NOT EXISTS nonces (device_id TEXT, nonce TEXT, at REAL, PRIMARY KEY (device_id, nonce))",
    """CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL,
        model TEXT, body TEXT NOT NULL, created_at REAL)""",
    """CREATE TABLE IF NOT EXISTS commands (id TEXT PRIMARY KEY, device_id TEXT, kind TEXT, args TEXT,
        issued_at REAL, expires_at REAL, status TEXT, detail TEXT, finished_at REAL)""",
    """CREATE TABLE IF NOT EXISTS activations (activation_id TEXT PRIMARY KEY, request_id TEXT UNIQUE,
        device_id TEXT, national_id TEXT, code_hash TEXT, expires_at REAL, attempts_left INTEGER,
        verified_at REAL)""",
)


class ServerStore:
    """The simulator's database and the protocol rules that need it."""

    def __init__(self, path, *, device_settings=None, signing_key=None):
        self.path = str(path)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        # as a real server must: an acknowledged record is on disk before the answer says "stored"
        self._conn.execute("PRAGMA synchronous = FULL")
        self.lock = threading.RLock()
        for statement in SCHEMA + server_people.SCHEMA:
            self._conn.execute(statement)
        self.device_settings = device_settings if device_settings is not None else \
            {"sync": {"interval_s": 30.0, "batch_size": 500}}
        self.server_key = self._server_key()
        # a given key (a test's impostor server) is used, not stored: the database keeps the real one
        self.signing_key = signing_key if signing_key is not None else self._signing_key()
        self.duplicate_results = 0
        self.services = None  # the citizen services (kiosk_sim.server_services.ServiceDesk), set by the server

    def close(self):
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- helpers ---------------------------------------------------------------------------------

    def _one(self, sql, params=()):
        return self._conn.execute(sql, params).fetchone()

    def _tx(self):
        return _Transaction(self._conn)

    def _server_key(self):
        row = self._one("SELECT value FROM meta WHERE name = 'x25519_private'")
        if row:
            return X25519PrivateKey.from_private_bytes(bytes.fromhex(json.loads(row[0])))
        key = X25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
        self._conn.execute("INSERT INTO meta (name, value) VALUES ('x25519_private', ?)", [json.dumps(raw)])
        return key

    def _signing_key(self):
        """The Ed25519 key every answer is signed with (made once, kept in the database)."""
        row = self._one("SELECT value FROM meta WHERE name = 'ed25519_signing_private'")
        if row:
            return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(json.loads(row[0])))
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex()
        self._conn.execute("INSERT INTO meta (name, value) VALUES ('ed25519_signing_private', ?)", [json.dumps(raw)])
        return key

    @property
    def server_public_key_hex(self):
        return protocol.public_key_hex(self.server_key)

    @property
    def signing_public_key_hex(self):
        return protocol.public_key_hex(self.signing_key)

    # --- registration and keys -------------------------------------------------------------------

    def issue_token(self, *, ttl_s, now):
        token = secrets.token_urlsafe(24)
        self._conn.execute("INSERT INTO tokens (token_hash, created_at, expires_at) VALUES (?, ?, ?)",
                           [_sha(token), now, now + ttl_s])
        return token

    def register(self, body, *, now):
        try:
            token, key_text, proof = str(body["token"]), str(body["public_key"]), protocol.unb64(body["proof"])
            protocol.public_key_from_hex(key_text)
        except (KeyError, TypeError, ValueError) as e:
            raise Refusal(400, protocol.MALFORMED, f"registration needs token, public_key and proof ({e})") from None
        if not protocol.verify(key_text, proof, protocol.registration_message(token, key_text)):
            raise Refusal(401, protocol.BAD_SIGNATURE, "the proof is not signed by the enrolled key")
        row = self._one("SELECT expires_at, device_id, public_key FROM tokens WHERE token_hash = ?", [_sha(token)])
        if row is None:
            raise Refusal(403, "token_unknown", "this enrolment token was never issued")
        expires_at, device_id, used_key = row
        if device_id is not None:
            if used_key == key_text:
                return device_id  # the same device asking again (its answer was lost)
            raise Refusal(403, "token_used", "this enrolment token was already used by another device")
        if now > expires_at:
            raise Refusal(403, "token_expired", "this enrolment token has expired")
        device_id = "kiosk-" + uuid.uuid4().hex[:12]
        with self._tx():
            self._conn.execute("INSERT INTO devices (device_id, public_key, info, registered_at) VALUES (?, ?, ?, ?)",
                               [device_id, key_text, json.dumps(body.get("info") or {}), now])
            self._conn.execute("UPDATE tokens SET device_id = ?, public_key = ? WHERE token_hash = ?",
                               [device_id, key_text, _sha(token)])
        log.info("registered device %s", device_id)
        return device_id

    def authenticate(self, headers, method, path, raw, *, now, record_nonce=True):
        """Check a signed request; return the device id or raise Refusal.

        ``record_nonce=False``: the nonce is only checked unused; the caller records it
        (``store_batch(nonce=)`` in the transaction that stores the batch, or ``record_nonce``),
        under the same hold of ``lock``, so a batch costs one commit (one fsync), not two.
        """
        try:
            signed = protocol.parse_signature_headers(headers)
        except ValueError as e:
            raise Refusal(401, protocol.BAD_SIGNATURE, str(e)) from None
        row = self._one("SELECT public_key, next_public_key, revoked FROM devices WHERE device_id = ?",
                        [signed.device_id])
        if row is None:
            raise Refusal(401, protocol.UNKNOWN_DEVICE, f"device {signed.device_id!r} is not registered")
        public_key, next_key, revoked = row
        if revoked:
            raise Refusal(403, "device_revoked", f"device {signed.device_id} has been revoked")
        if not protocol.verify_request(public_key, headers, method, path, raw):
            if not (next_key and protocol.verify_request(next_key, headers, method, path, raw)):
                raise Refusal(401, protocol.BAD_SIGNATURE, "the signature does not verify with the device's key")
            # the device has switched to its rotated key: the old one is retired now
            self._conn.execute("UPDATE devices SET public_key = ?, next_public_key = NULL WHERE device_id = ?",
                               [next_key, signed.device_id])
            log.info("device %s now signs with its rotated key", signed.device_id)
        if abs(signed.timestamp - now) > protocol.MAX_SKEW_S:
            raise Refusal(401, protocol.STALE_TIMESTAMP,
                          f"timestamp is {signed.timestamp - now:+.0f} s from server time "
                          f"(allowed +-{protocol.MAX_SKEW_S:.0f} s)")
        if record_nonce:
            self.record_nonce(signed.device_id, signed.nonce, now=now)
        elif self._one("SELECT 1 FROM nonces WHERE device_id = ? AND nonce = ?", [signed.device_id, signed.nonce]):
            raise _replayed()
        return signed.device_id

    def record_nonce(self, device_id, nonce, *, now):
        """Remember a request's nonce (Refusal if it was seen); now and then forget expired ones."""
        try:
            self._conn.execute("INSERT INTO nonces (device_id, nonce, at) VALUES (?, ?, ?)", [device_id, nonce, now])
        except sqlite3.IntegrityError:
            raise _replayed() from None
        if secrets.randbelow(200) == 0:
            self._conn.execute("DELETE FROM nonces WHERE at < ?", [now - NONCE_KEEP_S])

    def rotate_key(self, device_id, body):
        try:
            key_text, proof = str(body["public_key"]), protocol.unb64(body["proof"])
            protocol.public_key_from_hex(key_text)
        except (KeyError, TypeError, ValueError) as e:
            raise Refusal(400, protocol.MALFORMED, f"rotation needs public_key and proof ({e})") from None
        if not protocol.verify(key_text, proof, protocol.rotation_message(device_id, key_text)):
            raise Refusal(401, protocol.BAD_SIGNATURE, "the rotation proof is not signed by the new key")
        self._conn.execute("UPDATE devices SET next_public_key = ? WHERE device_id = ?", [key_text, device_id])
        return {"accepted": True}

    def devices(self):
        rows = self._conn.execute("SELECT device_id, public_key, next_public_key, revoked FROM devices")
        return [dict(zip(("device_id", "public_key", "next_public_key", "revoked"), r)) for r in rows]

    # --- batches ---------------------------------------------------------------------------------

    def store_batch(self, device_id, body, *, now, nonce=None):
        """Store a batch; return the per-record results (raises Refusal for a refused batch).

        ``nonce``: the request's nonce, recorded in the transaction that stores the batch.
        """
        batch_id, records = check_batch(device_id, body)
        # the stored data of records other than events (an event's is made from its canonical JSON below)
        texts = {index: protocol.dumps(r["data"]) for index, r in enumerate(records) if r["kind"] != "event"}
        digest = protocol.batch_digest(body, data_texts=texts)
        seen = self._one("SELECT device_id, digest FROM batches WHERE batch_id = ?", [batch_id])
        if seen is not None and (seen[0] != device_id or seen[1] != digest):
            raise Refusal(409, protocol.BATCH_ID_REUSED, f"batch {batch_id} was already received with other records")
        stored = self._stored_hashes([r["id"] for r in records])
        head = self._one("SELECT seq, hash FROM chain_heads WHERE device_id = ?", [device_id]) or (0, GENESIS)
        head_seq, head_hash = head
        results, rows, refused, person_rows = [], [], [], []
        for index, record in enumerate(records):
            record_id, kind, data = record["id"], record["kind"], record["data"]
            if record_id in stored:
                if kind == "event" and stored[record_id] not in (None, data.get("hash")):
                    results.append(record_result(record_id, protocol.REJECTED, "conflicts with the stored record of this id"))
                else:
                    results.append(record_result(record_id, protocol.DUPLICATE))
                    self.duplicate_results += 1
                continue
            if kind == "event":
                problem, canonical = event_problem(record_id, data)
                if problem:
                    raise Refusal(422, protocol.BROKEN_CHAIN, problem)
                if data["prev_hash"] != head_hash or data["seq"] != head_seq + 1:
                    raise Refusal(422, protocol.BROKEN_CHAIN,
                                  f"record {record_id} (seq {data['seq']}) does not continue the chain: the server "
                                  f"holds up to seq {head_seq} (hash {head_hash[:12]}...), the record links to "
                                  f"{str(data['prev_hash'])[:12]}...; a record was removed or altered")
                head_seq, head_hash = data["seq"], data["hash"]
                reason = event_content_problem(data)
                if reason:
                    refused.append((record_id, device_id, reason, now))
                    results.append(record_result(record_id, protocol.REJECTED, reason))
                    continue
                rows.append((record_id, device_id, kind, data["seq"], data["hash"], event_text(data, canonical),
                             batch_id, now))
            else:
                if kind in server_services.KINDS and self.services is not None:
                    try:
                        self.services.accept(device_id, record_id, data, now=now)
                    except server_services.Invalid as e:
                        refused.append((record_id, device_id, str(e), now))
                        results.append(record_result(record_id, protocol.REJECTED, str(e)))
                        continue
                if kind in server_people.KINDS:
                    try:
                        person_rows.append(server_people.check(kind, record_id, data, self.server_key))
                    except server_people.Invalid as e:
                        refused.append((record_id, device_id, str(e), now))
                        results.append(record_result(record_id, protocol.REJECTED, str(e)))
                        continue
                rows.append((record_id, device_id, kind, None, None, texts[index].decode(), batch_id, now))
            stored[record_id] = data.get("hash")
            results.append(record_result(record_id, protocol.STORED))
        claimed = body.get("chain_head")
        if claimed is not None and not isinstance(claimed, dict):
            raise Refusal(400, protocol.MALFORMED, "chain_head must be an object {seq, hash} or null")
        last_event = next((r["data"] for r in reversed(records) if r["kind"] == "event"), None)
        if claimed and last_event and (claimed.get("seq"), claimed.get("hash")) != (last_event["seq"], last_event["hash"]):
            raise Refusal(422, protocol.BROKEN_CHAIN, "chain_head does not name the batch's last event")
        checkpoint = self._check_checkpoint(device_id, body.get("checkpoint"), last_event, head_seq, head_hash)
        with self._tx():
            if nonce is not None:
                self.record_nonce(device_id, nonce, now=now)
            if checkpoint is not None:
                self._conn.execute("INSERT OR IGNORE INTO checkpoints VALUES (?, ?, ?, ?, ?)",
                                   [device_id, checkpoint[0], checkpoint[1], body["checkpoint"]["signature"], now])
            self._conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._conn.executemany("INSERT INTO refused_records VALUES (?, ?, ?, ?)", refused)
            server_people.store(self._conn, device_id, person_rows, now=now)
            if (head_seq, head_hash) != tuple(head):
                self._conn.execute("INSERT INTO chain_heads (device_id, seq, hash) VALUES (?, ?, ?) ON CONFLICT"
                                   "(device_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                                   [device_id, head_seq, head_hash])
            if seen is None:
                self._conn.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?)",
                                   [batch_id, device_id, digest, now, ""])
        return results

    def _check_checkpoint(self, device_id, checkpoint, last_event, head_seq, head_hash):
        """(seq, hash) of a batch's signed checkpoint once checked, None if it has none; raises Refusal.

        The checkpoint must be signed by the device key, name the batch's last event, and agree
        with every head this server has confirmed: a device whose chain was rewritten (one event
        changed, every later hash recomputed) cannot get another hash accepted for a seq it holds.
        """
        if checkpoint is None:
            return None
        try:
            seq, claimed_hash = protocol.parse_head(checkpoint)
        except ValueError as e:
            raise Refusal(400, protocol.MALFORMED, f"checkpoint: {e}") from None
        keys = self._one("SELECT public_key, next_public_key FROM devices WHERE device_id = ?", [device_id]) or ()
        if not any(key and protocol.verify_checkpoint(key, device_id, checkpoint) for key in keys):
            raise Refusal(401, protocol.BAD_SIGNATURE, "the chain checkpoint is not signed by this device's key")
        if last_event is not None and (seq, claimed_hash) != (last_event["seq"], last_event["hash"]):
            raise Refusal(422, protocol.BROKEN_CHAIN, "the checkpoint does not name the batch's last event")
        if seq > head_seq:
            raise Refusal(422, protocol.BROKEN_CHAIN, f"the checkpoint names seq {seq}, the server holds up to {head_seq}")
        known = self._one("SELECT hash FROM checkpoints WHERE device_id = ? AND seq = ?", [device_id, seq])
        stored = self._one("SELECT hash FROM records WHERE device_id = ? AND kind = 'event' AND seq = ?",
                           [device_id, seq])
        confirmed = head_hash if seq == head_seq else None
        for seen in (known and known[0], stored and stored[0], confirmed):
            if seen and seen != claimed_hash:
                raise Refusal(409, protocol.CHECKPOINT_CONFLICT,
                              f"checkpoint for seq {seq} has hash {claimed_hash[:12]}..., the server confirmed "
                              f"{seen[:12]}... for that seq: the device's chain was rewritten")
        return seq, claimed_hash

    def confirmed_head(self, device_id):
        """{seq, hash} of the last event of this device's chain the server holds, or None."""
        row = self._one("SELECT seq, hash FROM chain_heads WHERE device_id = ?", [device_id])
        return {"seq": row[0], "hash": row[1]} if row else None

    def checkpoints(self, device_id):
        """Signed checkpoints received from a device, oldest first."""
        rows = self._conn.execute("SELECT seq, hash, signature, received_at FROM checkpoints WHERE device_id = ? "
                                  "ORDER BY seq", [device_id])
        return [dict(zip(("seq", "hash", "signature", "received_at"), r)) for r in rows]

    def _stored_hashes(self, ids):
        found = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            marks = ",".join("?" * len(chunk))
            for record_id, digest in self._conn.execute(
                    f"SELECT record_id, hash FROM records WHERE record_id IN ({marks})", chunk):
                found[record_id] = digest
        return found

    def events(self, device_id=None):
        sql, params = "SELECT payload FROM records WHERE kind = 'event'", []
        if device_id:
            sql, params = sql + " AND device_id = ?", [device_id]
        return [json.loads(r[0]) for r in self._conn.execute(sql + " ORDER BY device_id, seq", params)]

    def records(self, kind=None):
        sql, params = "SELECT record_id, device_id, kind, payload FROM records", []
        if kind:
            sql, params = sql + " WHERE kind = ?", [kind]
        return [{"id": r[0], "device_id": r[1], "kind": r[2], "data": json.loads(r[3])}
                for r in self._conn.execute(sql + " ORDER BY rowid", params)]

    def enrolled_people(self):
        return server_people.enrolled(self._conn)

    def deleted_people(self):
        return server_people.deleted(self._conn)

    def record_count(self):
        return self._one("SELECT count(*) FROM records")[0]

    def refused(self):
        return [dict(zip(("record_id", "device_id", "reason", "at"), r))
                for r in self._conn.execute("SELECT * FROM refused_records")]

    # --- downlink --------------------------------------------------------------------------------

    def add_change(self, change_type, body, *, model=None, now):
        if change_type not in protocol.CHANGE_TYPES:
            raise ValueError(f"unknown change type {change_type!r}")
        cursor = self._conn.execute("INSERT INTO changes (type, model, body, created_at) VALUES (?, ?, ?, ?)",
                                    [change_type, model, json.dumps({"type": change_type, **body}), now])
        return cursor.lastrowid

    def changes_after(self, cursor, *, limit, face_model="", finger_sensor=""):
        try:
            after = int(cursor or 0)
            if not 0 <= after < 2 ** 63:
                raise ValueError
        except ValueError:
            raise Refusal(400, protocol.MALFORMED, f"cursor {str(cursor)[:40]!r} is not one this server issued") from None
        try:
            limit = int(limit)
            if not 1 <= limit <= MAX_DELTA_LIMIT:
                raise ValueError
        except ValueError:
            raise Refusal(400, protocol.MALFORMED,
                          f"limit {str(limit)[:40]!r} is not a whole number from 1 to {MAX_DELTA_LIMIT}") from None
        sql = "SELECT seq, type, model, body FROM changes WHERE seq > ?"
        params = [after]
        if face_model:
            sql += " AND (type != 'face_templates' OR model = ?)"
            params.append(face_model)
        if finger_sensor:
            sql += " AND (type != 'finger_templates' OR model = ?)"
            params.append(finger_sensor)
        rows = self._conn.execute(sql + " ORDER BY seq LIMIT ?", params + [limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1][0] if rows else after
        if not rows:
            last = max(after, 0)
        return {"changes": [json.loads(r[3]) for r in rows], "cursor": str(last), "more": more}

    # --- commands --------------------------------------------------------------------------------

    def queue_command(self, device_id, kind, args, *, ttl_s, now):
        if kind not in protocol.COMMAND_KINDS:
            raise ValueError(f"unknown command {kind!r} (known: {', '.join(protocol.COMMAND_KINDS)})")
        command_id = str(uuid.uuid4())
        self._conn.execute("INSERT INTO commands (id, device_id, kind, args, issued_at, expires_at, status) "
                           "VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                           [command_id, device_id, kind, protocol.dumps(args or {}).decode(), now, now + ttl_s])
        return command_id

    def pending_commands(self, device_id):
        rows = self._conn.execute("SELECT id, kind, args, issued_at, expires_at FROM commands "
                                  "WHERE device_id = ? AND status = 'pending' ORDER BY issued_at", [device_id])
        return [{"id": r[0], "kind": r[1], "args": json.loads(r[2]), "issued_at": r[3], "expires_at": r[4]}
                for r in rows]

    def command_result(self, device_id, command_id, body, *, now):
        status = body.get("status") if isinstance(body, dict) else None
        if status not in protocol.COMMAND_RESULTS:
            raise Refusal(400, protocol.MALFORMED, f"status must be one of {', '.join(protocol.COMMAND_RESULTS)}")
        row = self._one("SELECT device_id FROM commands WHERE id = ?", [command_id])
        if row is None or row[0] != device_id:
            raise Refusal(404, "unknown_command", f"no command {command_id} for this device")
        self._conn.execute("UPDATE commands SET status = ?, detail = ?, finished_at = ? WHERE id = ?",
                           [status, json.dumps(body.get("detail") or {}), now, command_id])
        return {"command_id": command_id, "status": status}

    def command(self, command_id):
        row = self._one("SELECT id, device_id, kind, args, status, detail FROM commands WHERE id = ?", [command_id])
        if row is None:
            return None
        return {"id": row[0], "device_id": row[1], "kind": row[2], "args": json.loads(row[3]), "status": row[4],
                "detail": json.loads(row[5]) if row[5] else None}

    # --- activation codes ------------------------------------------------------------------------

    def request_code(self, device_id, body, *, now):
        """Make a one-time code; returns (answer, code or None if this request was already answered)."""
        try:
            national_id = protocol.normalise_national_id(body.get("national_id", ""))
        except ValueError as e:
            raise Refusal(422, "invalid_national_id", str(e)) from None
        request_id = str(body.get("request_id") or uuid.uuid4())
        row = self._one("SELECT activation_id, expires_at, attempts_left FROM activations WHERE request_id = ?",
                        [request_id])
        if row is not None:
            return {"activation_id": row[0], "expires_at": row[1], "attempts_left": row[2],
                    "phone_hint": phone_for(national_id, masked=True)}, None
        code = f"{secrets.randbelow(10 ** 6):06d}"
        activation_id = str(uuid.uuid4())
        self._conn.execute("INSERT INTO activations VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                           [activation_id, request_id, device_id, national_id, _sha(activation_id + code),
                            now + CODE_TTL_S, CODE_ATTEMPTS])
        return {"activation_id": activation_id, "expires_at": now + CODE_TTL_S, "attempts_left": CODE_ATTEMPTS,
                "phone_hint": phone_for(national_id, masked=True)}, (code, national_id)

    def verify_code(self, device_id, body, *, now):
        activation_id, code = str(body.get("activation_id", "")), str(body.get("code", ""))
        code = code.translate(EASTERN_TO_WESTERN)
        row = self._one("SELECT device_id, code_hash, expires_at, attempts_left, verified_at FROM activations "
                        "WHERE activation_id = ?", [activation_id])
        if row is None or row[0] != device_id:
            raise Refusal(404, "unknown_activation", "no such activation request from this device")
        _, code_hash, expires_at, attempts_left, verified_at = row
        if verified_at is not None:
            raise Refusal(409, "code_used", "this code was already used")
        if now > expires_at:
            raise Refusal(410, "code_expired", "the code has expired: request a new one")
        if attempts_left <= 0:
            raise Refusal(403, "too_many_attempts", "too many wrong codes: request a new one")
        if secrets.compare_digest(code_hash, _sha(activation_id + code)):
            self._conn.execute("UPDATE activations SET verified_at = ? WHERE activation_id = ?", [now, activation_id])
            return {"verified": True, "activation_token": secrets.token_urlsafe(24)}
        attempts_left -= 1
        self._conn.execute("UPDATE activations SET attempts_left = ? WHERE activation_id = ?",
                           [attempts_left, activation_id])
        return {"verified": False, "attempts_left": attempts_left}


class _Transaction:
    def __init__(self, conn):
        self._conn = conn

    def __enter__(self):
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *rest):
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _replayed():
    return Refusal(409, protocol.REPLAYED_NONCE, "this request was already received (replayed nonce)")


def phone_for(national_id, *, masked=False):
    """The simulator's made-up phone number registered for a national id."""
    digits = f"{int(hashlib.sha256(national_id.encode()).hexdigest(), 16) % 10 ** 8:08d}"
    number = "+9665" + digits
    return number[:5] + "*" * 6 + number[-2:] if masked else number


def _sha(text):
    return hashlib.sha256(text.encode()).hexdigest()
