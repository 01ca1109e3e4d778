"""The server simulator's citizen services: one-time codes with limits, face verification, service requests.

- Codes (``POST /v1/services/code``): 6 digits to the phone registered for the ID (activation,
  fingerprints) or to the new mobile (account; mobile change, only with the token of a face
  verified for that ID). Limits enforced here, whatever the kiosk does: at most
  ``codes_per_id_per_hour`` per ID and ``codes_per_device_per_hour`` per device (the next request
  is answered ``too_many_codes`` with ``retry_after_s``), a resend no sooner than
  ``resend_after_s`` after the last code for that ID, an expiry of ``code_ttl_s``, and
  ``code_attempts`` wrong guesses lock the ID for ``lockout_s`` (``locked``).
- Checks (``POST /v1/services/code/verify``): ``ok`` with a one-use token bound to the ID and
  the service, or ``wrong`` / ``expired`` / ``locked``.
- Face verification (``POST /v1/services/verify-face``): the kiosk's embedding arrives sealed to
  the server key; it is opened here and compared (cosine) with the embedding enrolled for the
  ID (``enrol_citizen``); ``match`` (with a token for the code to the new mobile) or ``no_match``.
  Wrong faces count towards the same lockout as wrong codes.
- Finger verification (``POST /v1/services/verify-finger``): the sensor's character file (an
  ISO 19794-2 record) of the finger on the kiosk's glass arrives sealed; it is opened here and
  compared by bozorth3 (the sensor simulator's matcher, ``r30x_fingers.Matcher``, at
  ``finger_security_level``) with each finger template enrolled for the ID; ``match`` when any
  reaches the level's threshold. Wrong fingers count with wrong faces and codes.
- Service requests (outbox records of kind ``service_request``, in batches): opened, every
  sealed capture opened with its context, the code (and verification) token checked and spent,
  then applied to the citizen's record; ``history(national_id)`` shows what was done.

Codes go to the SMS log (the simulator's phone); never to the normal log.
"""

import hashlib
import json
import logging
import secrets
import struct
import uuid

import numpy as np

from kiosk.flows.services.rules import mobile_number, national_id_problem, password_rules, username_rules
from kiosk.flows.services.screens import SERVICES
from kiosk.storage.sealbox import open_sealed

log = logging.getLogger(__name__)

KIND = "service_request"
KINDS = (KIND,)
DEFAULT_LIMITS = {"codes_per_id_per_hour": 5, "codes_per_device_per_hour": 100, "code_ttl_s": 300.0,
                  "resend_after_s": 60.0, "code_attempts": 3, "lockout_s": 300.0, "face_match_min": 0.57,
                  "finger_security_level": 4,
                  "token_ttl_s": 7 * 86400.0}
CODE_LENGTH = 6
HOUR_S = 3600.0
MAX_FACE_DIMS = 4096
MAX_TEMPLATE_BYTES = 4096

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS service_codes (code_id TEXT PRIMARY KEY, request_id TEXT UNIQUE, device_id TEXT,
        national_id TEXT, service TEXT, phone TEXT, code_hash TEXT, created_at REAL, expires_at REAL,
        attempts_left INTEGER, verified_at REAL, answer TEXT)""",
    """CREATE TABLE IF NOT EXISTS service_tokens (token_hash TEXT PRIMARY KEY, national_id TEXT, service TEXT,
        kind TEXT, phone TEXT, created_at REAL, used_by TEXT)""",
    "CREATE TABLE IF NOT EXISTS service_lockouts (national_id TEXT PRIMARY KEY, locked_until REAL)",
    "CREATE TABLE IF NOT EXISTS service_wrong_faces (national_id TEXT, at REAL)",
    "CREATE TABLE IF NOT EXISTS citizen_fingers (national_id TEXT, template BLOB)",
    """CREATE TABLE IF NOT EXISTS citizens (national_id TEXT PRIMARY KEY, phone TEXT, face TEXT, fingers INTEGER,
        pin_hash TEXT, username TEXT UNIQUE, email TEXT, language TEXT, activated_at REAL)""",
    """CREATE TABLE IF NOT EXISTS service_history (record_id TEXT PRIMARY KEY, reference TEXT, device_id TEXT,
        national_id TEXT, service TEXT, detail TEXT, stored_at REAL)""",
)


class Invalid(ValueError):
    """A service request the server refuses (the message is the reason sent back)."""


def _sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


class ServiceDesk:
    """The citizen services on the simulator's database (called under the store's lock)."""

    def __init__(self, conn, server_key, *, limits=None, phone_for, send_sms):
        self.conn = conn
        self.server_key = server_key
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        unknown = set(self.limits) - set(DEFAULT_LIMITS)
        if unknown:
            raise ValueError(f"unknown service limits: {', '.join(sorted(unknown))}")
        self.phone_for = phone_for
        self.send_sms = send_sms
        for statement in SCHEMA:
            conn.execute(statement)

    def _one(self, sql, params=()):
        return self.conn.execute(sql, params).fetchone()

    # --- citizens (test API) --------------------------------------------------------------------

    def enrol_citizen(self, national_id, *, face=None, phone=None, fingers=None):
        """Put a citizen on record: the registered phone, an enrolled face embedding, enrolled fingers.

        ``fingers``: finger templates (ISO 19794-2 records, as the sensor makes them) or greyscale
        finger images (their minutiae are extracted here); None keeps the fingers on record.
        """
        vector = None if face is None else json.dumps([float(v) for v in np.asarray(face, dtype=np.float32).ravel()])
        self.conn.execute("INSERT INTO citizens (national_id, phone, face) VALUES (?, ?, ?) ON CONFLICT(national_id) "
                          "DO UPDATE SET phone = excluded.phone, face = excluded.face",
                          [national_id, phone or self.phone_for(national_id), vector])
        if fingers is not None:
            from kiosk_sim.r30x_fingers import character_file  # the sensor simulator's extractor (nbis)
            templates = [bytes(f) if isinstance(f, (bytes, bytearray)) else character_file(np.asarray(f))
                         for f in fingers]
            self.conn.execute("DELETE FROM citizen_fingers WHERE national_id = ?", [national_id])
            self.conn.executemany("INSERT INTO citizen_fingers VALUES (?, ?)", [(national_id, t) for t in templates])

    def citizen(self, national_id):
        row = self._one("SELECT national_id, phone, face, fingers, pin_hash, username, email, language, activated_at "
                        "FROM citizens WHERE national_id = ?", [national_id])
        if row is None:
            return None
        keys = ("national_id", "phone", "face", "fingers", "pin_hash", "username", "email", "language", "activated_at")
        out = dict(zip(keys, row))
        out["face"] = out["face"] is not None
        return out

    def registered_phone(self, national_id):
        row = self._one("SELECT phone FROM citizens WHERE national_id = ?", [national_id])
        return row[0] if row and row[0] else self.phone_for(national_id)

    def history(self, national_id=None):
        sql = "SELECT record_id, reference, device_id, national_id, service, detail, stored_at FROM service_history"
        rows = self.conn.execute(sql + (" WHERE national_id = ?" if national_id else "") + " ORDER BY stored_at",
                                 [national_id] if national_id else []).fetchall()
        keys = ("record_id", "reference", "device_id", "national_id", "service", "detail", "stored_at")
        return [dict(zip(keys, r), detail=json.loads(r[5])) for r in rows]

    # --- lockout ----------------------------------------------------------------------------------

    def _locked_for(self, national_id, now):
        row = self._one("SELECT locked_until FROM service_lockouts WHERE national_id = ?", [national_id])
        return max(0.0, row[0] - now) if row and row[0] > now else 0.0

    def _lock(self, national_id, now):
        self.conn.execute("INSERT INTO service_lockouts VALUES (?, ?) ON CONFLICT(national_id) DO UPDATE SET "
                          "locked_until = excluded.locked_until", [national_id, now + self.limits["lockout_s"]])
        log.warning("services: id %s locked for %.0f s after wrong guesses", national_id[-2:].rjust(10, "*"),
                    self.limits["lockout_s"])

    # --- codes ------------------------------------------------------------------------------------

    def request_code(self, device_id, body, *, now):
        """The answer to a code request (sent or why not); sends the SMS when one is made."""
        national_id = str(body.get("national_id", ""))
        service = body.get("service")
        if national_id_problem(national_id) or service not in SERVICES:
            return {"sent": False, "reason": "refused", "retry_after_s": None}
        request_id = str(body.get("request_id") or uuid.uuid4())
        row = self._one("SELECT answer FROM service_codes WHERE request_id = ?", [request_id])
        if row is not None:
            return json.loads(row[0])  # the same request again (a retry): the same answer, no new SMS
        phone = self.registered_phone(national_id)
        if service in ("account", "mobile_change"):
            phone = mobile_number(str(body.get("phone") or ""))
            if phone is None:
                return {"sent": False, "reason": "refused", "retry_after_s": None}
        if service == "mobile_change" and not self._token_ok(body.get("proof"), national_id, service, "verified", now):
            return {"sent": False, "reason": "not_verified", "retry_after_s": None}
        locked = self._locked_for(national_id, now)
        if locked:
            return {"sent": False, "reason": "locked", "retry_after_s": locked}
        refusal = self._over_limit(national_id, device_id, now)
        if refusal:
            return refusal
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_LENGTH))
        code_id = str(uuid.uuid4())
        limits = self.limits
        answer = {"sent": True, "code_id": code_id, "code_length": CODE_LENGTH, "expires_in_s": limits["code_ttl_s"],
                  "resend_after_s": limits["resend_after_s"], "attempts_left": limits["code_attempts"],
                  "phone_hint": phone[:5] + "*" * 6 + phone[-2:]}
        self.conn.execute("INSERT INTO service_codes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                          [code_id, request_id, device_id, national_id, service, phone, _sha(code_id + code), now,
                           now + limits["code_ttl_s"], limits["code_attempts"], json.dumps(answer)])
        self.send_sms(phone, national_id, service, code)
        return answer

    def _over_limit(self, national_id, device_id, now):
        limits = self.limits
        last = self._one("SELECT max(created_at) FROM service_codes WHERE national_id = ?", [national_id])[0]
        if last is not None and now - last < limits["resend_after_s"]:
            return {"sent": False, "reason": "resend_too_soon", "retry_after_s": limits["resend_after_s"] - (now - last)}
        for column, value, most in (("national_id", national_id, limits["codes_per_id_per_hour"]),
                                    ("device_id", device_id, limits["codes_per_device_per_hour"])):
            count, oldest = self._one(f"SELECT count(*), min(created_at) FROM service_codes WHERE {column} = ? "
                                      "AND created_at > ?", [value, now - HOUR_S])
            if count >= most:
                log.warning("services: code refused, %d codes for this %s in the last hour", count, column)
                return {"sent": False, "reason": "too_many_codes", "retry_after_s": oldest + HOUR_S - now}
        return None

    def verify_code(self, device_id, body, *, now):
        code_id, code = str(body.get("code_id", "")), str(body.get("code", ""))
        row = self._one("SELECT device_id, national_id, service, phone, code_hash, expires_at, attempts_left, "
                        "verified_at FROM service_codes WHERE code_id = ?", [code_id])
        if row is None or row[0] != device_id:
            return {"verified": False, "reason": "refused"}
        _, national_id, service, phone, code_hash, expires_at, attempts_left, verified_at = row
        locked = self._locked_for(national_id, now)
        if locked:
            return {"verified": False, "reason": "locked", "attempts_left": 0, "retry_after_s": locked}
        if verified_at is not None:
            return {"verified": False, "reason": "refused"}
        if now >= expires_at:
            return {"verified": False, "reason": "expired", "attempts_left": attempts_left}
        if attempts_left <= 0:
            return {"verified": False, "reason": "locked", "attempts_left": 0, "retry_after_s": 0.0}
        if secrets.compare_digest(code_hash, _sha(code_id + code)):
            self.conn.execute("UPDATE service_codes SET verified_at = ? WHERE code_id = ?", [now, code_id])
            return {"verified": True, "token": self._token(national_id, service, "code", now, phone=phone)}
        attempts_left -= 1
        self.conn.execute("UPDATE service_codes SET attempts_left = ? WHERE code_id = ?", [attempts_left, code_id])
        if attempts_left <= 0:
            self._lock(national_id, now)
            return {"verified": False, "reason": "wrong", "attempts_left": 0, "retry_after_s": self.limits["lockout_s"]}
        return {"verified": False, "reason": "wrong", "attempts_left": attempts_left}

    def _token(self, national_id, service, kind, now, *, phone=None):
        token = secrets.token_urlsafe(24)
        self.conn.execute("INSERT INTO service_tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                          [_sha(token), national_id, service, kind, phone, now])
        return token

    def _token_row(self, token, national_id, service, kind, now):
        if not isinstance(token, str) or not token:
            return None
        row = self._one("SELECT national_id, service, kind, phone, created_at, used_by FROM service_tokens "
                        "WHERE token_hash = ?", [_sha(token)])
        if row is None or row[:3] != (national_id, service, kind) or now - row[4] > self.limits["token_ttl_s"]:
            return None
        return row

    def _token_ok(self, token, national_id, service, kind, now):
        row = self._token_row(token, national_id, service, kind, now)
        return row is not None and row[5] is None

    # --- face verification ------------------------------------------------------------------------

    def verify_face(self, device_id, body, *, now):
        national_id = str(body.get("national_id", ""))
        context = body.get("context")
        if national_id_problem(national_id) or not isinstance(context, str) or \
                not (context.startswith("service:mobile_change:") and context.endswith(":face")):
            return {"outcome": "refused"}
        locked = self._locked_for(national_id, now)
        if locked:
            return {"outcome": "refused", "retry_after_s": locked}
        try:
            probe = _vector(open_sealed(self.server_key, body.get("sealed"), context=context))
        except ValueError as e:
            log.warning("services: face verification refused: %s", e)
            return {"outcome": "refused"}
        row = self._one("SELECT face FROM citizens WHERE national_id = ?", [national_id])
        if row is None or row[0] is None:
            return {"outcome": "no_record"}
        enrolled = np.asarray(json.loads(row[0]), dtype=np.float32)
        if enrolled.size != probe.size:
            return {"outcome": "no_record"}
        score = float(np.dot(probe / np.linalg.norm(probe), enrolled / np.linalg.norm(enrolled)))
        if score >= self.limits["face_match_min"]:
            log.info("services: face verified for mobile change (score %.2f)", score)
            return {"outcome": "match", "token": self._token(national_id, "mobile_change", "verified", now)}
        log.info("services: face not verified for mobile change (score %.2f)", score)
        self._count_wrong_guess(national_id, now)
        return {"outcome": "no_match"}

    def verify_finger(self, device_id, body, *, now):
        national_id = str(body.get("national_id", ""))
        context = body.get("context")
        if national_id_problem(national_id) or not isinstance(context, str) or \
                not (context.startswith("service:mobile_change:") and context.endswith(":finger")):
            return {"outcome": "refused"}
        locked = self._locked_for(national_id, now)
        if locked:
            return {"outcome": "refused", "retry_after_s": locked}
        try:
            probe = open_sealed(self.server_key, body.get("sealed"), context=context)
        except ValueError as e:
            log.warning("services: finger verification refused: %s", e)
            return {"outcome": "refused"}
        if not 0 < len(probe) <= MAX_TEMPLATE_BYTES:
            return {"outcome": "refused"}
        enrolled = [row[0] for row in self.conn.execute("SELECT template FROM citizen_fingers WHERE national_id = ?",
                                                         [national_id])]
        if not enrolled:
            return {"outcome": "no_record"}
        from kiosk_sim.r30x_fingers import Matcher  # bozorth3 through nbis: the simulator's extras only
        level = self.limits["finger_security_level"]
        results = [Matcher().compare(probe, bytes(t), level) for t in enrolled]  # no injected errors: real scores
        best = max(score for _, score in results)
        if any(accepted for accepted, _ in results):
            log.info("services: finger verified for mobile change (score %d)", best)
            return {"outcome": "match", "token": self._token(national_id, "mobile_change", "verified", now)}
        log.info("services: finger not verified for mobile change (score %d)", best)
        self._count_wrong_guess(national_id, now)
        return {"outcome": "no_match"}

    def _count_wrong_guess(self, national_id, now):
        # a wrong face or finger is a wrong guess: it counts like a wrong code (code_attempts per lockout)
        self.conn.execute("INSERT INTO service_wrong_faces VALUES (?, ?)", [national_id, now])
        wrong = self._one("SELECT count(*) FROM service_wrong_faces WHERE national_id = ? AND at > ?",
                          [national_id, now - self.limits["lockout_s"]])[0]
        if wrong >= self.limits["code_attempts"]:
            self._lock(national_id, now)

    # --- service requests (batch records) ---------------------------------------------------------

    def accept(self, device_id, record_id, data, *, now):
        """Open, check and apply one ``service_request`` record; raises Invalid with the reason."""
        if not isinstance(data, dict):
            raise Invalid("a service request is an object")
        service, reference = data.get("service"), data.get("reference")
        if service not in SERVICES or not isinstance(reference, str) or not 0 < len(reference) <= 40:
            raise Invalid("service or reference missing or unknown")
        if self._one("SELECT 1 FROM service_history WHERE record_id = ?", [record_id]):
            return  # applied already (the batch that carried it failed later): once only
        try:
            plain = open_sealed(self.server_key, data.get("sealed"),
                                context=f"{KIND}:{record_id}:{service}:{reference}")
            secret = json.loads(plain)
        except ValueError as e:
            raise Invalid(f"the sealed request does not open: {e}") from None
        if not isinstance(secret, dict) or national_id_problem(secret.get("national_id")):
            raise Invalid("the sealed request has no valid national_id")
        national_id = secret["national_id"]
        fields = secret.get("fields") if isinstance(secret.get("fields"), dict) else {}
        proofs = secret.get("proofs") if isinstance(secret.get("proofs"), dict) else {}
        code = self._token_row(proofs.get("code"), national_id, service, "code", now)
        if code is None or code[5] not in (None, record_id):
            raise Invalid("no valid one-time code proof for this ID and service")
        captures = self._open_captures(secret.get("sealed"), service, reference)
        exceptions = _exceptions(secret.get("exceptions"))
        detail = self._apply(service, national_id, fields, captures, exceptions, code_phone=code[3], now=now)
        self.conn.execute("UPDATE service_tokens SET used_by = ? WHERE token_hash = ?", [record_id, _sha(proofs["code"])])
        detail.update(captured=sorted(captures), exceptions=exceptions,
                      quality=secret.get("quality") if isinstance(secret.get("quality"), dict) else {})
        self.conn.execute("INSERT INTO service_history VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [record_id, reference, device_id, national_id, service, json.dumps(detail), now])

    def _open_captures(self, sealed, service, reference):
        if not isinstance(sealed, dict) or len(sealed) > 12:
            raise Invalid("sealed captures must be an object of at most 12")
        captures = {}
        for name, box in sealed.items():
            # "finger": the sample a mobile change was verified with; "finger:<name>": an enrolled finger
            if name not in ("face", "finger") and not (isinstance(name, str) and name.startswith("finger:")
                                                       and len(name) < 40):
                raise Invalid(f"unknown capture {str(name)[:40]!r}")
            try:
                data = open_sealed(self.server_key, box, context=f"service:{service}:{reference}:{name}")
            except ValueError as e:
                raise Invalid(f"capture {name} does not open: {e}") from None
            if name == "face":
                captures[name] = _vector(data)
            elif not 0 < len(data) <= MAX_TEMPLATE_BYTES:
                raise Invalid(f"capture {name} is not a fingerprint template")
            else:
                captures[name] = data
        return captures

    def _apply(self, service, national_id, fields, captures, exceptions, *, code_phone, now):
        fingers = len([n for n in captures if n.startswith("finger:")])
        self.conn.execute("INSERT OR IGNORE INTO citizens (national_id, phone) VALUES (?, ?)",
                          [national_id, self.phone_for(national_id)])
        if service == "activation":
            pin = str(fields.get("pin", ""))
            if len(pin) != 6 or not pin.isdigit():
                raise Invalid("activation needs a 6-digit PIN")
            face = captures.get("face")
            self.conn.execute("UPDATE citizens SET pin_hash = ?, fingers = ?, activated_at = ?, face = coalesce(?, "
                              "face) WHERE national_id = ?",
                              [_sha(national_id + pin), fingers, now,
                               None if face is None else json.dumps([float(v) for v in face]), national_id])
            return {"activated": True, "fingers": fingers, "face": face is not None}
        if service == "fingerprints":
            if not fingers and not exceptions:
                raise Invalid("no fingerprints and no exception")
            self.conn.execute("UPDATE citizens SET fingers = ? WHERE national_id = ?", [fingers, national_id])
            return {"fingers": fingers}
        if service == "account":
            username, password = str(fields.get("username", "")), str(fields.get("password", ""))
            if not all(username_rules(username).values()) or \
                    not all(password_rules(password, username=username, confirmation=password).values()):
                raise Invalid("username or password breaks the platform's rules")
            if self._one("SELECT 1 FROM citizens WHERE username = ? OR (national_id = ? AND username IS NOT NULL)",
                         [username, national_id]):
                raise Invalid("an account exists for this ID, or the username is taken")
            self.conn.execute("UPDATE citizens SET username = ?, email = ?, language = ?, phone = ? "
                              "WHERE national_id = ?", [username, str(fields.get("email", ""))[:254],
                                                        str(fields.get("language", ""))[:8], code_phone, national_id])
            return {"account": username}
        # mobile_change: the code went to the new number, which the code's token remembers
        self.conn.execute("UPDATE citizens SET phone = ? WHERE national_id = ?", [code_phone, national_id])
        return {"phone": code_phone}


def _vector(data):
    if not 0 < len(data) <= 4 * MAX_FACE_DIMS or len(data) % 4:
        raise ValueError("not a face embedding")
    vector = np.asarray(struct.unpack(f"<{len(data) // 4}f", data), dtype=np.float32)
    if not np.all(np.isfinite(vector)) or not np.linalg.norm(vector) > 0:
        raise ValueError("not a finite face embedding")
    return vector


def _exceptions(items):
    if items is None:
        return []
    if not isinstance(items, list) or len(items) > 12:
        raise Invalid("exceptions must be a list of at most 12")
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("kind") not in ("face", "finger") or \
                item.get("reason") not in ("failed_repeatedly", "cannot_capture"):
            raise Invalid("an exception needs kind face|finger and reason failed_repeatedly|cannot_capture")
        out.append({"kind": item["kind"], "finger": str(item.get("finger") or "")[:40] or None,
                    "reason": item["reason"]})
    return out


ROUTES = {"/v1/services/code": "request_code", "/v1/services/code/verify": "verify_code",
          "/v1/services/verify-face": "verify_face", "/v1/services/verify-finger": "verify_finger"}


def route(desk, path, device_id, body, *, now):
    """The answer to one service request (a POST to one of ``ROUTES``), or None for another path."""
    name = ROUTES.get(path)
    if name is None:
        return None
    return getattr(desk, name)(device_id, body if isinstance(body, dict) else {}, now=now)
