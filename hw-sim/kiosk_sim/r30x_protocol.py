"""R30x/ZFM UART packet layout: framing, checksums and a streaming parser.

A packet is: start code 0xEF01, 4-byte module address, 1-byte packet id, 2-byte length
(payload + 2), payload, 2-byte checksum (sum of id, both length bytes and the payload, low
16 bits). Everything is big-endian. The module answers command packets with acknowledge
packets; bulk data (images, character files) travels in data packets closed by an end packet.
"""

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

START_CODE = b"\xef\x01"
HEADER_LEN = 9  # start code, address, id, length
MAX_PAYLOAD = 256 + 2  # largest data packet plus the checksum (the length field's view)

# packet ids
COMMAND = 0x01
DATA = 0x02
ACK = 0x07
END = 0x08

# instruction codes
GEN_IMG = 0x01
IMG_2TZ = 0x02
MATCH = 0x03
SEARCH = 0x04
REG_MODEL = 0x05
STORE = 0x06
LOAD_CHAR = 0x07
UP_CHAR = 0x08
DOWN_CHAR = 0x09
UP_IMAGE = 0x0A
DOWN_IMAGE = 0x0B
DELETE_CHAR = 0x0C
EMPTY = 0x0D
SET_SYS_PARA = 0x0E
READ_SYS_PARA = 0x0F
SET_PWD = 0x12
VFY_PWD = 0x13
GET_RANDOM = 0x14
SET_ADDR = 0x15
TEMPLATE_COUNT = 0x1D
READ_INDEX_TABLE = 0x1F
AURA_LED_CONFIG = 0x35

# confirmation codes (module -> host)
OK = 0x00
ERR_RECEIVE = 0x01
ERR_NO_FINGER = 0x02
ERR_IMAGE_FAIL = 0x03
ERR_IMAGE_MESSY = 0x06
ERR_FEW_FEATURES = 0x07
ERR_NO_MATCH = 0x08
ERR_NOT_FOUND = 0x09
ERR_MERGE = 0x0A
ERR_BAD_LOCATION = 0x0B
ERR_READ_TEMPLATE = 0x0C
ERR_UPLOAD_CHAR = 0x0D
ERR_CANNOT_RECEIVE = 0x0E
ERR_UPLOAD_IMAGE = 0x0F
ERR_DELETE = 0x10
ERR_CLEAR = 0x11
ERR_WRONG_PASSWORD = 0x13
ERR_INVALID_IMAGE = 0x15
ERR_FLASH = 0x18
ERR_INVALID_REGISTER = 0x1A
ERR_PASSWORD_REQUIRED = 0x21
ERR_UNSUPPORTED = 0xFC

# system parameter registers (SetSysPara)
REG_BAUD = 4
REG_SECURITY = 5
REG_PACKET_SIZE = 6

PACKET_SIZES = (32, 64, 128, 256)  # indexed by the packet-size register

# status register bits (ReadSysPara)
STATUS_BUSY = 0x01
STATUS_PASS = 0x02
STATUS_PASSWORD_OK = 0x04
STATUS_IMAGE_OK = 0x08


@dataclass(frozen=True)
class Packet:
    """One decoded packet."""

    address: int
    kind: int
    payload: bytes

    @property
    def instruction(self):
        return self.payload[0] if self.payload else None


def checksum(kind, payload):
    """The 16-bit checksum of a packet with this id and payload."""
    length = len(payload) + 2
    return (kind + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode(address, kind, payload):
    """The bytes on the wire for one packet."""
    payload = bytes(payload)
    length = len(payload) + 2
    return (START_CODE + address.to_bytes(4, "big") + bytes([kind]) + length.to_bytes(2, "big")
            + payload + checksum(kind, payload).to_bytes(2, "big"))


class BadPacket(ValueError):
    """A complete packet arrived whose checksum did not add up."""

    def __init__(self, message, address):
        super().__init__(message)
        self.address = address


class PacketReader:
    """Turn a byte stream into packets, resynchronising on the start code after noise."""

    def __init__(self):
        self._buffer = bytearray()
        self.skipped = 0  # bytes dropped while hunting for a start code

    def feed(self, data):
        self._buffer += data

    def reset(self):
        self._buffer.clear()

    def pending(self):
        return len(self._buffer)

    def next_packet(self):
        """The next whole packet, or None; raises BadPacket for a checksum mismatch."""
        while True:
            start = self._buffer.find(START_CODE)
            if start < 0:
                # keep a trailing 0xEF: it may be the first half of a start code
                keep = 1 if self._buffer[-1:] == START_CODE[:1] else 0
                self.skipped += len(self._buffer) - keep
                del self._buffer[:len(self._buffer) - keep]
                return None
            if start:
                self.skipped += start
                del self._buffer[:start]
            if len(self._buffer) < HEADER_LEN:
                return None
            length = int.from_bytes(self._buffer[7:9], "big")
            if length < 2 or length > MAX_PAYLOAD:
                # not a real header: drop the start code and hunt again
                self.skipped += 2
                del self._buffer[:2]
                continue
            total = HEADER_LEN + length
            if len(self._buffer) < total:
                return None
            raw = bytes(self._buffer[:total])
            del self._buffer[:total]
            address = int.from_bytes(raw[2:6], "big")
            kind = raw[6]
            payload = raw[HEADER_LEN:total - 2]
            if int.from_bytes(raw[-2:], "big") != checksum(kind, payload):
                raise BadPacket(f"checksum mismatch in packet id {kind:#04x}", address)
            return Packet(address, kind, payload)
