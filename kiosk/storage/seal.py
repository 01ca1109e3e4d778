"""Seal template blobs at rest with AES-256-GCM under a data key kept in a root-only file.

A missing or wrong key is an error, never a silent fallback to plaintext. The associated data
binds each blob to its row (kind, person, model), so a blob moved to another person fails.
"""

import hashlib
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk.errors import SealError
from kiosk.files import fsync_dir

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = b"\x01"


class DataKey:
    """The AES-256 data key; its id (a hash) may be stored, the key itself never leaves this object."""

    def __init__(self, key_bytes):
        if len(key_bytes) != KEY_BYTES:
            raise SealError(f"data key must be {KEY_BYTES} bytes, got {len(key_bytes)}")
        self._aead = AESGCM(key_bytes)
        self.key_id = hashlib.sha256(b"kiosk-data-key-id" + key_bytes).hexdigest()[:16]

    def __repr__(self):
        return f"DataKey(id={self.key_id})"

    @classmethod
    def create(cls, path):
        """Make a new random key in a new 0600 file; refuse to overwrite an existing one."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SealError(f"{path.parent}: cannot create the key folder ({e.strerror})") from None
        key_bytes = os.urandom(KEY_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise SealError(f"{path}: a data key already exists; refusing to replace it") from None
        except OSError as e:
            raise SealError(f"{path}: cannot create the data key ({e.strerror}); `kiosk provision` "
                            "creates it on first boot") from None
        with os.fdopen(fd, "wb") as f:
            f.write(key_bytes)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(path.parent)  # the new name survives a power cut, as the device key's does
        log.info("created data key %s at %s", cls(key_bytes).key_id, path)
        return cls(key_bytes)

    @classmethod
    def load(cls, path):
        """Read the key; a missing, unreadable, world-readable or malformed file is a SealError."""
        path = Path(path)
        try:
            mode = path.stat().st_mode
            key_bytes = path.read_bytes()
        except FileNotFoundError:
            raise SealError(f"{path}: data key file not found; sealed templates cannot be opened "
                            "(restore the key file, or re-enrol after `kiosk db reset-templates`)") from None
        except PermissionError:
            raise SealError(f"{path}: data key file not readable by this user") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SealError(f"{path}: data key file is accessible to others (mode {stat.S_IMODE(mode):04o}); "
                            "run: chmod 600 " + str(path))
        return cls(key_bytes)

    @classmethod
    def load_or_create(cls, path):
        """Load the key, creating it only if the file does not exist yet."""
        return cls.load(path) if Path(path).exists() else cls.create(path)

    def seal(self, plaintext, *, context):
        """Encrypt ``plaintext`` bound to ``context`` (str); returns version | nonce | ciphertext+tag."""
        nonce = os.urandom(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, bytes(plaintext), context.encode())

    def unseal(self, blob, *, context):
        """Decrypt a sealed blob; a wrong key, wrong context or altered blob is a SealError."""
        blob = bytes(blob)
        if blob[:1] != VERSION or len(blob) < 1 + NONCE_BYTES + 16:
            raise SealError("sealed blob has an unknown format")
        nonce, body = blob[1:1 + NONCE_BYTES], blob[1 + NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise SealError("sealed blob does not open with this data key (wrong key, or the blob "
                            "was altered or moved)") from None
