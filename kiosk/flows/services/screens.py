"""The screen contract of the citizen services: every screen the service flows show, with its data keys.

The touchscreen (kiosk/ui) draws these; the flows call ``ports.show(screen, **data)`` with exactly
the keys listed here (a test checks every call). Values are plain JSON-like data: strings, ints,
floats, bools, lists and dicts of those. Never a PIN, a code, a template, a frame or an embedding:
what a person typed is echoed only as a count (``typed``).

Common keys:
  ``service``   which service: "activation" | "account" | "fingerprints" | "mobile_change"
  ``step``      the step's position and the number of steps, ``[n, of]``, for a progress bar
  ``can_back``  True when "back one step" is offered
  ``error``     None, or a reason code the screen turns into words (listed per screen)
"""

from dataclasses import dataclass

SERVICES = ("activation", "account", "fingerprints", "mobile_change")


@dataclass(frozen=True)
class Screen:
    """One screen: what it is for, and its data keys with their meaning."""

    meaning: str
    keys: dict


COMMON = {"service": "which service (see SERVICES)", "step": "[n, of] for a progress bar",
          "can_back": "True when back one step is offered"}


def _screen(meaning, **keys):
    return Screen(meaning, {**COMMON, **keys})


SCREENS = {
    "service_id": _screen(
        "Type the national ID or iqama number (10 digits; Eastern Arabic digits accepted).",
        error="None | 'not_digits' | 'length' | 'first_digit' | 'check_digit' (the typed number is refused as typed)",
        typed="how many digits were typed (the digits themselves are never sent back)"),
    "service_code": _screen(
        "Type the one-time code sent by SMS; a countdown to its expiry; resend after a delay.",
        phone_hint="the masked number the code went to, e.g. '+9665******12'",
        code_length="how many digits the code has (from the server)",
        expires_in_s="seconds until the code expires (count down from here)",
        resend_in_s="seconds until 'send a new code' may be pressed (0: now)",
        attempts_left="wrong codes left before the cooldown",
        error="None | 'format' (not code_length digits) | 'wrong' | 'expired' (send a new one) | "
              "'resend_too_soon' | 'cooldown_over' (the cooldown ended: send a new code)"),
    "service_code_cooldown": _screen(
        "Too many wrong codes: wait before a new code can be sent.",
        retry_in_s="seconds until a new code may be requested"),
    "service_consent": _screen(
        "Consent before any biometric capture: what is captured, and why.",
        kinds="what will be captured: ['face'] | ['finger'] | ['face', 'finger']"),
    "service_face": _screen(
        "The face inside the on-screen guide, good light, then the liveness challenge.",
        guidance="None | a quality hint of kiosk.models.quality ('no_face', 'more_light', 'face_the_camera', ...) "
                 "| 'try_again' (the last attempt was refused)",
        challenge="None | 'turn_left' | 'turn_right' | 'blink'",
        attempt="this attempt's number (1-based)",
        attempts="attempts before the assisted path"),
    "service_finger": _screen(
        "Place the named finger on the sensor; guidance for wet, dirty, oily or misplaced fingers.",
        finger="the finger asked for: 'right_index', 'left_index', 'right_thumb', ...; None: any enrolled finger "
               "(the identity check of a mobile change)",
        number="which finger of those asked (1-based)",
        of="how many fingers are asked",
        action="None | 'place_finger' | 'lift_finger' (the sensor's step)",
        guidance="None | 'clean_dry_finger' | 'press_flat' | 'try_again' (why the last capture failed)",
        attempt="this finger's attempt number (1-based)",
        attempts="attempts before the assisted path"),
    "service_assisted": _screen(
        "Biometrics failed repeatedly (or cannot be taken): the exception is recorded, the person told what next.",
        kind="'face' | 'finger'",
        finger="the finger that could not be captured, or None",
        reason="'failed_repeatedly' | 'cannot_capture' (the person said so)",
        next_step="'continue_assisted': the request continues and an officer completes the check at a service "
                  "centre (the reference number on the last screen) | 'visit_service_centre': this service needs "
                  "the person verified, which an officer does at a service centre (nothing was sent)"),
    "service_pin": _screen(
        "Choose the 6-digit personal PIN, then type it again.",
        stage="'first' | 'confirm'",
        typed="how many digits were typed",
        error="None | 'length' | 'not_digits' | 'trivial' (000000, 123456, ...) | 'mismatch'"),
    "service_mobile": _screen(
        "Type a mobile number (Saudi mobile: 05XXXXXXXX or +9665XXXXXXXX).",
        error="None | 'invalid_mobile'"),
    "service_email": _screen(
        "Type an e-mail address.",
        error="None | 'invalid_email'"),
    "service_credentials": _screen(
        "Choose a username (cannot be changed later) and a password; each rule shown live as met or not.",
        username_rules="{rule name: met (bool)} for the username (see kiosk.flows.services.rules.USERNAME_RULES)",
        password_rules="{rule name: met (bool)} for the password (see kiosk.flows.services.rules.PASSWORD_RULES)",
        error="None | 'rules_not_met'"),
    "service_language": _screen(
        "Choose the preferred language.",
        languages="the choices, e.g. ['ar', 'en']",
        error="None | 'invalid_language'"),
    "service_terms": _screen(
        "Accept the terms and conditions to create the account.",
        username="the chosen username (shown once more: it cannot be changed)",
        error="None | 'not_saved' (the kiosk could not store the request: accept again to retry)"),
    "service_verify": _screen(
        "The identity check (the registered phone is lost): face or finger, or try again after a failure.",
        methods="the ways offered: ['face'] | ['face', 'finger'] (when the kiosk has a fingerprint sensor)",
        error="None (choosing the way) | 'not_matched' (not the person on record) | 'no_record' (nothing "
              "enrolled for this ID)",
        attempts_left="verifications left before the assisted path"),
    "service_confirm": _screen(
        "Check and confirm before the request is sent.",
        summary="{item: text} of what will be sent, never a PIN, code or biometric (e.g. masked ID, fingers "
                "captured, exceptions)",
        error="None | 'not_saved' (the kiosk could not store the request: confirm again to retry)"),
    "service_done": _screen(
        "Done: the reference number to keep.",
        reference="the request's reference number",
        queued="True when it waits in the kiosk's outbox to reach the server (sent automatically)"),
    "service_refused": _screen(
        "The server refused (or the person declined): why, and a way home.",
        reason="'too_many_codes' (per ID or device per hour) | 'locked' (too many wrong codes) | 'unknown_id' | "
               "'consent_declined' | 'not_verified' | 'refused'",
        retry_in_s="seconds until a new try is allowed, or None"),
    "service_offline": _screen(
        "The central server cannot be reached: nothing was sent; come back later (a way home).",
        at="the step that needed the server: 'code' | 'verify'"),
}


def keys_of(screen):
    """The exact set of data keys ``screen`` takes; KeyError for a screen not in the contract."""
    return set(SCREENS[screen].keys)
