"""Control socket of a running `kiosk-sim sensor`, and the `kiosk-sim sensor-ctl` command.

The socket is a Unix stream socket speaking one JSON object per line each way. A request
names a command and its arguments; the answer is ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``.
"""

import argparse
import json
import logging
import os
import socket
import sys
import threading
from pathlib import Path

from kiosk import argtypes

log = logging.getLogger(__name__)

DEFAULT_CONTROL = Path("/tmp/kiosk-sim-sensor.ctl")

CONTROL_HELP = """\
control interface:
  A running simulator listens on a Unix control socket (LINK.ctl next to --link, or --control).
  Drive it with `kiosk-sim sensor-ctl`:
    kiosk-sim sensor-ctl --link /tmp/sensor place FVC2002_DB1_B/101 --impression 2
    kiosk-sim sensor-ctl --link /tmp/sensor place FVC2002_DB1_B/102 --condition wet
    kiosk-sim sensor-ctl --link /tmp/sensor place image:/path/to/finger.bmp    (any image file)
    kiosk-sim sensor-ctl --link /tmp/sensor lift
    kiosk-sim sensor-ctl --link /tmp/sensor fault silence        (unplugged: no answers)
    kiosk-sim sensor-ctl --link /tmp/sensor fault bad_checksum --count 1
    kiosk-sim sensor-ctl --link /tmp/sensor clear                (all faults off)
    kiosk-sim sensor-ctl --link /tmp/sensor status
    kiosk-sim sensor-ctl --link /tmp/sensor fingers              (identities available)
  or send one JSON object per line to the socket, e.g. {"cmd": "place", "finger": "FVC2002_DB1_B/101",
  "impression": 1}. Faults: bad_checksum, truncated, silence, busy, wrong_password, garbage,
  stream (endless data packets instead of a reply).
  Finger conditions: clean, wet, oily, dirty change the image; the module's answer (image too
  messy, too few features) comes from measuring it. moved: the capture fails."""


def default_control_path(link=None):
    """LINK.ctl for a simulator with a --link, else /tmp/kiosk-sim-sensor.ctl."""
    if link:
        link = Path(link)
        return link.with_name(link.name + ".ctl")
    return DEFAULT_CONTROL


def execute(sim, request):
    """Apply one control request to a simulator; returns the JSON-friendly answer."""
    cmd = request.get("cmd")
    try:
        if cmd == "place":
            sim.place_finger(request["finger"], int(request.get("impression", 1)),
                             condition=request.get("condition", "clean"))
        elif cmd == "lift":
            sim.lift_finger()
        elif cmd == "condition":
            sim.set_condition(request["condition"])
        elif cmd == "fault":
            count = request.get("count")
            sim.set_fault(request["kind"], count=None if count is None else int(count))
        elif cmd == "clear":
            sim.clear_fault(request.get("kind"))
        elif cmd == "fingers":
            return {"ok": True, "fingers": sim.catalog.identities()}
        elif cmd != "status":
            return {"ok": False, "error": f"unknown command {cmd!r}"}
    except (KeyError, TypeError, ValueError) as e:
        return {"ok": False, "error": f"{cmd}: {e}"}
    return {"ok": True, "status": sim.status()}


class ControlServer:
    """Serve control requests for one simulator on a Unix socket, from a background thread."""

    def __init__(self, sim, path):
        self.sim = sim
        self.path = Path(path)
        if self.path.is_socket():
            self.path.unlink()  # left behind by a simulator that was killed
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(self.path))
        os.chmod(self.path, 0o660)
        self._sock.listen(4)
        self._sock.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="r30x-control", daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("expected a JSON object")
                except ValueError as e:
                    answer = {"ok": False, "error": f"bad request: {e}"}
                else:
                    answer = execute(self.sim, request)
                stream.write(json.dumps(answer).encode() + b"\n")
                stream.flush()

    def close(self):
        if self._stop.is_set():
            return
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2)
        self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def send(path, request, *, timeout_s=5.0):
    """Send one request to a simulator's control socket and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        with sock.makefile("rwb") as stream:
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            line = stream.readline()
    if not line:
        raise ConnectionError(f"{path}: the simulator closed the connection")
    return json.loads(line)


def register(subparsers):
    """Add `kiosk-sim sensor-ctl`."""
    parser = subparsers.add_parser(
        "sensor-ctl", help="place/lift fingers and switch faults on a running `kiosk-sim sensor`",
        description="Drive a running fingerprint sensor simulator through its control socket.",
        epilog=CONTROL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--control", type=Path, help=f"control socket path (default {DEFAULT_CONTROL})")
    where.add_argument("--link", type=Path, help="the simulator's --link path (socket is LINK.ctl)")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    place = sub.add_parser("place", help="put a finger on the glass")
    place.add_argument("finger", help='identity: dataset folder/prefix, e.g. "FVC2002_DB1_B/101", '
                       'or image:PATH for any image file')
    place.add_argument("--impression", type=argtypes.int_range(1, 8), default=1, help="impression number 1-8 (default 1)")
    place.add_argument("--condition", default="clean", help="clean, wet, oily, dirty or moved (default clean)")
    sub.add_parser("lift", help="take the finger off")
    condition = sub.add_parser("condition", help="change the condition of the finger on the glass")
    condition.add_argument("condition", help="clean, wet, oily, dirty or moved")
    fault = sub.add_parser("fault", help="switch a fault on")
    fault.add_argument("kind", help="bad_checksum, truncated, silence, busy, wrong_password, garbage or stream")
    fault.add_argument("--count", type=argtypes.positive_int, help="only for the next COUNT replies (default: until cleared)")
    clear = sub.add_parser("clear", help="switch faults off (all, or one KIND)")
    clear.add_argument("kind", nargs="?", help="the fault to clear (default: all)")
    sub.add_parser("status", help="print the simulator's state as JSON")
    sub.add_parser("fingers", help="list the finger identities available")
    parser.set_defaults(func=run)


def run(args):
    """Send one command; print the answer; exit 0 if it succeeded."""
    path = args.control or default_control_path(args.link)
    request = {"cmd": args.cmd}
    for key in ("finger", "impression", "condition", "kind", "count"):
        value = getattr(args, key, None)
        if value is not None:
            request[key] = value
    try:
        answer = send(path, request)
    except OSError as e:
        print(f"sensor-ctl: cannot reach the simulator at {path}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2))
    return 0 if answer.get("ok") else 1
