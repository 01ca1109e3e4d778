"""The platform's published rules for a username and a password, checked one by one.

Each function returns ``[(rule, ok), ...]`` in the order the screen lists them, so the
touchscreen can tick each rule live as the person types and a flow can refuse what fails.
"""

import collections
import string

MIN_LENGTH = 8
MAX_FROM_USERNAME = 4     # characters of the password that may also be in the username
MAX_REPEATS = 4           # no character more than this many times
SYMBOLS = set(string.punctuation)
ENGLISH = set(string.ascii_letters + string.digits) | SYMBOLS


def username_rules(text):
    """At least 8 characters, with digits and both upper- and lower-case English letters."""
    text = text or ""
    return [
        ("length", len(text) >= MIN_LENGTH),
        ("upper", any(c in string.ascii_uppercase for c in text)),
        ("lower", any(c in string.ascii_lowercase for c in text)),
        ("digit", any(c in string.digits for c in text)),
        ("english_only", bool(text) and all(c in set(string.ascii_letters + string.digits) for c in text)),
    ]


def _from_username(password, username):
    """How many of the password's characters also occur in the username (case-insensitive)."""
    pool = collections.Counter((username or "").lower())
    taken = 0
    for c in password.lower():
        if pool[c] > 0:
            pool[c] -= 1
            taken += 1
    return taken


def password_rules(text, *, username=""):
    """8+ characters; upper, lower, symbol; English only; <= 4 from the username; no char > 4 times."""
    text = text or ""
    counts = collections.Counter(text)
    return [
        ("length", len(text) >= MIN_LENGTH),
        ("upper", any(c in string.ascii_uppercase for c in text)),
        ("lower", any(c in string.ascii_lowercase for c in text)),
        ("symbol", any(c in SYMBOLS for c in text)),
        ("english_only", bool(text) and all(c in ENGLISH for c in text)),
        ("from_username", bool(text) and _from_username(text, username) <= MAX_FROM_USERNAME),
        ("repeats", bool(text) and max(counts.values()) <= MAX_REPEATS),
    ]


def all_pass(rules):
    return all(ok for _, ok in rules)
