"""Claim and verify: a person names themselves (typed number, or the face match), then their finger proves it.

For people outside the sensor's working set (``kiosk.flows.working_set``), and for a door that
wants two factors (``attendance.face_then_finger``): the claimed person's templates go down to
the sensor and the finger on the glass is matched 1:1 there (``DownChar`` + ``Match``), never
searched 1:N. A verified claim takes the same record path and punch rules as a 1:N match; the
punch then moves the person into the working set. The attendance flow calls these helpers from
its ``verifying_finger`` state.
"""

import logging

log = logging.getLogger(__name__)

TRIES = 3  # fingers placed under one claim before it is refused (poor captures count too)


def begin(flow, person, mode):
    """Start verifying ``person`` (proposed by ``mode``: "typed" or "face")."""
    from kiosk.flows.attendance import Pending

    flow.pending = Pending(person, "fingerprint", claimed=person.person_id)
    flow.claim_tries = 0
    flow.claim_mode = mode


def show_prompt(flow, guidance=None):
    # the name is not shown for a typed claim: typing someone's number must not reveal who it is
    name = flow.pending.person.name if flow.claim_mode == "face" else None
    flow._show("finger_verify", guidance=guidance, name=name, tries_left=TRIES - flow.claim_tries)


def start_capture(flow):
    flow.ports.stop_capture("face")
    flow.ports.start_capture("finger", mode="verify", person_id=flow.pending.person.person_id)


def refused(flow, guidance=None):
    """One finger that did not verify (or a poor capture): guidance, and count it."""
    flow.claim_tries += 1
    flow.ports.signal("error")
    flow.extend_deadline()
    show_prompt(flow, guidance=guidance or "not_verified")


def tries_left(flow):
    return flow.claim_tries + 1 < TRIES


def verified(flow, score=None):
    flow.pending.score = score
    # the sensor goes back to searching everyone now: the result screen hands over to the next
    # person (watching, not home), whose finger must not be verified against this person's templates
    flow.ports.start_capture("finger", mode="identify")
    log.info("claim verified on the sensor (%s)", flow.claim_mode)
