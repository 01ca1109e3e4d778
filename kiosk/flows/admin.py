"""The admin menu at the kiosk: entered with the admin PIN or an enrolled admin's finger.

The chart (``docs/flows/admin.md`` is drawn from it by ``kiosk flows diagrams``)::

    locked --pin_entered--> checking_pin --pin_accepted--> menu
    checking_pin --pin_wrong|pin_locked--> locked (attempts left, or locked until, on the screen)
    locked --finger_matched [an admin's finger]--> menu
    menu --page_requested--> viewing_page --action_requested--> (runs it) | confirming_action
    menu --enrol_requested--> enrolling;  viewing_page --person_delete_requested--> enrolling
    enrolling --enrolment_finished--> menu
    locked | menu | viewing_page | confirming_action | enrolling --exit_requested|timed_out--> finished

Enrolment and deletion run as a sub-flow (``EnrolmentFlow``) while the admin flow is in
``enrolling``: every event the admin chart does not take there is handed to the sub-flow, and
``tick()`` ticks it; when it reaches ``finished`` (done, cancelled or inactive: it has wiped
what it captured) the admin flow returns to the menu, or, when the sub-flow timed out (the admin
walked away), finishes: the next person at the kiosk never finds the admin menu open. A
sub-flow keeps each chart small, lets enrolment be tested and drawn on its own, and guarantees
that leaving enrolment always wipes.

``finished`` is final: the host sees ``flow.state == "finished"``, goes back to attendance, and
builds a new AdminFlow (which starts ``locked``) for the next session. The lockout is counted by
the port (``check_admin_pin``); the flow only says what the port answered. Pages and actions are
a fixed list, with their arguments named and bounded: nothing here can reach a shell.
"""

import logging

from kiosk.flows.base import Flow, State
from kiosk.flows.enrolment import EnrolmentFlow

log = logging.getLogger(__name__)

# page -> (arguments the page takes, {action: arguments the action takes})
PAGES = {
    "status": ((), {"clear_unknown_slots": ()}),   # the doctor checks; sensor templates we did not write
    "people": (("offset",), {}),                   # enrolled people; each row offers "delete"
    "events": (("offset",), {}),                   # today's attendance events
    "export": ((), {"export": ("path",)}),         # CSV and ZKTeco ATTLOG onto a mounted USB stick
    "sync": ((), {"sync_now": ()}),
    "outbox": ((), {}),                            # records waiting to be sent
    "network": ((), {}),
    "log": ((), {}),                               # recent log lines
    "door": ((), {"door_test": ()}),
    "punch_mode": ((), {"set_punch_mode": ("mode",)}),
    # re-provision by a signed code (camera) or file (boot partition); upload all, then wipe
    "provisioning": ((), {"reprovision_code": (), "reprovision_file": (), "decommission": ()}),
}
# actions that change what cannot be undone are confirmed first
CONFIRM_ACTIONS = ("clear_unknown_slots", "reprovision_code", "reprovision_file", "decommission")
# pages only a session entered with the admin PIN may use (an admin's finger is not enough to
# move the kiosk to another server or wipe it)
PIN_PAGES = ("provisioning",)
MAX_ARG_CHARS = 256


def clean_args(args, allowed):
    """``args`` if every key is allowed and every value a plain bounded scalar, else None."""
    args = {} if args is None else args
    if not isinstance(args, dict) or any(key not in allowed for key in args):
        return None
    for value in args.values():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str) and len(value) <= MAX_ARG_CHARS and value.isprintable():
            continue
        if isinstance(value, int) and abs(value) < 2 ** 31:
            continue
        return None
    return dict(args)


class AdminFlow(Flow):
    """The admin session (see the module docstring for the chart)."""

    locked = State(initial=True)
    checking_pin = State()
    menu = State()
    viewing_page = State()
    confirming_action = State()
    enrolling = State()
    finished = State(final=True)

    pin_entered = locked.to(checking_pin, on="check_pin")
    pin_accepted = checking_pin.to(menu)
    pin_wrong = checking_pin.to(locked)
    pin_locked = checking_pin.to(locked)
    finger_matched = (locked.to(menu, cond="is_admin_finger", on="admit_finger")
                      | locked.to.itself(internal=True, on="refuse_finger"))
    finger_not_matched = locked.to.itself(internal=True, on="refuse_finger")

    page_requested = (menu.to(viewing_page, cond="known_page", on="open_page")
                      | viewing_page.to.itself(internal=True, cond="known_page", on="open_page"))
    action_requested = (viewing_page.to(confirming_action, cond="needs_confirmation", on="hold_action")
                        | viewing_page.to.itself(internal=True, on="run_action"))
    confirmed = confirming_action.to(viewing_page, on="run_held_action")
    back_requested = viewing_page.to(menu) | confirming_action.to(viewing_page, on="drop_action")

    enrol_requested = menu.to(enrolling)
    person_delete_requested = viewing_page.to(enrolling, cond="on_people_page")
    enrolment_finished = enrolling.to(menu)

    exit_requested = (locked.to(finished) | menu.to(finished) | viewing_page.to(finished)
                      | confirming_action.to(finished) | enrolling.to(finished))
    timed_out = (locked.to(finished) | menu.to(finished) | viewing_page.to(finished)
                 | confirming_action.to(finished) | enrolling.to(finished))

    timeouts = dict.fromkeys(("locked", "menu", "viewing_page", "confirming_action"), "inactivity_s")

    def __init__(self, *, ports, clock, settings):
        self.settings = settings
        self.entered_by = None      # "pin" or the admin's person id
        self.page = None
        self.page_args = {}
        self.held = None            # (action, args) waiting for confirmation
        self.sub = None             # the EnrolmentFlow while enrolling
        super().__init__(ports=ports, clock=clock)

    # --- the sub-flow ---------------------------------------------------------------------------

    def handle(self, event, **data):
        """Deliver one event; while enrolling, what the admin chart does not take goes to the sub-flow."""
        if self.state == "enrolling" and event not in self.allowed_event_names():
            taken = self.sub.handle(event, **data)
            self._sub_check()
            return taken
        return super().handle(event, **data)

    def tick(self, now_s=None):
        super().tick(now_s)
        if self.state == "enrolling":
            self.sub.tick(now_s)
            self._sub_check()

    def _sub_check(self):
        if self.sub.state == "finished":
            # an enrolment left by inactivity means the admin walked away: the session ends with it
            timed_out = bool(self.sub.transitions_taken) and self.sub.transitions_taken[-1][1] == "timed_out"
            self.send("timed_out" if timed_out else "enrolment_finished")

    def on_enter_enrolling(self, event=None, person_id=None):
        self.sub = EnrolmentFlow(ports=self.ports, clock=self.clock, settings=self.settings)
        if str(event) == "enrol_requested":
            self.sub.handle("enrol_requested")
        else:
            self.sub.handle("person_delete_requested", person_id=person_id)
        log.info("admin %s: %s", self.entered_by, event)

    def on_exit_enrolling(self):
        if self.sub.state != "finished":
            self.sub.handle("cancelled")  # leaving by exit: the sub-flow wipes what it holds
        self.sub = None

    # --- timeouts and guards --------------------------------------------------------------------

    def inactivity_s(self):
        return self.settings.ui.inactivity_timeout_s

    def is_admin_finger(self, slot=None):
        person = self.ports.person_for_finger(slot)
        return person is not None and person.role == "admin"

    def known_page(self, page=None, args=None):
        return page in PAGES and clean_args(args, PAGES[page][0]) is not None

    def needs_confirmation(self, action=None, args=None):
        return action in CONFIRM_ACTIONS and self._action_args(action, args) is not None

    def on_people_page(self, person_id=None):
        return self.page == "people" and isinstance(person_id, str)

    # --- locked ---------------------------------------------------------------------------------

    def on_enter_locked(self, event=None):
        if event is None or str(event) not in ("pin_wrong", "pin_locked"):
            self.ports.start_capture("finger", mode="identify")
            self.ports.show("admin_locked", error=None)

    def check_pin(self, pin=None):
        result = self.ports.check_admin_pin(pin)
        if result.ok:
            self.entered_by = "pin"
            self.send("pin_accepted")
        elif result.outcome == "locked":
            log.warning("admin PIN locked out")
            self.send("pin_locked", until=result.locked_until_s)
        else:
            log.warning("admin PIN refused (%s)", result.outcome)
            self.send("pin_wrong", outcome=result.outcome, attempts_left=result.attempts_left)

    def on_pin_wrong(self, outcome=None, attempts_left=None):
        self.ports.signal("error")
        self.ports.show("admin_locked", error="no_admin_pin" if outcome == "no_pin" else "wrong_pin",
                        attempts_left=attempts_left)

    def on_pin_locked(self, until=None):
        self.ports.signal("error")
        self.ports.show("admin_locked", error="locked", until=until)

    def admit_finger(self, slot=None):
        self.entered_by = self.ports.person_for_finger(slot).person_id

    def refuse_finger(self, slot=None):
        log.warning("admin refused: the finger is not an enrolled admin's")
        self.extend_deadline()
        self.ports.signal("error")
        self.ports.show("admin_locked", error="not_admin")

    # --- the menu and its pages -----------------------------------------------------------------

    def on_enter_menu(self, source=None):
        if source is not None and source.id in ("checking_pin", "locked"):
            log.info("admin session opened by %s", self.entered_by)
            self.ports.stop_capture("finger")
            self.ports.signal("ok")
        self.page, self.page_args = None, {}
        self.ports.show("admin_menu", pages=list(PAGES), entered_by=self.entered_by)

    def open_page(self, page=None, args=None):
        self.page, self.page_args = page, clean_args(args, PAGES[page][0])
        self._render()

    def _render(self, result=None):
        content = self._ask(self.page, **self.page_args)
        actions = list(PAGES[self.page][1])
        self.ports.show("admin_page", page=self.page, content=content, actions=actions, result=result)

    def _ask(self, page, **args):
        """The port's answer, or an error the page shows instead of crashing the session."""
        if page in PIN_PAGES and self.entered_by != "pin":
            log.warning("admin %s refused the %s page: it needs the admin PIN", self.entered_by, page)
            return {"error": "admin_pin_required"}
        try:
            answer = self.ports.admin_page(page, **args)
        except Exception as e:  # an export to a full stick, a sync that failed: shown, not raised
            log.error("admin page %s failed: %s", page, e)
            return {"error": getattr(e, "guidance", None) or type(e).__name__}
        return answer if isinstance(answer, dict) else {"value": answer}

    def _action_args(self, action, args):
        allowed = PAGES[self.page][1]
        return clean_args(args, allowed[action]) if action in allowed else None

    def run_action(self, action=None, args=None):
        clean = self._action_args(action, args)
        if clean is None:
            self.extend_deadline()
            self.ports.show("admin_page", page=self.page, content=None, actions=list(PAGES[self.page][1]),
                            result={"error": "unknown_action"})
            return
        self._run(action, clean)

    def _run(self, action, args):
        self.extend_deadline()
        log.info("admin %s: %s on %s", self.entered_by, action, self.page)
        result = self._ask(self.page, action=action, **args)
        self.ports.signal("error" if "error" in result else "ok")
        self._render(result=result)

    def hold_action(self, action=None, args=None):
        self.held = (action, self._action_args(action, args))
        self.ports.show("admin_confirm", page=self.page, action=action)

    def run_held_action(self):
        action, args = self.held
        self.held = None
        self._run(action, args)

    def drop_action(self):
        self.held = None
        self._render()

    # --- leaving --------------------------------------------------------------------------------

    def on_enter_finished(self, source=None):
        log.info("admin session closed (%s)", "locked screen" if source.id == "locked" else self.entered_by)
        self.ports.stop_capture("finger")
        self.entered_by = self.page = self.held = None
        self.page_args = {}
