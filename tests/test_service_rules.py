"""Property tests of what citizens type: national ID, PIN, and every username and password rule by name."""

import string

from hypothesis import example, given
from hypothesis import strategies as st

from kiosk.digits import EASTERN_TO_WESTERN
from kiosk.flows.services import rules

WESTERN_TO_EASTERN = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
digits = st.text(alphabet=string.digits, min_size=1, max_size=14)


def luhn_digit(body):
    """The check digit that completes ``body`` (computed independently of the code under test)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


@given(st.sampled_from("12"), st.text(alphabet=string.digits, min_size=8, max_size=8))
def test_every_id_with_a_good_check_digit_passes_in_both_scripts(first, middle):
    body = first + middle
    good = body + luhn_digit(body)
    assert rules.national_id_problem(good) is None
    assert rules.national_id_problem(good.translate(WESTERN_TO_EASTERN)) is None
    assert rules.national_id(good.translate(WESTERN_TO_EASTERN)) == good
    for wrong in set(string.digits) - {good[-1]}:
        assert rules.national_id_problem(body + wrong) == "check_digit"


@given(st.sampled_from("03456789"), st.text(alphabet=string.digits, min_size=9, max_size=9))
def test_an_id_not_starting_with_1_or_2_is_refused_by_name(first, rest):
    assert rules.national_id_problem(first + rest) == "first_digit"


@given(digits.filter(lambda d: len(d) != 10))
@example("1000000000" + "8")
def test_an_id_of_another_length_is_refused_by_name(typed):
    assert rules.national_id_problem(typed) == "length"


@given(st.text(min_size=1, max_size=12).filter(lambda t: not t.strip().translate(EASTERN_TO_WESTERN).isdigit()))
def test_anything_but_digits_is_refused_by_name(typed):
    assert rules.national_id_problem(typed) == "not_digits"


def test_the_field_examples():
    assert rules.national_id_problem("1000000008") is None
    assert rules.national_id_problem("1000000000") == "check_digit"
    assert rules.national_id_problem("١٠٠٠٠٠٠٠٠٨") is None


# --- PIN ------------------------------------------------------------------------------------------

@given(st.text(alphabet=string.digits, min_size=6, max_size=6))
def test_a_six_digit_pin_is_refused_exactly_when_trivial(pin):
    same = len(set(pin)) == 1
    up = all((int(b) - int(a)) % 10 == 1 for a, b in zip(pin, pin[1:]))
    down = all((int(a) - int(b)) % 10 == 1 for a, b in zip(pin, pin[1:]))
    assert rules.pin_problem(pin) == ("trivial" if same or up or down else None)
    assert rules.pin_problem(pin.translate(WESTERN_TO_EASTERN)) == rules.pin_problem(pin)


@given(digits.filter(lambda d: len(d) != 6))
def test_a_pin_of_another_length_is_refused(pin):
    assert rules.pin_problem(pin) == "length"


def test_the_named_trivial_pins():
    for pin in ("000000", "123456", "111111", "654321", "999999", "234567"):
        assert rules.pin_problem(pin) == "trivial"
    assert rules.pin_problem("12a456") == "not_digits"


# --- username -------------------------------------------------------------------------------------

ascii_text = st.text(alphabet=string.printable, max_size=20)


@given(st.text(max_size=24))
def test_each_username_rule_is_reported_by_name(username):
    result = rules.username_rules(username)
    assert set(result) == {"min_length", "has_digit", "has_upper", "has_lower", "english_letters_digits_only"}
    assert result["min_length"] == (len(username) >= 8)
    assert result["has_digit"] == any(c in "0123456789" for c in username)
    assert result["has_upper"] == any("A" <= c <= "Z" for c in username)
    assert result["has_lower"] == any("a" <= c <= "z" for c in username)
    assert result["english_letters_digits_only"] == (username != "" and all(
        c in string.ascii_letters + string.digits for c in username))


@given(st.text(alphabet=string.ascii_letters + string.digits, min_size=8, max_size=20))
def test_a_username_with_all_three_kinds_meets_every_rule(username):
    kinds = (any(c.isdigit() for c in username), any(c.isupper() for c in username),
             any(c.islower() for c in username))
    assert all(rules.username_rules(username).values()) == all(kinds)


def test_arabic_letters_break_the_username_rule():
    assert rules.username_rules("Ahmad2024أ")["english_letters_digits_only"] is False


# --- password -------------------------------------------------------------------------------------

def shared_run(a, b):
    a, b = a.lower(), b.lower()
    return max((n for i in range(len(a)) for n in range(1, len(a) - i + 1) if a[i:i + n] in b), default=0)


@given(st.text(max_size=16), st.text(alphabet=string.ascii_letters + string.digits, max_size=12), st.booleans())
def test_each_password_rule_is_reported_by_name(password, username, same):
    confirmation = password if same else password + "x"
    result = rules.password_rules(password, username=username, confirmation=confirmation)
    assert result == {
        "min_length": len(password) >= 8,
        "has_upper": any("A" <= c <= "Z" for c in password),
        "has_lower": any("a" <= c <= "z" for c in password),
        "has_symbol": any(c in string.punctuation for c in password),
        "english_only": password != "" and all(c in string.printable and not c.isspace() for c in password),
        "few_from_username": shared_run(password, username) <= 4,
        "no_char_over_4_times": all(password.count(c) <= 4 for c in password),
        "confirmed": password != "" and same,
    }


@given(st.text(alphabet=string.ascii_lowercase, min_size=5, max_size=8))
def test_five_consecutive_username_characters_break_the_rule_in_any_case(run):
    username = "Xy9" + run + "Q1"
    password = "#A" + run.upper() + "b"
    assert rules.password_rules(password, username=username, confirmation=password)["few_from_username"] is False
    shorter = "#" + run[:4] + "!"
    assert rules.password_rules(shorter, username=username)["few_from_username"] is \
        (shared_run(shorter, username) <= 4)


@given(st.sampled_from(string.ascii_letters + string.digits + string.punctuation), st.integers(1, 8))
def test_a_character_used_more_than_four_times_breaks_the_rule(ch, times):
    password = "Zz#9" .replace(ch, "") + ch * times
    assert rules.password_rules(password)["no_char_over_4_times"] == (password.count(ch) <= 4)


def test_a_password_meeting_every_rule():
    assert all(rules.password_rules("Kiosk#Pass1", username="CarolCole77", confirmation="Kiosk#Pass1").values())
    assert rules.password_rules("Kiosk#Pass١", confirmation="Kiosk#Pass١")["english_only"] is False
    assert rules.password_rules("a" * 300) == dict.fromkeys(rules.PASSWORD_RULES, False) | {"few_from_username": True,
                                                                                           "no_char_over_4_times": True}


def test_mobile_and_email():
    assert rules.mobile_number("٠٥٥١٢٣٤٥٦٧") == "+966551234567"
    assert rules.mobile_number("00966551234567") == "+966551234567"
    assert rules.mobile_number("0451234567") is None and rules.mobile_number(None) is None
    assert rules.mobile_number("0" * 40) is None
    assert rules.email_ok("carol@example.org") and not rules.email_ok("carol@") and not rules.email_ok(None)
