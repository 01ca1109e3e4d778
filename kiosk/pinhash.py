"""Salted scrypt hashes of PINs (the admin PIN and people's attendance PINs); never the PIN itself.

A hash reads ``scrypt$N$r$p$<base64 salt>$<base64 digest>``; `kiosk provision --hash-pin` and
``hash_pin`` make it (N=2**14, r=8, p=1, 16-byte salt, 32-byte digest). Hashes may come from
outside (the provisioning file, settings, the server's person records), so ``parse`` bounds the
cost parameters before anything runs scrypt: a malformed hash is a clear error when the file is
loaded (``problem``) and a plain "no" at the keypad (``verify_pin``), never a crash or a memory bomb.
"""

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets

from kiosk.digits import western_digits

log = logging.getLogger(__name__)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
PIN_HASH_RE = re.compile(r"scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")
MIN_N, MAX_N = 2 ** 10, 2 ** 20
MAX_R, MAX_P = 32, 16
MAX_MEMORY_BYTES = 64 * 2 ** 20  # scrypt needs about 128 * N * r bytes
MAX_WORK = 2 ** 22  # N * r * p: bounds the time one check takes on a Pi
MIN_SALT_BYTES, MIN_DIGEST_BYTES, MAX_DIGEST_BYTES = 8, 16, 64
MIN_PIN_DIGITS, MAX_PIN_DIGITS = 4, 12


def normalise_pin(text):
    """A typed PIN with Eastern Arabic digits folded to Western; ValueError unless 4-12 digits."""
    digits = western_digits(text)
    if not (digits.isascii() and digits.isdigit() and MIN_PIN_DIGITS <= len(digits) <= MAX_PIN_DIGITS):
        raise ValueError(f"a PIN is {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits")
    return digits


def hash_pin(pin, *, salt=None):
    """``scrypt$N$r$p$salt$hash`` for a PIN, with a fresh random 16-byte salt unless one is given."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


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


def is_pin_hash(text):
    """True if ``text`` is a usable hash (the shape ``hash_pin`` makes, with bounded parameters)."""
    return problem(text) is None


def scrypt_maxmem(n, r, p):
    """The ``maxmem`` hashlib.scrypt needs for these parameters (its default stops at 32 MiB)."""
    return 128 * r * (n + p + 2) + 2 ** 20


def verify_pin(pin, pin_hash):
    """True if ``pin`` matches ``pin_hash`` (constant-time compare); False for any malformed hash."""
    try:
        n, r, p, salt, expected = parse(pin_hash)
    except ValueError:
        return False
    try:
        digest = hashlib.scrypt(str(pin).encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected),
                                maxmem=scrypt_maxmem(n, r, p))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest, expected)
