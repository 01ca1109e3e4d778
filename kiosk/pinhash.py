"""The admin PIN hash format, ``scrypt$N$r$p$salt$hash``: parse and bound it before anything uses it.

`kiosk provision --hash-pin` makes it (``provision_file.hash_pin``: N=2**14, r=8, p=1, 16-byte salt,
32-byte digest, standard base64). A hash from a file is checked here when the file is loaded, so a
malformed one is a clear error at once, never a crash (or minutes of scrypt) at the admin screen.
"""

import base64
import binascii
import logging
import re

log = logging.getLogger(__name__)

PIN_HASH_RE = re.compile(r"scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")
MIN_N, MAX_N = 2 ** 10, 2 ** 20
MAX_R, MAX_P = 32, 16
MAX_MEMORY_BYTES = 64 * 2 ** 20  # scrypt needs about 128 * N * r bytes
MAX_WORK = 2 ** 22  # N * r * p: bounds the time one check takes on a Pi
MIN_SALT_BYTES, MIN_DIGEST_BYTES, MAX_DIGEST_BYTES = 8, 16, 64


def parse(text):
    """(n, r, p, salt, digest) from a PIN hash; ValueError saying what is wrong with it."""
    m = PIN_HASH_RE.fullmatch(text or "")
    if not m:
        raise ValueError("not a PIN hash made by `kiosk provision --hash-pin` (scrypt$N$r$p$salt$hash)")
    n, r, p = (int(x) for x in m.groups()[:3])
    if n < MIN_N or n > MAX_N or n & (n - 1):
        raise ValueError(f"scrypt N={n} must be a power of two from {MIN_N} to {MAX_N}")
    if not 1 <= r <= MAX_R or not 1 <= p <= MAX_P:
        raise ValueError(f"scrypt r={r}, p={p} out of range (r 1-{MAX_R}, p 1-{MAX_P})")
    if 128 * n * r > MAX_MEMORY_BYTES or n * r * p > MAX_WORK:
        raise ValueError(f"scrypt N={n}, r={r}, p={p} needs more memory or time than a kiosk allows")
    try:
        salt = base64.b64decode(m.group(4), validate=True)
        digest = base64.b64decode(m.group(5), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("salt or hash is not valid base64") from None
    if len(salt) < MIN_SALT_BYTES:
        raise ValueError(f"salt is {len(salt)} bytes, at least {MIN_SALT_BYTES} needed")
    if not MIN_DIGEST_BYTES <= len(digest) <= MAX_DIGEST_BYTES:
        raise ValueError(f"hash is {len(digest)} bytes, {MIN_DIGEST_BYTES}-{MAX_DIGEST_BYTES} expected")
    return n, r, p, salt, digest


def problem(text):
    """None if ``text`` is a usable PIN hash, else a one-line reason."""
    try:
        parse(text)
    except ValueError as e:
        return str(e)
    return None


def scrypt_maxmem(n, r, p):
    """The ``maxmem`` hashlib.scrypt needs for these parameters (its default stops at 32 MiB)."""
    return 128 * r * (n + p + 2) + 2 ** 20
