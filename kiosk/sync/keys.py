"""The device's Ed25519 key: made on first boot, kept in a 0600 PEM file, rotated on command."""

import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.files import fsync_dir
from kiosk.errors import ProvisioningError

log = logging.getLogger(__name__)

NEXT_SUFFIX = ".next"


def load_device_key(path):
    """The private key stored at ``path``; ProvisioningError if missing, unreadable, open to others or not Ed25519."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ProvisioningError(f"{path}: device key not found (is the device provisioned?)") from None
    except PermissionError:
        raise ProvisioningError(f"{path}: device key not readable (permission denied)") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ProvisioningError(f"{path}: device key file is accessible to others (mode {stat.S_IMODE(mode):04o}); "
                                "run: chmod 600 " + str(path))
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except ValueError as e:
        raise ProvisioningError(f"{path}: not a PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ProvisioningError(f"{path}: the device key must be Ed25519, found {type(key).__name__}")
    return key


def save_device_key(path, key):
    """Write ``key`` to ``path`` atomically with mode 0600 (never readable by others, even briefly)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def load_or_create_device_key(path):
    """Load the key at ``path``, or make a new one there (0600) if there is none yet."""
    path = Path(path)
    if path.exists():
        return load_device_key(path)
    key = Ed25519PrivateKey.generate()
    save_device_key(path, key)
    log.info("created a new device key at %s", path)
    return key


def next_key_path(path):
    """Where a key being rotated in waits until the server has accepted it."""
    path = Path(path)
    return path.with_name(path.name + NEXT_SUFFIX)
