"""R30x/ZFM fingerprint module simulator on a pseudo-terminal.

The simulator plays the module's side of the UART: any client that opens ``sim.port`` (the
pty's slave path) with pyserial, including the unmodified pyfingerprint library, talks to it
as to a real R307/R503/AS608. Tests drive the finger on the glass and inject faults::

    with SensorSimulator(capacity=50, library_path=tmp / "lib.json", speed=0) as sim:
        sim.place_finger("FVC2002_DB1_B/101", impression=1)
        ...  # PyFingerprint(sim.port, 57600, 0xFFFFFFFF, 0)
        sim.set_fault("silence")  # unplugged: no answer at all
        sim.clear_fault()  # plugged in again (the module powers up)

``kiosk-sim sensor`` runs one on its own; ``kiosk-sim sensor-ctl`` drives it (see
``kiosk_sim.r30x_control``).
"""

import argparse
import fcntl
import logging
import os
import random
import select
import signal
import sys
import threading
import time
import tty
from pathlib import Path

from kiosk_sim import r30x_minutiae
from kiosk_sim import r30x_protocol as p
from kiosk_sim.r30x_fingers import FingerCatalog, Matcher
from kiosk_sim.r30x_library import MODEL_CAPACITY, TemplateLibrary
from kiosk_sim.r30x_module import Faults, ModuleLogic, Timing

from kiosk import argtypes

log = logging.getLogger(__name__)

WRITE_STALL_S = 5.0  # give up a reply nobody reads for this long (the host went away)


STREAM_S = 60.0  # a "stream" fault sends data packets this long, or until it is cleared


class LinkInUseError(RuntimeError):
    """Another running simulator owns the ``--link`` path."""


class SensorSimulator:
    """One simulated fingerprint module serving a pseudo-terminal from a background thread."""

    def __init__(self, *, model="R307", capacity=None, library_path=None, speed=1.0, seed=0,
                 false_reject_rate=0.0, false_accept_rate=0.0, fingers_dir=None, link=None,
                 password=None, timing=None):
        if model not in MODEL_CAPACITY:
            raise ValueError(f"unknown model {model!r} (known: {', '.join(MODEL_CAPACITY)})")
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 = no delays, 1 = datasheet timing)")
        self.model = model
        self.speed = float(speed)
        self.link = Path(link) if link else None
        self.library = TemplateLibrary(capacity=capacity or MODEL_CAPACITY[model], path=library_path)
        if password is not None:
            self.library.set_setting("password", password)
        self.faults = Faults()
        self.catalog = FingerCatalog(fingers_dir)
        self.matcher = Matcher(false_reject_rate=false_reject_rate, false_accept_rate=false_accept_rate,
                               seed=seed)
        self.logic = ModuleLogic(model=model, library=self.library, matcher=self.matcher,
                                 catalog=self.catalog, faults=self.faults, timing=timing or Timing(),
                                 seed=seed)
        self._rng = random.Random(seed ^ 0x5EED)
        self._master = self._slave = None
        self._wake_r = self._wake_w = None
        self._thread = None
        self._stop = threading.Event()
        self._stream_cleared = threading.Event()
        self._port = None
        self._link_lock = None
        self.packets_received = 0
        self.replies_sent = 0

    # -- life cycle --------------------------------------------------------------------------

    def start(self):
        """Create the pseudo-terminal (and the link) and start serving; returns self."""
        if self._thread is not None:
            return self
        if self.link is not None:
            self._link_lock = _lock_link(self.link)
        self._master, self._slave = os.openpty()
        # Raw on both sides: no echo, no line editing, all 256 byte values pass. The slave stays
        # open here so the master never sees EOF/EIO while no client has the port open.
        tty.setraw(self._master)
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self._port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        if self.link is not None:
            _replace_symlink(self.link, self._port)
        self._thread = threading.Thread(target=self._serve, name="r30x-sim", daemon=True)
        self._thread.start()
        log.info("R30x simulator (%s, %d slots) on %s", self.model, self.library.capacity, self._port)
        return self

    @property
    def port(self):
        """Path of the serial port clients open (the pty slave)."""
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    def close(self):
        """Stop serving and release the pseudo-terminal; safe to call twice."""
        if self._thread is None:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._thread = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link is not None and self.link.is_symlink() and os.readlink(self.link) == self._port:
            self.link.unlink()
        if self._link_lock is not None:
            _lock_path(self.link).unlink(missing_ok=True)
            os.close(self._link_lock)  # closing releases the lock
            self._link_lock = None
        log.info("R30x simulator on %s closed", self._port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- what tests and the control socket drive ---------------------------------------------

    def place_finger(self, identity, impression=1, *, condition="clean"):
        """Put a finger on the glass: ``identity`` like "FVC2002_DB1_B/101", impression 1-8."""
        r30x_minutiae.warm_up(background=True)  # the matcher's first use comes soon: load it meanwhile
        self.logic.place_finger(identity, impression, condition)

    def lift_finger(self):
        self.logic.lift_finger()

    def set_condition(self, condition):
        """Change the finger's condition (clean, wet, oily, dirty, moved) without lifting it."""
        finger = self.logic.finger
        if finger is None:
            raise ValueError("no finger on the sensor")
        self.logic.place_finger(finger.identity, finger.impression, condition)

    def set_fault(self, kind, *, count=None):
        """Switch a fault on until cleared, or for the next ``count`` replies."""
        self.faults.set(kind, count)
        if kind == "stream":
            self._stream_cleared.clear()
        if kind in ("silence", "wrong_password"):
            self.logic.power_on()  # unplugged, or another module: the session is gone

    def clear_fault(self, kind=None):
        """Switch one fault (or all) off; ending silence powers the module up again."""
        was_silent = self.faults.active("silence")
        self.faults.clear(kind)
        if kind in (None, "stream"):
            self._stream_cleared.set()
        if was_silent and not self.faults.active("silence"):
            self.logic.power_on()

    @property
    def finger(self):
        return self.logic.finger

    @property
    def led(self):
        return self.logic.led

    def status(self):
        """A JSON-friendly summary of the simulator's state."""
        finger = self.logic.finger
        return {
            "model": self.model,
            "port": self._port,
            "link": str(self.link) if self.link else None,
            "capacity": self.library.capacity,
            "template_count": self.library.count(),
            "slots": self.library.slots(),
            "finger": None if finger is None else vars(finger).copy(),
            "faults": self.faults.snapshot(),
            "led": self.logic.led,
            "security_level": self.library.settings["security_level"],
            "packet_size": self.logic.packet_size,
            "speed": self.speed,
            "packets_received": self.packets_received,
            "replies_sent": self.replies_sent,
        }

    # -- the serving thread ------------------------------------------------------------------

    def _serve(self):
        reader = p.PacketReader()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master, self._wake_r], [], [], 1.0)
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
                continue
            if self._master not in ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError as e:
                log.debug("pty read failed: %s", e)
                self._stop.wait(0.05)
                continue
            reader.feed(data)
            while not self._stop.is_set():
                try:
                    packet = reader.next_packet()
                except p.BadPacket as e:
                    self.packets_received += 1
                    if not self.faults.take("silence"):
                        log.debug("host sent a bad packet: %s", e)
                        self._reply(self.logic.bad_packet())
                    continue
                if packet is None:
                    break
                self.packets_received += 1
                if self.speed:  # the packet's time on the wire from the host
                    self._stop.wait((len(packet.payload) + 11) * 10 / self.logic.baud * self.speed)
                if self.faults.take("silence"):
                    continue
                started = time.monotonic()
                reply = self.logic.handle(packet)
                # the module's processing time is modelled: the simulator's own computing counts toward it
                reply.delay_s = max(0.0, reply.delay_s - (time.monotonic() - started) / (self.speed or 1))
                if self._reply(reply) == "streamed":
                    # busy streaming, the module heard nothing: commands sent meanwhile are lost
                    reader = p.PacketReader()
                    self._drain_input()
                    break

    def _reply(self, reply):
        if not reply.packets:
            return
        if self.speed and reply.delay_s:
            self._stop.wait(reply.delay_s * self.speed)
        if self.faults.take("stream"):
            self._stream()
            return "streamed"
        packets = list(reply.packets)
        if self.faults.take("bad_checksum"):
            first = bytearray(packets[0])
            first[-1] ^= 0x5A
            packets[0] = bytes(first)
        if self.faults.take("truncated"):
            packets = [packets[0][:len(packets[0]) // 2]]
        if self.faults.take("garbage"):
            noise = bytes([self._rng.randrange(0x00, 0xEF)]) + self._rng.randbytes(self._rng.randrange(4, 24))
            packets[0] = noise + packets[0]
        for packet in packets:
            if self.speed:
                self._stop.wait(len(packet) * 10 / self.logic.baud * self.speed)  # time on the wire
            if not self._write(packet):
                return
        self.replies_sent += 1

    def _stream(self):
        """A module gone wrong: instead of its reply, well-formed data packets without an end.

        Every read on the host side succeeds, so only a deadline on the whole call ends the
        host's wait. Lasts STREAM_S, until the fault is cleared, or until nobody reads.
        """
        packet = p.encode(self.logic.address, p.DATA, bytes(self.logic.packet_size))
        until = time.monotonic() + STREAM_S
        while not self._stop.is_set() and not self._stream_cleared.is_set() and time.monotonic() < until:
            if self.speed:
                self._stop.wait(len(packet) * 10 / self.logic.baud * self.speed)
            if not self._write(packet):
                return

    def _drain_input(self):
        while True:
            try:
                if not os.read(self._master, 4096):
                    return
            except (BlockingIOError, OSError):
                return

    def _write(self, data):
        view = memoryview(data)
        stalled_since = None
        while view and not self._stop.is_set():
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                written = 0
            except OSError as e:
                log.debug("pty write failed: %s", e)
                return False
            if written:
                view = view[written:]
                stalled_since = None
                continue
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > WRITE_STALL_S:
                log.warning("nobody reads %s: reply dropped", self._port)
                return False
            select.select([self._wake_r], [self._master], [], 0.1)
        return not view


def start_simulator(**options):
    """Start a simulator (options as for SensorSimulator) and return it; call ``.close()``."""
    return SensorSimulator(**options).start()


def _lock_path(link):
    return link.with_name(link.name + ".lock")


def _lock_link(link):
    """Take LINK.lock for the life of this simulator; LinkInUseError if a running one holds it.

    The lock (not the symlink, which a killed simulator leaves behind) says whether the link is
    live: the kernel drops it when its holder exits, however it exits.
    """
    path = _lock_path(link)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise LinkInUseError(f"{link} is in use by another running simulator (pid {holder}); "
                             "stop it or choose another --link") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _replace_symlink(link, target):
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


# -- kiosk-sim sensor ----------------------------------------------------------------------------

def _fault_spec(text):
    kind, _, count = text.partition(":")
    if kind not in Faults.KINDS:
        raise argparse.ArgumentTypeError(f"unknown fault {kind!r} (known: {', '.join(Faults.KINDS)})")
    return kind, int(count) if count else None


def _finger_spec(text):
    identity, _, impression = text.rpartition(":") if text.count(":") else (text, "", "")
    return identity, int(impression) if impression else 1


def register(subparsers):
    """Add `kiosk-sim sensor`."""
    from kiosk_sim import r30x_control

    parser = subparsers.add_parser(
        "sensor", help="R30x/ZFM fingerprint module on a pseudo-terminal",
        description="Simulate an R30x/ZFM fingerprint module (R307, R503, AS608 ...) on a pseudo-terminal. "
                    "Prints the port path and serves until SIGTERM or Ctrl-C.",
        epilog=r30x_control.CONTROL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--link", type=Path, help="keep a symlink to the port here (a stable path for clients)")
    parser.add_argument("--library", type=Path, help="JSON file keeping the template library (default: in memory)")
    parser.add_argument("--capacity", type=argtypes.positive_int, help="template slots (default by model: "
                        + ", ".join(f"{m} {c}" for m, c in MODEL_CAPACITY.items()) + ")")
    parser.add_argument("--model", default="R307", choices=sorted(MODEL_CAPACITY),
                        help="module model; R503 also answers the LED ring command (default R307)")
    parser.add_argument("--fault", type=_fault_spec, action="append", default=[], metavar="KIND[:COUNT]",
                        help="start with a fault on: " + ", ".join(Faults.KINDS) + " (repeatable)")
    parser.add_argument("--speed", type=argtypes.non_negative_float, default=1.0,
                        help="timing factor: 1 = datasheet-like delays, 0 = answer at once (default 1)")
    parser.add_argument("--password", type=lambda s: int(s, 0), help="module password (e.g. 0x1234; default 0)")
    parser.add_argument("--frr", type=argtypes.probability, default=0.0, help="injected false-reject rate 0..1 (default 0)")
    parser.add_argument("--far", type=argtypes.probability, default=0.0, help="injected false-accept rate 0..1 (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the matcher's and module's randomness")
    parser.add_argument("--fingers", type=Path, help="finger dataset folder (default ../shared/datasets/fingers)")
    parser.add_argument("--finger", type=_finger_spec, metavar="IDENTITY[:IMPRESSION]",
                        help="start with this finger on the glass")
    parser.add_argument("--control", type=Path,
                        help=f"control socket (default: LINK.ctl with --link, else {r30x_control.DEFAULT_CONTROL})")
    parser.set_defaults(func=run)


def run(args):
    """Serve one simulator until SIGTERM/SIGINT."""
    from kiosk_sim import r30x_control

    sim = SensorSimulator(model=args.model, capacity=args.capacity, library_path=args.library, speed=args.speed,
                          seed=args.seed, false_reject_rate=args.frr, false_accept_rate=args.far,
                          fingers_dir=args.fingers, link=args.link, password=args.password)
    for kind, count in args.fault:
        sim.set_fault(kind, count=count)
    if args.finger:
        sim.place_finger(*args.finger)
    control_path = args.control or r30x_control.default_control_path(args.link)
    try:
        sim.start()  # takes the link's lock before anything of the link is touched
    except LinkInUseError as e:
        print(f"kiosk-sim sensor: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with sim, r30x_control.ControlServer(sim, control_path):
            print(f"port: {sim.port}", flush=True)
            if args.link:
                print(f"link: {args.link}", flush=True)
            print(f"control: {control_path}", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0
