"""What a citizen types, checked by named rules: national ID, PIN, mobile, e-mail, username, password.

Each check answers by rule name, so the screen can show every rule live as met or not, and a
refusal names the rule it broke. Eastern Arabic digits count as digits wherever numbers are typed.

- National ID / iqama number: 10 digits, the first 1 (citizen) or 2 (resident), the last a Luhn
  check digit (1000000008 passes, 1000000000 does not).
- PIN: exactly 6 digits, not trivial (one digit repeated, or a straight run up or down such as
  123456 or 987654).
- Username: at least 8 characters, English letters and digits only, with a digit, an upper-case
  and a lower-case letter.
- Password: at least 8 characters; an upper-case and a lower-case English letter; a symbol;
  English characters only (printable ASCII, no spaces); no more than 4 characters taken from the
  username (no run of 5 or more consecutive username characters, ignoring case); no character
  used more than 4 times; the confirmation typed the same.
"""

import logging
import re
import string

from kiosk.digits import western_digits
from kiosk.sync.protocol import luhn_ok

log = logging.getLogger(__name__)

ID_DIGITS = 6 + 4
PIN_DIGITS = 6
MIN_USERNAME = 8
MIN_PASSWORD = 8
MAX_FROM_USERNAME = 4
MAX_REPEATS = 4
MAX_TYPED = 254  # longer input is refused before any rule looks at it
SYMBOLS = frozenset(string.punctuation)
MOBILE_RE = re.compile(r"^(?:\+966|00966|0)?(5\d{8})$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+$")


def national_id_problem(text):
    """None if ``text`` is a valid national ID / iqama number, else the broken rule's name."""
    digits = western_digits(text) if isinstance(text, str) else ""
    if not digits or not (digits.isascii() and digits.isdigit()):
        return "not_digits"
    if len(digits) != ID_DIGITS:
        return "length"
    if digits[0] not in "12":
        return "first_digit"
    if not luhn_ok(digits):
        return "check_digit"
    return None


def national_id(text):
    """The ID as 10 Western digits; ValueError naming the broken rule."""
    problem = national_id_problem(text)
    if problem:
        raise ValueError(problem)
    return western_digits(text)


def mask_id(digits):
    """For screens and logs: all but the last two digits hidden."""
    return "*" * max(0, len(digits) - 2) + digits[-2:]


def pin_problem(text):
    """None for an acceptable PIN, else 'not_digits', 'length' or 'trivial'."""
    digits = western_digits(text) if isinstance(text, str) else ""
    if not digits or not (digits.isascii() and digits.isdigit()):
        return "not_digits"
    if len(digits) != PIN_DIGITS:
        return "length"
    if is_trivial_pin(digits):
        return "trivial"
    return None


def is_trivial_pin(digits):
    """One digit repeated, or each digit one more (or one less) than the one before."""
    steps = {(int(b) - int(a)) % 10 for a, b in zip(digits, digits[1:])}
    return steps in ({0}, {1}, {9})


def mobile_number(text):
    """A Saudi mobile as +9665XXXXXXXX, or None when ``text`` is not one."""
    if not isinstance(text, str) or len(text) > 32:
        return None
    match = MOBILE_RE.match(western_digits(text).replace(" ", "").replace("-", ""))
    return "+966" + match.group(1) if match else None


def email_ok(text):
    return isinstance(text, str) and len(text) <= MAX_TYPED and EMAIL_RE.match(text.strip()) is not None


def _english_letters_digits(text):
    return all(c in string.ascii_letters or c in string.digits for c in text)


USERNAME_RULES = {
    "min_length": lambda u: len(u) >= MIN_USERNAME,
    "has_digit": lambda u: any(c in string.digits for c in u),
    "has_upper": lambda u: any(c in string.ascii_uppercase for c in u),
    "has_lower": lambda u: any(c in string.ascii_lowercase for c in u),
    "english_letters_digits_only": lambda u: bool(u) and _english_letters_digits(u),
}


def longest_shared_run(password, username):
    """The longest run of consecutive characters the password takes from the username (ignoring case)."""
    p, u = password.lower(), username.lower()
    best = 0
    previous = [0] * (len(u) + 1)
    for pc in p:
        current = [0] * (len(u) + 1)
        for j, uc in enumerate(u, 1):
            if pc == uc:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


PASSWORD_RULES = {
    "min_length": lambda p, u, c: len(p) >= MIN_PASSWORD,
    "has_upper": lambda p, u, c: any(ch in string.ascii_uppercase for ch in p),
    "has_lower": lambda p, u, c: any(ch in string.ascii_lowercase for ch in p),
    "has_symbol": lambda p, u, c: any(ch in SYMBOLS for ch in p),
    "english_only": lambda p, u, c: bool(p) and all(ch.isascii() and ch.isprintable() and not ch.isspace()
                                                    for ch in p),
    "few_from_username": lambda p, u, c: longest_shared_run(p, u) <= MAX_FROM_USERNAME,
    "no_char_over_4_times": lambda p, u, c: all(p.count(ch) <= MAX_REPEATS for ch in set(p)),
    "confirmed": lambda p, u, c: bool(p) and p == c,
}


def _text(value):
    return value if isinstance(value, str) and len(value) <= MAX_TYPED else ""


def username_rules(username):
    """{rule name: met} for a username."""
    username = _text(username)
    return {name: bool(rule(username)) for name, rule in USERNAME_RULES.items()}


def password_rules(password, *, username="", confirmation=""):
    """{rule name: met} for a password, given the username and the confirmation typed."""
    password, username, confirmation = _text(password), _text(username), _text(confirmation)
    return {name: bool(rule(password, username, confirmation)) for name, rule in PASSWORD_RULES.items()}
