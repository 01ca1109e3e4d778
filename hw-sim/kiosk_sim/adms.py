"""A minimal ZKTeco PUSH/ADMS server on 127.0.0.1, the HR-system side the kiosk's ADMS adapter talks to.

Written from the public protocol description, independently of the kiosk's codec, so the two
sides check each other. It answers the handshake with options, stores ATTLOG rows once per
(user, time), hands queued commands to ``getrequest`` polls, records ``devicecmd`` results, and
can be told to fail: HTTP 500, an outage (connection closed unanswered), or a dropped ``OK``
(rows stored, then the connection closed before the answer).

Python API for tests: ``with AdmsServer() as server: server.url, server.enqueue(sn, "INFO"),
server.records(), server.results, server.inject("drop_ok")``. Developers can drive a running
one over HTTP: ``GET /sim/state`` (JSON) and ``POST /sim/command?SN=<sn>`` (body: command text).
"""

import json
import logging
import socket
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from kiosk import argtypes

log = logging.getLogger(__name__)

FAULTS = ("http500", "outage", "drop_ok")
DEFAULT_OPTIONS = {
    "OPERLOGStamp": "None",
    "ATTPHOTOStamp": "None",
    "ErrorDelay": "30",
    "Delay": "10",
    "TransTimes": "00:00;14:05",
    "TransInterval": "1",
    "TransFlag": "TransData AttLog OpLog",
    "TimeZone": "3",
    "Realtime": "1",
    "Encrypt": "0",
    "ServerVer": "kiosk-sim-adms 1.0",
    "PushProtVer": "2.4.1",
}


class AdmsServer:
    """The simulated ADMS server: a ThreadingHTTPServer plus the state tests inspect."""

    def __init__(self, *, host="127.0.0.1", port=0, options=None):
        self.options = {**DEFAULT_OPTIONS, **{k: str(v) for k, v in (options or {}).items()}}
        self._lock = threading.Condition()
        self._stamps = {}          # sn -> last ATTLOG Stamp received with a stored batch
        self._records = []         # stored rows, first arrival only
        self._seen = set()         # (pin, time)
        self.rows_received = 0     # every row posted, duplicates included
        self.duplicates = 0
        self.handshakes = []       # sn of each handshake
        self.heartbeats = []       # (sn, INFO value or None) of each getrequest
        self.requests = []         # (method, path, {param: value})
        self._queue = {}           # sn -> [(id, text)] not yet handed out
        self.sent_commands = {}    # id -> (sn, text) handed out
        self.results = {}          # id -> {"sn", "code", "cmd", "data": {..}}
        self._next_id = 1
        self._faults = []          # [kind, endpoint or None, remaining]
        self.down = False          # True: every request is closed unanswered
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = None
        self._closed = False

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def url(self):
        return f"http://{self._httpd.server_address[0]}:{self.port}"

    def start(self):
        """Serve on a daemon thread; returns self."""
        if self._thread is None:
            # a short poll interval so close() (and each test) does not wait half a second
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="adms-sim", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self):
        self._httpd.serve_forever()

    def close(self):
        """Stop serving and free the port; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ test API

    def set_stamp(self, sn, value):
        """Pretend the server already holds rows up to this stamp (None: nothing)."""
        with self._lock:
            self._stamps[sn] = value

    def stamp(self, sn):
        with self._lock:
            return self._stamps.get(sn)

    def records(self):
        """Stored rows (dicts: sn, pin, time, status, verify, workcode), in arrival order."""
        with self._lock:
            return [dict(r) for r in self._records]

    def enqueue(self, sn, text):
        """Queue a command for device ``sn``; returns its id (str)."""
        with self._lock:
            command_id = str(self._next_id)
            self._next_id += 1
            self._queue.setdefault(sn, []).append((command_id, text))
            return command_id

    def wait_for_result(self, command_id, timeout_s=5.0):
        """Block until the device posted a result for ``command_id``; the result dict or None."""
        with self._lock:
            self._lock.wait_for(lambda: command_id in self.results, timeout=timeout_s)
            return self.results.get(command_id)

    def wait_for_records(self, count, timeout_s=5.0):
        """Block until at least ``count`` rows are stored; True if they are."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._records) >= count, timeout=timeout_s)

    def inject(self, kind, *, count=1, endpoint=None):
        """Fail the next ``count`` matching requests: 'http500', 'outage' or 'drop_ok' (ATTLOG posts).

        ``endpoint`` limits the fault to 'handshake', 'attlog', 'getrequest' or 'devicecmd'.
        """
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(FAULTS)})")
        if kind == "drop_ok":
            endpoint = "attlog"
        with self._lock:
            self._faults.append([kind, endpoint, count])

    def state(self):
        """A JSON-able summary (also served at /sim/state)."""
        with self._lock:
            return {"stamps": dict(self._stamps), "records": len(self._records),
                    "rows_received": self.rows_received, "duplicates": self.duplicates,
                    "queued": {sn: [c for c in q] for sn, q in self._queue.items()},
                    "results": dict(self.results), "handshakes": len(self.handshakes),
                    "heartbeats": len(self.heartbeats), "options": dict(self.options), "down": self.down}

    # ------------------------------------------------------------ protocol (called by the handler)

    def _take_fault(self, endpoint, kinds):
        with self._lock:
            if self.down:
                return "outage"
            for fault in self._faults:
                kind, where, remaining = fault
                if kind in kinds and where in (None, endpoint) and remaining > 0:
                    fault[2] -= 1
                    if fault[2] == 0:
                        self._faults.remove(fault)
                    return kind
        return None

    def handshake(self, sn):
        with self._lock:
            self.handshakes.append(sn)
            stamp = self._stamps.get(sn)
            lines = [f"GET OPTION FROM: {sn}", f"ATTLOGStamp={'None' if stamp is None else stamp}"]
            lines += [f"{key}={value}" for key, value in self.options.items()]
        return "\n".join(lines) + "\n"

    def ingest_attlog(self, sn, stamp, body):
        """Store new rows, count all; returns the number of rows processed."""
        processed = 0
        with self._lock:
            for line in body.splitlines():
                fields = line.split("\t")
                if len(fields) < 4 or not fields[0].strip():
                    continue
                try:
                    datetime.strptime(fields[1], "%Y-%m-%d %H:%M:%S")
                    status, verify = int(fields[2]), int(fields[3])
                except ValueError:
                    log.warning("ATTLOG from %s: malformed row skipped", sn)
                    continue
                processed += 1
                self.rows_received += 1
                key = (fields[0], fields[1])
                if key in self._seen:
                    self.duplicates += 1
                    continue
                self._seen.add(key)
                self._records.append(dict(sn=sn, pin=fields[0], time=fields[1], status=status, verify=verify,
                                          workcode=fields[4] if len(fields) > 4 else "0"))
            if stamp is not None and stamp.strip().lstrip("-").isdigit():
                self._stamps[sn] = int(stamp)
            self._lock.notify_all()
        return processed

    def commands_for(self, sn, info):
        with self._lock:
            self.heartbeats.append((sn, info))
            queued = self._queue.pop(sn, [])
            for command_id, text in queued:
                self.sent_commands[command_id] = (sn, text)
        if not queued:
            return "OK"
        return "\n".join(f"C:{command_id}:{text}" for command_id, text in queued) + "\n"

    def store_results(self, sn, body):
        current = None
        with self._lock:
            for line in body.splitlines():
                line = line.strip()
                if line.startswith("ID="):
                    fields = {k: v[0] for k, v in parse_qs(line, keep_blank_values=True).items()}
                    try:
                        code = int(fields.get("Return", ""))
                    except ValueError:
                        code = None
                    current = {"sn": sn, "code": code, "cmd": fields.get("CMD", ""), "data": {}}
                    self.results[fields.get("ID", "")] = current
                elif current is not None and "=" in line:
                    key, _, value = line.partition("=")
                    current["data"][key] = value
            self._lock.notify_all()


def _handler_for(server):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "kiosk-sim-adms/1.0"

        def setup(self):
            super().setup()
            # headers and body go out in two writes: without NODELAY, Nagle + delayed ACK add ~40 ms
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, fmt, *args):
            log.debug("%s " + fmt, self.address_string(), *args)

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def _dispatch(self, method):
            parsed = urlparse(self.path)
            params = {k: v[0] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
            with server._lock:
                server.requests.append((method, parsed.path, params))
            path = parsed.path.rstrip("/")
            sn = params.get("SN", "")
            if path.startswith("/sim"):
                return self._sim(method, path, params, body)
            if path == "/iclock/cdata" and method == "GET":
                endpoint = "handshake"
            elif path == "/iclock/cdata" and method == "POST":
                endpoint = "attlog" if params.get("table", "").upper() == "ATTLOG" else "cdata"
            elif path == "/iclock/getrequest":
                endpoint = "getrequest"
            elif path == "/iclock/devicecmd" and method == "POST":
                endpoint = "devicecmd"
            else:
                return self._reply(404, "not found\n")
            if not sn:
                return self._reply(400, "missing SN\n")
            fault = server._take_fault(endpoint, ("http500", "outage"))
            if fault == "outage":
                return self._drop()
            if fault == "http500":
                return self._reply(500, "simulated server error\n")
            if endpoint == "handshake":
                return self._reply(200, server.handshake(sn))
            if endpoint == "attlog":
                count = server.ingest_attlog(sn, params.get("Stamp"), body)
                if server._take_fault(endpoint, ("drop_ok",)) == "drop_ok":
                    return self._drop()
                return self._reply(200, f"OK: {count}\n")
            if endpoint == "cdata":
                return self._reply(200, f"OK: {len([l for l in body.splitlines() if l.strip()])}\n")
            if endpoint == "getrequest":
                return self._reply(200, server.commands_for(sn, params.get("INFO")))
            server.store_results(sn, body)
            return self._reply(200, "OK\n")

        def _sim(self, method, path, params, body):
            if path == "/sim/state" and method == "GET":
                return self._reply(200, json.dumps(server.state(), indent=1) + "\n", "application/json")
            if path == "/sim/command" and method == "POST" and params.get("SN") and body.strip():
                return self._reply(200, server.enqueue(params["SN"], body.strip()) + "\n")
            return self._reply(404, "GET /sim/state | POST /sim/command?SN=<sn> (body: command)\n")

        def _reply(self, code, text, content_type="text/plain"):
            data = text.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _drop(self):
            # close the connection without a single byte of answer: the client cannot tell
            # whether the request was processed
            self.close_connection = True

    return Handler


def register(subparsers):
    """Add `kiosk-sim adms`."""
    parser = subparsers.add_parser("adms", help="a minimal ZKTeco PUSH/ADMS server (HR side) on 127.0.0.1",
                                   description="Serve the ZKTeco PUSH/ADMS protocol on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--port", type=argtypes.port_number, default=8081, help="TCP port (default 8081; 0 = any free port)")
    parser.add_argument("--timezone", default=DEFAULT_OPTIONS["TimeZone"],
                        help="TimeZone option sent at handshake, hours east of UTC (default %(default)s)")
    parser.add_argument("--delay", type=argtypes.non_negative_float, default=float(DEFAULT_OPTIONS["Delay"]),
                        help="Delay option: seconds between command polls (default %(default)s)")
    parser.add_argument("--error-delay", type=argtypes.non_negative_float, default=float(DEFAULT_OPTIONS["ErrorDelay"]),
                        help="ErrorDelay option: seconds to wait after an error (default %(default)s)")
    parser.set_defaults(func=run)
    return parser


def run(args):
    """Serve until interrupted (Ctrl-C)."""
    options = {"TimeZone": args.timezone, "Delay": f"{args.delay:g}", "ErrorDelay": f"{args.error_delay:g}"}
    try:
        server = AdmsServer(port=args.port, options=options)
    except OSError as e:
        raise OSError(e.errno, f"cannot listen on 127.0.0.1:{args.port}: {e.strerror}") from None
    print(f"ADMS simulator on {server.url} (state: {server.url}/sim/state)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0
