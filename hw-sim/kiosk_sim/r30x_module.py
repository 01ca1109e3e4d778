"""The module's side of the R30x protocol: instructions, buffers, the finger on the glass.

``ModuleLogic.handle(packet)`` takes one decoded packet from the host and returns a ``Reply``:
the packets to send back and how long the module would take before answering. It knows
nothing about pseudo-terminals or byte-level faults (see ``r30x.SensorSimulator``), only
about what a real module does with each instruction.
"""

import logging
import random
import threading
from dataclasses import dataclass, field

from kiosk_sim import r30x_fingers as fingers
from kiosk_sim import r30x_minutiae as minutiae
from kiosk_sim import r30x_protocol as p
from kiosk_sim.r30x_library import LED_MODELS

log = logging.getLogger(__name__)


@dataclass
class Timing:
    """Datasheet-like processing times in seconds, before the simulator's speed factor."""

    gen_img_s: float = 0.3  # image acquisition with a finger (datasheet < 0.3-0.5 s)
    gen_img_empty_s: float = 0.1  # GenImg that finds no finger
    img2tz_s: float = 0.25
    reg_model_s: float = 0.1
    match_s: float = 0.05
    search_base_s: float = 0.1
    search_per_slot_s: float = 0.0002  # 1000 slots: 0.3 s in all (datasheet < 1 s)
    store_s: float = 0.05  # flash write
    load_char_s: float = 0.02
    delete_s: float = 0.05
    empty_s: float = 0.3
    quick_s: float = 0.005  # password, parameters, counts, random number, LED


@dataclass
class Finger:
    """What lies on the sensor glass."""

    identity: str
    impression: int = 1
    condition: str = "clean"


@dataclass
class Reply:
    """Packets (already encoded) to send, after ``delay_s`` of processing."""

    packets: list = field(default_factory=list)
    delay_s: float = 0.0


@dataclass
class _Capture:
    identity: str
    impression: int
    condition: str


class Faults:
    """Run-time fault switches; each is on until cleared, or for the next ``count`` replies."""

    KINDS = ("bad_checksum", "truncated", "silence", "busy", "wrong_password", "garbage", "stream")

    def __init__(self):
        self._left = {}  # kind -> remaining count (None = until cleared)
        self._lock = threading.Lock()

    def set(self, kind, count=None):
        if kind not in self.KINDS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(self.KINDS)})")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._left[kind] = count

    def clear(self, kind=None):
        with self._lock:
            if kind is None:
                self._left.clear()
            else:
                self._left.pop(kind, None)

    def active(self, kind):
        with self._lock:
            return kind in self._left

    def take(self, kind):
        """True if the fault applies to this reply (and count one use of it)."""
        with self._lock:
            if kind not in self._left:
                return False
            left = self._left[kind]
            if left is not None:
                if left <= 1:
                    del self._left[kind]
                else:
                    self._left[kind] = left - 1
            return True

    def snapshot(self):
        with self._lock:
            return dict(self._left)


class ModuleLogic:
    """Instruction handling of one simulated module."""

    def __init__(self, *, model, library, matcher, catalog, faults, timing=None, seed=0):
        self.model = model
        self.library = library
        self.matcher = matcher
        self.catalog = catalog
        self.faults = faults
        self.timing = timing or Timing()
        self.finger = None
        self.led = None  # last AuraLedConfig (ctrl, speed, color, count), R503 only
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self.power_on()

    # -- state the test harness drives -------------------------------------------------------

    def power_on(self):
        """Volatile state after power-up: empty buffers, password not yet verified."""
        with self._lock:
            self.buffers = {1: bytes(fingers.TEMPLATE_LEN), 2: bytes(fingers.TEMPLATE_LEN)}
            self.image = None
            self.verified = False
            self._receiving = None  # (target, bytearray) while DownChar data is arriving

    def place_finger(self, identity, impression=1, condition="clean"):
        if condition not in fingers.CONDITIONS:
            raise ValueError(f"unknown condition {condition!r} (known: {', '.join(fingers.CONDITIONS)})")
        self.catalog.check(identity, impression)
        with self._lock:
            self.finger = Finger(identity, impression, condition)

    def lift_finger(self):
        with self._lock:
            self.finger = None

    @property
    def address(self):
        return self.library.settings["address"]

    @property
    def packet_size(self):
        return p.PACKET_SIZES[self.library.settings["packet_size_code"]]

    @property
    def baud(self):
        return 9600 * self.library.settings["baud_factor"]

    # -- packets -----------------------------------------------------------------------------

    def bad_packet(self):
        """The host sent a packet whose checksum was wrong: say so."""
        return self._ack(p.ERR_RECEIVE)

    def handle(self, packet):
        """The reply to one packet from the host (possibly no packets at all)."""
        with self._lock:
            if packet.address != self.address:
                log.debug("ignoring a packet for address %#010x", packet.address)
                return Reply()
            if packet.kind in (p.DATA, p.END):
                return self._receive_data(packet)
            if packet.kind != p.COMMAND or not packet.payload:
                return Reply()
            if self._receiving is not None:
                log.debug("command during a data transfer: transfer abandoned")
                self._receiving = None
            instruction, args = packet.payload[0], packet.payload[1:]
            if instruction != p.READ_SYS_PARA and self.faults.take("busy"):
                return self._ack(p.ERR_CANNOT_RECEIVE)
            if instruction == p.VFY_PWD:
                handler = ModuleLogic._verify_password
            elif self._password_required() and instruction not in (p.READ_SYS_PARA, p.GET_RANDOM):
                return self._ack(p.ERR_PASSWORD_REQUIRED)
            else:
                handler = self._HANDLERS.get(instruction)
            if handler is None or (instruction == p.AURA_LED_CONFIG and self.model not in LED_MODELS):
                return self._ack(p.ERR_UNSUPPORTED)
            try:
                return handler(self, args)
            except IndexError:  # a command packet shorter than its instruction needs
                return self._ack(p.ERR_RECEIVE)

    def _password_required(self):
        if self.verified:
            return False
        return self.library.settings["password"] != 0 or self.faults.active("wrong_password")

    def _ack(self, code, data=b"", delay_s=None):
        delay_s = self.timing.quick_s if delay_s is None else delay_s
        return Reply([p.encode(self.address, p.ACK, bytes([code]) + bytes(data))], delay_s)

    def _data(self, blob):
        """Data packets of the configured size, the last one an end packet."""
        size = self.packet_size
        chunks = [blob[i:i + size] for i in range(0, len(blob), size)] or [b""]
        return [p.encode(self.address, p.END if i == len(chunks) - 1 else p.DATA, chunk)
                for i, chunk in enumerate(chunks)]

    def _receive_data(self, packet):
        if self._receiving is None:
            return Reply()
        target, collected = self._receiving
        collected += packet.payload
        if packet.kind == p.END:
            self._receiving = None
            if target in (1, 2):
                self.buffers[target] = bytes(collected)
        return Reply()

    @staticmethod
    def _uint(args, at, size):
        if len(args) < at + size:
            raise IndexError("command packet too short")
        return int.from_bytes(bytes(args[at:at + size]), "big")

    @classmethod
    def _u16(cls, args, at):
        return cls._uint(args, at, 2)

    @staticmethod
    def _buffer_id(args):
        return args[0] if args[0] in (1, 2) else None

    # -- instructions ------------------------------------------------------------------------

    def _verify_password(self, args):
        password = self._uint(args, 0, 4)
        if self.faults.take("wrong_password") or password != self.library.settings["password"]:
            self.verified = False
            return self._ack(p.ERR_WRONG_PASSWORD)
        self.verified = True
        return self._ack(p.OK)

    def _read_sys_para(self, args):
        s = self.library.settings
        status = 0
        if self.faults.active("busy"):
            status |= p.STATUS_BUSY
        if self.verified:
            status |= p.STATUS_PASSWORD_OK
        if self.image is not None:
            status |= p.STATUS_IMAGE_OK
        data = (status.to_bytes(2, "big") + (0).to_bytes(2, "big") + self.library.capacity.to_bytes(2, "big")
                + s["security_level"].to_bytes(2, "big") + s["address"].to_bytes(4, "big")
                + s["packet_size_code"].to_bytes(2, "big") + s["baud_factor"].to_bytes(2, "big"))
        return self._ack(p.OK, data)

    def _set_sys_para(self, args):
        register, value = args[0], args[1]
        limits = {p.REG_BAUD: ("baud_factor", 1, 12), p.REG_SECURITY: ("security_level", 1, 5),
                  p.REG_PACKET_SIZE: ("packet_size_code", 0, 3)}
        if register not in limits:
            return self._ack(p.ERR_INVALID_REGISTER)
        name, low, high = limits[register]
        if not low <= value <= high:
            return self._ack(0x1B)  # incorrect configuration of register
        reply = self._ack(p.OK, delay_s=self.timing.store_s)  # answered before the change applies
        self.library.set_setting(name, value)
        return reply

    def _set_password(self, args):
        self.library.set_setting("password", self._uint(args, 0, 4))
        return self._ack(p.OK, delay_s=self.timing.store_s)

    def _set_address(self, args):
        self.library.set_setting("address", self._uint(args, 0, 4))
        return self._ack(p.OK, delay_s=self.timing.store_s)  # sent from the new address

    def _template_count(self, args):
        return self._ack(p.OK, self.library.count().to_bytes(2, "big"))

    def _read_index_table(self, args):
        page = args[0]
        if page > 3:
            return self._ack(p.ERR_RECEIVE)
        return self._ack(p.OK, self.library.index_page(page))

    def _gen_img(self, args):
        finger = self.finger
        if finger is None:
            self.image = None
            return self._ack(p.ERR_NO_FINGER, delay_s=self.timing.gen_img_empty_s)
        if finger.condition == "moved":
            self.image = None
            return self._ack(p.ERR_IMAGE_FAIL, delay_s=self.timing.gen_img_s)
        self.image = _Capture(finger.identity, finger.impression, finger.condition)
        return self._ack(p.OK, delay_s=self.timing.gen_img_s)

    def _img2tz(self, args):
        buffer_id = self._buffer_id(args)
        if buffer_id is None:
            return self._ack(p.ERR_RECEIVE)
        delay = self.timing.img2tz_s
        capture = self.image
        if capture is None:
            return self._ack(p.ERR_INVALID_IMAGE, delay_s=delay)
        image = self.catalog.image(capture.identity, capture.impression, capture.condition)
        problem = minutiae.guidance(image)  # measured on the image, whatever made it so
        if problem == "messy":
            return self._ack(p.ERR_IMAGE_MESSY, delay_s=delay)
        record = fingers.character_file(image)
        if problem == "few" or minutiae.minutiae_count(record) < minutiae.MIN_MINUTIAE:
            return self._ack(p.ERR_FEW_FEATURES, delay_s=delay)
        self.buffers[buffer_id] = record
        return self._ack(p.OK, delay_s=delay)

    def _match(self, args):
        level = self.library.settings["security_level"]
        accepted, score = self.matcher.compare(self.buffers[1], self.buffers[2], level)
        code = p.OK if accepted else p.ERR_NO_MATCH
        return self._ack(code, (score if accepted else 0).to_bytes(2, "big"), self.timing.match_s)

    def _reg_model(self, args):
        level = self.library.settings["security_level"]
        if fingers.raw_score(self.buffers[1], self.buffers[2]) < fingers.THRESHOLDS[level]:
            return self._ack(p.ERR_MERGE, delay_s=self.timing.reg_model_s)
        template = fingers.merge(self.buffers[1], self.buffers[2])
        self.buffers[1] = self.buffers[2] = template
        return self._ack(p.OK, delay_s=self.timing.reg_model_s)

    def _store(self, args):
        buffer_id, slot = self._buffer_id(args), self._u16(args, 1)
        if buffer_id is None:
            return self._ack(p.ERR_RECEIVE)
        if slot >= self.library.capacity:
            return self._ack(p.ERR_BAD_LOCATION)
        self.library.put(slot, self.buffers[buffer_id])
        return self._ack(p.OK, delay_s=self.timing.store_s)

    def _load_char(self, args):
        buffer_id, slot = self._buffer_id(args), self._u16(args, 1)
        if buffer_id is None:
            return self._ack(p.ERR_RECEIVE)
        if slot >= self.library.capacity:
            return self._ack(p.ERR_BAD_LOCATION)
        template = self.library.get(slot)
        if template is None:
            return self._ack(p.ERR_READ_TEMPLATE, delay_s=self.timing.load_char_s)
        self.buffers[buffer_id] = template
        return self._ack(p.OK, delay_s=self.timing.load_char_s)

    def _search(self, args):
        buffer_id, start, count = self._buffer_id(args), self._u16(args, 1), self._u16(args, 3)
        if buffer_id is None:
            return self._ack(p.ERR_RECEIVE)
        count = max(0, min(count, self.library.capacity - start))
        delay = self.timing.search_base_s + self.timing.search_per_slot_s * count
        level = self.library.settings["security_level"]
        found = self.matcher.search(self.buffers[buffer_id], self.library.in_range(start, count), level)
        if found is None:
            return self._ack(p.ERR_NOT_FOUND, bytes(4), delay)
        slot, score = found
        return self._ack(p.OK, slot.to_bytes(2, "big") + min(score, 0xFFFF).to_bytes(2, "big"), delay)

    def _delete_char(self, args):
        start, count = self._u16(args, 0), self._u16(args, 2)
        if start >= self.library.capacity:
            return self._ack(p.ERR_BAD_LOCATION)
        if start + count > self.library.capacity:
            return self._ack(p.ERR_DELETE)
        self.library.delete(start, count)
        return self._ack(p.OK, delay_s=self.timing.delete_s)

    def _empty(self, args):
        self.library.clear()
        return self._ack(p.OK, delay_s=self.timing.empty_s)

    def _up_char(self, args):
        buffer_id = self._buffer_id(args)
        if buffer_id is None:
            return self._ack(p.ERR_UPLOAD_CHAR)
        reply = self._ack(p.OK)
        reply.packets += self._data(self.buffers[buffer_id])
        return reply

    def _down_char(self, args):
        buffer_id = self._buffer_id(args)
        if buffer_id is None:
            return self._ack(p.ERR_CANNOT_RECEIVE)
        self._receiving = (buffer_id, bytearray())
        return self._ack(p.OK)

    def _up_image(self, args):
        capture = self.image
        if capture is None:
            return self._ack(p.ERR_UPLOAD_IMAGE)
        pixels = self.catalog.image(capture.identity, capture.impression, capture.condition)
        nibbles = pixels.reshape(-1) // 17
        packed = (nibbles[0::2] << 4 | nibbles[1::2]).astype("uint8").tobytes()
        reply = self._ack(p.OK)
        reply.packets += self._data(packed)
        return reply

    def _random(self, args):
        return self._ack(p.OK, self._rng.getrandbits(32).to_bytes(4, "big"))

    def _aura_led(self, args):
        ctrl, speed, color, count = args[0], args[1], args[2], args[3]
        if not 1 <= ctrl <= 6 or not 1 <= color <= 7:
            return self._ack(p.ERR_RECEIVE)
        self.led = {"ctrl": ctrl, "speed": speed, "color": color, "count": count}
        return self._ack(p.OK)

    _HANDLERS = {
        p.READ_SYS_PARA: _read_sys_para,
        p.SET_SYS_PARA: _set_sys_para,
        p.SET_PWD: _set_password,
        p.SET_ADDR: _set_address,
        p.TEMPLATE_COUNT: _template_count,
        p.READ_INDEX_TABLE: _read_index_table,
        p.GEN_IMG: _gen_img,
        p.IMG_2TZ: _img2tz,
        p.MATCH: _match,
        p.REG_MODEL: _reg_model,
        p.STORE: _store,
        p.LOAD_CHAR: _load_char,
        p.SEARCH: _search,
        p.DELETE_CHAR: _delete_char,
        p.EMPTY: _empty,
        p.UP_CHAR: _up_char,
        p.DOWN_CHAR: _down_char,
        p.UP_IMAGE: _up_image,
        p.GET_RANDOM: _random,
        p.AURA_LED_CONFIG: _aura_led,
    }
