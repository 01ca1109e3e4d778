"""Central server simulator: the kiosk sync protocol over HTTP on 127.0.0.1, SQLite behind it, faults on demand.

    with ServerSimulator(db_path=tmp / "server.db", port=0) as server:
        token = server.issue_enrolment_token()
        ... register a device against server.url, upload, download ...
        server.set_fault("unavailable", times=3, retry_after_s=2)
        assert len(server.events()) == expected

``kiosk-sim server [--port N] [--db FILE] [--fault KIND]`` runs it on its own; its schema is at
``/openapi.json``. One-time activation codes go to the simulator's SMS log file (``sms_log``),
never to the normal log.
"""

import gzip
import json
import logging
import re
import socket
import struct
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from kiosk_sim.server_faults import FAULTS, FaultSwitch
from kiosk_sim.server_input import decode_request_body, parse_query
from kiosk_sim import server_services
from kiosk_sim.server_store import Refusal, ServerStore, phone_for

from kiosk import argtypes
from kiosk.sync import protocol

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(protocol.__file__).with_name("openapi.json")


class ServerSimulator:
    """A real HTTP server speaking the sync protocol, for tests, the demo and outside tools."""

    def __init__(self, *, db_path=None, host="127.0.0.1", port=0, tls=False, workdir=None, sms_log=None,
                 device_settings=None, fault_seed=None, signing_key=None, clock=None, service_limits=None):
        """``clock``: what ``now()`` reads (a FakeClock in tests; the system clock by default);
        ``service_limits``: the citizen services' limits (``server_services.DEFAULT_LIMITS`` keys)."""
        self._tmp = None
        if workdir is None and db_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kiosk-server-")
            workdir = self._tmp.name
        self.workdir = Path(workdir) if workdir else Path(db_path).resolve().parent
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db_path = Path(db_path) if db_path else self.workdir / "server.db"
        self.sms_log = Path(sms_log) if sms_log else self.db_path.with_name(self.db_path.name + ".sms.log")
        self.host = host
        self.port = port
        self.store = ServerStore(self.db_path, device_settings=device_settings, signing_key=signing_key)
        self.clock = clock
        self.services = self.store.services = server_services.ServiceDesk(
            self.store._conn, self.store.server_key, limits=service_limits, phone_for=phone_for,
            send_sms=self._send_service_sms)
        self.faults = FaultSwitch(seed=fault_seed)
        self.schema = json.loads(SCHEMA_PATH.read_text())
        self._routes = [(re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)) + "$"),
                         sorted(m.upper() for m in ops if m.lower() in ("get", "post", "put", "delete", "patch")))
                        for path, ops in self.schema.get("paths", {}).items()]
        self.ca_file = None
        self._ssl = None
        if tls:
            from kiosk_sim.server_tls import make_ca_and_server_cert

            self.ca_file, self._ssl = make_ca_and_server_cert(self.workdir, host)
        self._httpd = None
        self._thread = None
        self._connections = set()
        self._conn_lock = threading.Lock()
        self._outage = False
        self._previous_results = []
        self.requests = 0
        self.connections_accepted = 0  # TCP (and TLS) connections: keep-alive keeps this low
        self._closed = False

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self):
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self):
        self._listen()
        log.info("server simulator on %s (db %s)", self.url, self.db_path)
        return self

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._stop_listening()
        self._drop_connections()
        self.store.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def serve_forever(self):
        """Block until interrupted (the CLI)."""
        try:
            while True:
                time.sleep(3600)
        finally:
            self.close()

    def _listen(self):
        sim = self

        class Handler(_Handler):
            simulator = sim

        httpd = _HTTPServer((self.host, self.port), Handler, ssl_context=self._ssl)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="server-sim", daemon=True)
        self._thread.start()

    def _stop_listening(self):
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            self._thread.join(timeout=5)

    def _drop_connections(self):
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            _abort(conn, wake=True)

    # --- test API --------------------------------------------------------------------------------

    def set_fault(self, kind, **knobs):
        """Switch a fault on (see FAULTS); knobs: times, probability, delay_s, retry_after_s, skew_s."""
        if kind == "outage":
            self.faults.set(kind, **knobs)
            if not self._outage:
                self._outage = True
                self._stop_listening()
                self._drop_connections()
            return
        self._end_outage()
        self.faults.set(kind, **knobs)

    def clear_fault(self):
        self.faults.clear()
        self._end_outage()

    def _end_outage(self):
        if self._outage:
            self._outage = False
            self._listen()

    def now(self):
        fault = self.faults.current
        now = self.clock.time() if self.clock is not None else time.time()
        return now + (fault.skew_s if fault is not None and fault.kind == "skew" else 0.0)

    def issue_enrolment_token(self, *, ttl_s=3600.0):
        with self.store.lock:
            return self.store.issue_token(ttl_s=ttl_s, now=time.time())

    def events(self, device_id=None):
        with self.store.lock:
            return self.store.events(device_id)

    def records(self, kind=None):
        with self.store.lock:
            return self.store.records(kind)

    def enrolled_people(self):
        """People enrolled at kiosks, as the server opened them: person fields, faces, fingers, pin_hash."""
        with self.store.lock:
            return self.store.enrolled_people()

    def deleted_people(self):
        """People deleted at kiosks: [{record_id, device_id, person_id, deleted_at}]."""
        with self.store.lock:
            return self.store.deleted_people()

    def record_count(self):
        with self.store.lock:
            return self.store.record_count()

    def devices(self):
        with self.store.lock:
            return self.store.devices()

    def revoke_device(self, device_id):
        with self.store.lock:
            self.store._conn.execute("UPDATE devices SET revoked = 1 WHERE device_id = ?", [device_id])

    def add_person(self, person_id, *, name="", role="employee", active=True, pin_hash=None):
        person = {"person_id": person_id, "name": name, "role": role, "active": bool(active), "pin_hash": pin_hash}
        return self._change("person", {"op": "upsert", "person": person})

    def remove_person(self, person_id):
        return self._change("person", {"op": "delete", "person_id": person_id})

    def set_face_templates(self, person_id, model_id, vectors):
        """Replace a person's face templates for one model (float32 vectors)."""
        import numpy as np

        encoded = [protocol.b64(np.asarray(v, dtype="<f4").tobytes()) for v in vectors]
        return self._change("face_templates", {"person_id": person_id, "model_id": model_id, "vectors": encoded},
                            model=model_id)

    def set_finger_templates(self, person_id, sensor_model, templates):
        """Replace a person's fingerprint templates for one sensor model: [(slot, bytes)]."""
        items = [{"slot": int(slot), "template": protocol.b64(bytes(data))} for slot, data in templates]
        return self._change("finger_templates", {"person_id": person_id, "sensor_model": sensor_model,
                                                 "templates": items}, model=sensor_model)

    def set_voice_template(self, person_id, model_id, vector):
        """Replace a person's voice print for one model (float32 vector; None removes it)."""
        import numpy as np

        encoded = None if vector is None else protocol.b64(np.asarray(vector, dtype="<f4").tobytes())
        return self._change("voice_template", {"person_id": person_id, "model_id": model_id, "vector": encoded})

    def set_settings(self, values):
        return self._change("settings", {"values": dict(values)})

    def revoke(self, person_id, *, reason=""):
        return self._change("revocation", {"person_id": person_id, "reason": reason})

    def _change(self, change_type, body, *, model=None):
        with self.store.lock:
            return self.store.add_change(change_type, body, model=model, now=time.time())

    def queue_command(self, device_id, kind, args=None, *, ttl_s=600.0):
        with self.store.lock:
            return self.store.queue_command(device_id, kind, args, ttl_s=ttl_s, now=time.time())

    def command(self, command_id):
        with self.store.lock:
            return self.store.command(command_id)

    def sms_messages(self):
        """Lines of the simulator's SMS log (where one-time codes go instead of a phone)."""
        if not self.sms_log.exists():
            return []
        return self.sms_log.read_text().splitlines()

    def last_code(self):
        """The most recent one-time code sent (tests type it in as the citizen would)."""
        lines = self.sms_messages()
        return lines[-1].rsplit(" ", 1)[-1] if lines else None

    @property
    def server_private_key(self):
        """The X25519 key activation packets are sealed to (tests decrypt with it)."""
        return self.store.server_key

    @property
    def signing_public_key(self):
        """Hex Ed25519 key that signs every answer (devices pin it at registration)."""
        return self.store.signing_public_key_hex

    @property
    def signing_key_fingerprint(self):
        """sha256 of the signing key: what a provisioning file may pin in advance."""
        return protocol.key_fingerprint(self.store.signing_public_key_hex)

    def stats(self):
        with self.store.lock:
            return {"requests": self.requests, "connections": self.connections_accepted,
                    "records": self.store.record_count(),
                    "duplicate_results": self.store.duplicate_results,
                    "faults_applied": dict(self.faults.applied)}

    # --- protocol --------------------------------------------------------------------------------

    def allowed_methods(self, path):
        """The methods the schema documents for ``path`` ([] for a path it does not know)."""
        route = urlsplit(path).path
        for pattern, methods in self._routes:
            if pattern.match(route):
                return methods
        return []

    def route(self, method, path, headers, raw):
        """(status, body dict, extra headers) for one request; raises Refusal."""
        parts = urlsplit(path)
        route = parts.path
        now = self.now()
        store = self.store
        if method == "GET" and route in ("/openapi.json", "/schema.json"):
            return 200, self.schema, {}
        if method == "GET" and route == "/v1/health":
            return 200, {"status": "ok", "version": 1}, {}
        body = self._body(headers, raw)
        if method == "POST" and raw and not isinstance(body, dict):
            raise Refusal(400, protocol.MALFORMED, f"the body must be a JSON object, not {type(body).__name__}")
        with store.lock:
            if method == "POST" and route == "/v1/devices/register":
                device_id = store.register(body or {}, now=now)
                return 201, {"device_id": device_id, "server_public_key": store.server_public_key_hex,
                             "server_signing_key": store.signing_public_key_hex,
                             "settings": store.device_settings}, {}
            if not route.startswith("/v1/") or route == "/v1/devices/register":
                raise Refusal(404, "not_found", f"no route {method} {route}")
            batch = method == "POST" and route == "/v1/batches"
            device_id = store.authenticate(headers, method, path, raw, now=now, record_nonce=not batch)
            if batch:
                nonce = headers[protocol.HEADER_NONCE]
                try:
                    results = store.store_batch(device_id, body, now=now, nonce=nonce)
                except Refusal:
                    store.record_nonce(device_id, nonce, now=now)  # a refused request is not heard twice either
                    raise
                return 200, {"batch_id": body["batch_id"], "results": results,
                             "confirmed_head": store.confirmed_head(device_id)}, {}
            if method == "GET" and route == "/v1/delta":
                query = parse_query(parts.query)
                return 200, store.changes_after(query.get("cursor", ""), limit=query.get("limit", 500),
                                                face_model=query.get("face_model", ""),
                                                finger_sensor=query.get("finger_sensor", "")), {}
            if method == "GET" and route == "/v1/commands":
                return 200, {"commands": store.pending_commands(device_id)}, {}
            if method == "POST" and route.startswith("/v1/commands/") and route.endswith("/result"):
                command_id = route[len("/v1/commands/"):-len("/result")]
                return 200, store.command_result(device_id, command_id, body or {}, now=now), {}
            if method == "POST" and route == "/v1/devices/rotate-key":
                return 200, store.rotate_key(device_id, body or {}), {}
            if method == "POST" and route == "/v1/activation/request":
                answer, sent = store.request_code(device_id, body or {}, now=now)
                if sent:
                    self._send_sms(*sent)
                return 200, answer, {}
            if method == "POST" and route == "/v1/activation/verify":
                return 200, store.verify_code(device_id, body or {}, now=now), {}
            if method == "POST":
                answer = server_services.route(self.services, route, device_id, body, now=now)
                if answer is not None:
                    return 200, answer, {}
        raise Refusal(404, "not_found", f"no route {method} {route}")

    def _body(self, headers, raw):
        return decode_request_body(raw, content_encoding=headers.get("Content-Encoding", ""))

    def enrol_citizen(self, national_id, *, face=None, phone=None, fingers=None):
        """Put a citizen on the server's record: registered phone, enrolled face embedding and fingers (mobile change)."""
        with self.store.lock:
            self.services.enrol_citizen(national_id, face=face, phone=phone, fingers=fingers)

    def citizen(self, national_id):
        """What the server holds for a citizen after the services (phone, PIN set, fingers, account)."""
        with self.store.lock:
            return self.services.citizen(national_id)

    def service_history(self, national_id=None):
        """Every service request the server applied, per ID: service, reference, what was captured, exceptions."""
        with self.store.lock:
            return self.services.history(national_id)

    def _send_service_sms(self, phone, national_id, service, code):
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(self.sms_log, "a", encoding="utf-8") as f:
            f.write(f"{stamp} to {phone} (id {protocol.mask_national_id(national_id)}, {service}): "
                    f"your kiosk code is {code}\n")
        log.info("service code sent by (simulated) SMS for id %s (%s)", protocol.mask_national_id(national_id),
                 service)

    def _send_sms(self, code, national_id):
        # the code goes to the SMS log only: the normal log says that a code was sent, not which
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(self.sms_log, "a", encoding="utf-8") as f:
            f.write(f"{stamp} to {phone_for(national_id)} (id {protocol.mask_national_id(national_id)}): "
                    f"your kiosk activation code is {code}\n")
        log.info("activation code sent by (simulated) SMS for id %s", protocol.mask_national_id(national_id))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, handler, *, ssl_context=None):
        self._ssl = ssl_context
        super().__init__(address, handler)

    def handle_error(self, request, client_address):
        """A client that hangs up mid-request is routine: a log line, not a traceback on stderr."""
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %s", client_address[0], error)
        else:
            log.error("connection from %s failed: %r", client_address[0], error)

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl is not None:
            # the TLS handshake happens in the handler thread, not in the accept loop
            conn = self._ssl.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kiosk-sim-server/1"
    simulator = None

    def setup(self):
        super().setup()
        with self.simulator._conn_lock:
            self.simulator._connections.add(self.connection)
            self.simulator.connections_accepted += 1

    def finish(self):
        try:
            super().finish()
        finally:
            with self.simulator._conn_lock:
                self.simulator._connections.discard(self.connection)

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def __getattr__(self, name):
        # http.server answers 501 for a method without a do_ method: ours is 405 for every one
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self):
        self.simulator.requests += 1
        if self._read_body() is None:
            return
        allowed = self.simulator.allowed_methods(self.path) or ["GET", "POST"]
        self._send(405, {"error": "method_not_allowed", "message": f"{str(self.command)[:20]} is not served here"},
                   {"Allow": ", ".join(allowed)})

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (bad request line, header too long, ...) as JSON, never a 5xx."""
        if code >= 500:  # 505 (an HTTP version we do not speak) is the client's problem here
            code, message = 400, f"unsupported request: {message or code}"
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # failed before the version was read: answer in HTTP/1.1
            self.request_version = "HTTP/1.1"
        try:
            self._send(code, {"error": "bad_request", "message": str(message or "bad request")[:200]},
                       {"Connection": "close"})
        except OSError:
            pass

    def _serve(self, method):
        sim = self.simulator
        sim.requests += 1
        if sim._outage:
            return self._abort()
        fault = sim.faults.take(is_batch=self.path.startswith("/v1/batches"))
        kind = fault.kind if fault else None
        if kind == "close":
            return self._abort()
        raw = self._read_body()
        if raw is None:
            return
        if kind == "slow":
            time.sleep(fault.delay_s)
        if kind == "error500":
            return self._send(500, {"error": "internal", "message": "simulated internal error"})
        if kind == "unavailable":
            return self._send(503, {"error": "unavailable", "message": "simulated overload"},
                              {"Retry-After": str(int(fault.retry_after_s))})
        allowed = sim.allowed_methods(self.path)
        if allowed and method not in allowed:
            return self._send(405, {"error": "method_not_allowed", "message": f"{method} is not served here"},
                              {"Allow": ", ".join(allowed)})
        try:
            status, body, extra = sim.route(method, self.path, self.headers, raw)
        except Refusal as e:
            log.warning("refused %s %s: %s", method, urlsplit(self.path).path, e)
            return self._send(e.http_status, {"error": e.code, "message": e.message})
        except Exception:  # noqa: BLE001 - a simulator bug must answer 500, not kill the thread silently
            log.exception("simulator error on %s %s", method, self.path)
            return self._send(500, {"error": "internal", "message": "simulator error"})
        if kind == "lost_ack":
            return self._abort()
        if kind == "duplicate_ack" and "results" in body:
            results = body["results"]
            body = dict(body, results=results + results + sim._previous_results +
                        [{"id": "00000000-0000-4000-8000-000000000000", "status": protocol.STORED}])
            sim._previous_results = results
        self._send(status, body, extra, cut=(kind == "reset"))

    def _read_body(self):
        """The request body, or None after answering 4xx (the connection then closes: the stream is unusable)."""
        length = self.headers.get("Content-Length")
        refusal = None
        if self.headers.get("Transfer-Encoding"):
            refusal = (411, "length_required", "chunked bodies are not accepted: send Content-Length")
        else:
            try:
                length = int(length or 0)
                if length < 0:
                    raise ValueError
            except ValueError:
                refusal = (400, protocol.MALFORMED, "bad Content-Length")
            else:
                if length > protocol.MAX_BODY_BYTES:
                    refusal = (413, "too_large", "body too large")
        if refusal is not None:
            self.close_connection = True
            self._send(refusal[0], {"error": refusal[1], "message": refusal[2]}, {"Connection": "close"})
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, status, body, extra=None, *, cut=False):
        now = self.simulator.now()
        if isinstance(body, dict) and body is not self.simulator.schema:
            body = dict(body, server_time=now)
        raw = json.dumps(body, separators=(",", ":")).encode()
        server_time = f"{now:.3f}"
        headers = {"Content-Type": "application/json", protocol.HEADER_SERVER_TIME: server_time, **(extra or {}),
                   protocol.HEADER_SERVER_SIGNATURE: self._signature(status, server_time, raw),
                   protocol.HEADER_SERVER_KEY: self.simulator.store.signing_public_key_hex}
        request_headers = getattr(self, "headers", None) or {}
        if "gzip" in request_headers.get("Accept-Encoding", "") and len(raw) > 512:
            raw = gzip.compress(raw, compresslevel=protocol.GZIP_LEVEL, mtime=0)
            headers["Content-Encoding"] = "gzip"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if cut:
            self.wfile.write(raw[: max(1, len(raw) // 2)])
            return self._abort()
        self.wfile.write(raw)

    def _signature(self, status, server_time, raw):
        """Sign this answer for the request it answers: its nonce, device, method and path."""
        headers = getattr(self, "headers", None) or {}  # none when the request line itself was refused
        nonce = headers.get(protocol.HEADER_NONCE, "")
        if not protocol.NONCE_RE.match(nonce):
            nonce = ""
        return protocol.sign_answer(self.simulator.store.signing_key, nonce=nonce,
                                    device_id=headers.get(protocol.HEADER_DEVICE, ""),
                                    method=getattr(self, "command", None) or "", path=getattr(self, "path", None) or "",
                                    status=status, server_time=server_time, body=raw)

    def _abort(self):
        self.close_connection = True
        _abort(self.connection)


def _abort(conn, *, wake=False):
    """Close a connection with a TCP reset (no orderly FIN), as a crashed peer or a middlebox would.

    ``wake`` also shuts the socket down, for connections another thread is blocked reading.
    """
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    if wake:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def register(sub):
    parser = sub.add_parser("server", help="central sync server with fault injection",
                            description="Run the central server simulator on 127.0.0.1 (schema at /openapi.json).")
    parser.add_argument("--port", type=argtypes.port_number, default=8443, help="TCP port (0 = any free port; default 8443)")
    parser.add_argument("--db", metavar="FILE", help="SQLite file to keep its state in (default: a temp dir)")
    parser.add_argument("--fault", choices=sorted(FAULTS), help="inject this fault into requests")
    parser.add_argument("--fault-probability", type=argtypes.probability, default=1.0, metavar="P",
                        help="share of requests the fault hits (default 1.0)")
    parser.add_argument("--tls", action="store_true", help="serve https with a fresh CA (its file is printed)")
    parser.add_argument("--tokens", type=argtypes.non_negative_int, default=1, help="enrolment tokens to issue and print (default 1)")
    parser.add_argument("--sms-log", metavar="FILE", help="where one-time codes are written (default: next to the db)")
    parser.set_defaults(func=run)


def run(args):
    server = ServerSimulator(db_path=args.db, port=args.port, tls=args.tls, sms_log=args.sms_log)
    try:
        server.start()
    except OSError as e:
        server.close()
        raise OSError(e.errno, f"cannot listen on {server.host}:{args.port}: {e.strerror}") from None
    if args.fault:
        server.set_fault(args.fault, probability=args.fault_probability)
    print(f"server simulator listening on {server.url}  (schema: {server.url}/openapi.json)", flush=True)
    if server.ca_file:
        print(f"CA certificate: {server.ca_file}", flush=True)
    print(f"signing key sha256 (server.signing_key_sha256 in kiosk-provision.toml): "
          f"{server.signing_key_fingerprint}", flush=True)
    print(f"SMS log: {server.sms_log}", flush=True)
    for _ in range(args.tokens):
        print(f"enrolment token: {server.issue_enrolment_token()}", flush=True)
    server.serve_forever()
    return 0
