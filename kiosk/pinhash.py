"""Salted scrypt hashes of PINs (the admin PIN and people's attendance PINs); never the PIN itself.

A hash reads ``scrypt$N$r$p$<base64 salt>$<base64 digest>``. Hashes may come from outside (the
provisioning file, the server's person records), so ``verify_pin`` bounds the cost parameters it
is willing to run instead of letting a hostile hash make it allocate gigabytes.
"""

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets

log = logging.getLogger(__name__)

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
PIN_HASH_RE = re.compile(r"^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")
# what verify_pin accepts from a stored hash: enough for our own hashes, far below a memory bomb
MAX_N, MAX_R, MAX_P = 2 ** 16, 16, 4
MAX_MEMORY_BYTES = 128 * 1024 * 1024
MIN_DIGEST_BYTES, MAX_DIGEST_BYTES = 16, 64
MIN_PIN_DIGITS, MAX_PIN_DIGITS = 4, 12
EASTERN_ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def normalise_pin(text):
    """A typed PIN with Eastern Arabic digits folded to Western; ValueError unless 4-12 digits."""
    digits = str(text).strip().translate(EASTERN_ARABIC_DIGITS)
    if not (digits.isascii() and digits.isdigit() and MIN_PIN_DIGITS <= len(digits) <= MAX_PIN_DIGITS):
        raise ValueError(f"a PIN is {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits")
    return digits


def hash_pin(pin, *, salt=None):
    """``scrypt$N$r$p$salt$hash`` for a PIN, with a fresh random 16-byte salt unless one is given."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def is_pin_hash(text):
    """True if ``text`` has the shape of a hash made by ``hash_pin``."""
    return bool(PIN_HASH_RE.match(text or ""))


def verify_pin(pin, pin_hash):
    """True if ``pin`` matches ``pin_hash`` (constant-time compare); False for any malformed hash."""
    m = PIN_HASH_RE.match(pin_hash or "")
    if not m:
        return False
    n, r, p = (int(x) for x in m.groups()[:3])
    if not (2 <= n <= MAX_N and n & (n - 1) == 0 and 1 <= r <= MAX_R and 1 <= p <= MAX_P):
        log.warning("refusing a PIN hash with cost parameters outside the accepted range")
        return False
    try:
        salt, expected = base64.b64decode(m.group(4), validate=True), base64.b64decode(m.group(5), validate=True)
    except (binascii.Error, ValueError):
        return False
    if not (salt and MIN_DIGEST_BYTES <= len(expected) <= MAX_DIGEST_BYTES):
        return False
    try:
        digest = hashlib.scrypt(str(pin).encode(), salt=salt, n=n, r=r, p=p, dklen=len(expected),
                                maxmem=MAX_MEMORY_BYTES)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest, expected)
