"""The admin flow on the fake clock: PIN and finger entry with lockout, pages, actions, enrolment as a sub-flow."""

import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.errors import ExportError
from kiosk.flows.admin import PAGES, AdminFlow
from kiosk.flows.base import declared_transitions
from kiosk.flows.ports import Person

from flow_fakes import Faces
from enrolment_fakes import T1, T2, AdminPorts

TAKEN = set()
BOSS = Person("boss", "Bea Boss", role="admin")
BOB = Person("bob", "Bob Brown")


def make():
    clock = FakeClock(start=1_700_000_000.0)
    settings = config.build([("test", {"ui": {"inactivity_timeout_s": 30.0}})])
    ports = AdminPorts(clock, [BOSS, BOB], slots={1: "boss", 2: "bob"})
    flow = AdminFlow(ports=ports, clock=clock, settings=settings)
    return flow, ports, clock, Faces(["boss", "bob"])


@pytest.fixture
def admin():
    flows = []

    def build():
        made = make()
        flows.append(made[0])
        return made
    yield build
    for flow in flows:
        TAKEN.update(flow.transitions_taken)


def enter(flow, ports):
    flow.handle("pin_entered", pin=ports.admin_pin)
    assert flow.state == "menu"


def page_calls(ports):
    return [d for n, d in ports.calls if n == "admin_page"]


# --- entering -------------------------------------------------------------------------------------

def test_the_admin_pin_opens_the_menu(admin):
    flow, ports, _, _ = admin()
    assert flow.state == "locked" and ports.screen == {"screen": "admin_locked", "error": None}
    assert ports.count("start_capture", kind="finger", mode="identify") == 1
    enter(flow, ports)
    assert ports.screen["screen"] == "admin_menu" and ports.screen["pages"] == list(PAGES)
    assert ports.screen["entered_by"] == "pin" and ("signal", {"kind": "ok"}) in ports.calls


def test_wrong_pins_show_attempts_left_then_lock(admin):
    flow, ports, clock, _ = admin()
    for left in (4, 3, 2, 1):
        flow.handle("pin_entered", pin="000000")
        assert flow.state == "locked"
        assert ports.screen["error"] == "wrong_pin" and ports.screen["attempts_left"] == left
    flow.handle("pin_entered", pin="000000")
    assert ports.screen["error"] == "locked" and ports.screen["until"] == clock.time() + 600
    flow.handle("pin_entered", pin=ports.admin_pin)  # the right PIN during the lockout does not open
    assert flow.state == "locked" and ports.screen["error"] == "locked"
    assert ports.count("signal", kind="error") == 6
    assert ports.count("start_capture", kind="finger", mode="identify") == 1  # not restarted per attempt


def test_no_provisioned_admin_pin_says_so(admin):
    flow, ports, _, _ = admin()
    ports.no_admin_pin = True
    flow.handle("pin_entered", pin="123456")
    assert flow.state == "locked" and ports.screen["error"] == "no_admin_pin"


def test_an_admins_finger_opens_and_anyone_elses_is_refused(admin):
    flow, ports, _, _ = admin()
    flow.handle("finger_matched", slot=2)     # bob is an employee
    assert flow.state == "locked" and ports.screen["error"] == "not_admin"
    flow.handle("finger_matched", slot=99)    # nobody
    assert flow.state == "locked" and ports.screen["error"] == "not_admin"
    flow.handle("finger_not_matched")
    assert flow.state == "locked"
    flow.handle("finger_matched", slot=1)
    assert flow.state == "menu" and ports.screen["entered_by"] == "boss"
    assert ports.count("stop_capture", kind="finger") == 1


def test_nobody_at_the_locked_screen_finishes(admin):
    flow, ports, clock, _ = admin()
    clock.advance(31)
    flow.tick()
    assert flow.state == "finished" and ports.calls[-1] == ("stop_capture", {"kind": "finger"})
    assert not flow.handle("pin_entered", pin=ports.admin_pin)


def test_exit_from_the_locked_screen(admin):
    flow, _, _, _ = admin()
    flow.handle("exit_requested")
    assert flow.state == "finished"


def test_stray_events_are_ignored_when_locked(admin):
    flow, ports, _, _ = admin()
    for event in ("page_requested", "action_requested", "enrol_requested", "confirmed", "back_requested"):
        assert not flow.handle(event, page="door", action="door_test")
    assert flow.state == "locked" and not page_calls(ports)


# --- pages and actions ----------------------------------------------------------------------------

def test_pages_show_what_the_port_answers(admin):
    flow, ports, _, _ = admin()
    enter(flow, ports)
    flow.handle("page_requested", page="status")
    assert flow.state == "viewing_page"
    assert ports.screen["screen"] == "admin_page" and ports.screen["content"] == {"page": "status"}
    assert ports.screen["actions"] == ["clear_unknown_slots"]
    flow.handle("page_requested", page="events", args={"offset": 50})
    assert ports.screen["content"] == {"page": "events", "offset": 50}
    flow.handle("page_requested", page="events", args={"offset": None})
    assert ports.screen["content"] == {"page": "events", "offset": None}
    flow.handle("page_requested", page="outbox")
    assert ports.screen["content"] == {"value": 7}
    flow.handle("back_requested")
    assert flow.state == "menu" and ports.screen["screen"] == "admin_menu"


@pytest.mark.parametrize("page, args", [("shell", None), ("../etc", None), ("events", {"cmd": "sh"}),
                                        ("events", {"offset": "x" * 300}), ("events", {"offset": [1]}),
                                        ("events", "offset=1"), ("events", {"offset": 2 ** 40})])
def test_unknown_pages_and_arguments_are_refused(admin, page, args):
    flow, ports, _, _ = admin()
    enter(flow, ports)
    assert not flow.handle("page_requested", page=page, args=args)
    assert flow.state == "menu" and not page_calls(ports)


@pytest.mark.parametrize("page, action, args", [
    ("export", "export", {"path": "/media/usb0"}),
    ("sync", "sync_now", None),
    ("door", "door_test", None),
    ("punch_mode", "set_punch_mode", {"mode": "toggle"}),
])
def test_actions_go_through_the_port_and_the_page_refreshes(admin, page, action, args):
    flow, ports, _, _ = admin()
    enter(flow, ports)
    flow.handle("page_requested", page=page)
    flow.handle("action_requested", action=action, args=args)
    assert flow.state == "viewing_page"
    assert page_calls(ports)[-2] == {"page": page, "action": action, **(args or {})}
    assert page_calls(ports)[-1] == {"page": page}
    assert ports.screen["result"]["action"] == action and ("signal", {"kind": "ok"}) in ports.calls[-3:]


@pytest.mark.parametrize("action, args", [("door_test", None), ("sync_now", None), ("export", {"path": "/x"}),
                                          ("set_punch_mode", {"mode": "x", "extra": 1}), ("rm -rf /", None)])
def test_an_action_not_offered_by_the_page_is_refused(admin, action, args):
    flow, ports, _, _ = admin()
    enter(flow, ports)
    flow.handle("page_requested", page="punch_mode")
    before = len(page_calls(ports))
    flow.handle("action_requested", action=action, args=args)
    assert ports.screen["result"] == {"error": "unknown_action"}
    assert len(page_calls(ports)) == before and flow.state == "viewing_page"


def test_a_failing_action_is_shown_not_raised(admin):
    flow, ports, _, _ = admin()
    enter(flow, ports)
    flow.handle("page_requested", page="export")
    ports.fail_page = ExportError("no stick at /media/usb0")
    flow.handle("action_requested", action="export", args={"path": "/media/usb0"})
    assert flow.state == "viewing_page" and ports.screen["result"] == {"error": "ExportError"}
    assert ports.screen["content"] == {"error": "ExportError"}
    assert ("signal", {"kind": "error"}) in ports.calls[-3:]


def test_clearing_unknown_sensor_slots_is_confirmed_first(admin):
    flow, ports, _, _ = admin()
    enter(flow, ports)
    flow.handle("page_requested", page="status")
    flow.handle("action_requested", action="clear_unknown_slots")
    assert flow.state == "confirming_action" and ports.screen["screen"] == "admin_confirm"
    assert not any(d.get("action") for d in page_calls(ports))
    flow.handle("back_requested")
    assert flow.state == "viewing_page" and not any(d.get("action") for d in page_calls(ports))
    flow.handle("action_requested", action="clear_unknown_slots")
    flow.handle("confirmed")
    assert flow.state == "viewing_page"
    assert {"page": "status", "action": "clear_unknown_slots"} in page_calls(ports)


def test_the_provisioning_page_needs_a_session_entered_with_the_admin_pin(admin):
    """An admin's finger opens the menu, but not the page that moves or wipes the kiosk."""
    flow, ports, _, _ = admin()
    flow.handle("finger_matched", slot=1)
    flow.handle("page_requested", page="provisioning")
    assert ports.screen["content"] == {"error": "admin_pin_required"} and not page_calls(ports)
    flow.handle("action_requested", action="decommission")
    flow.handle("confirmed")
    assert ports.screen["content"] == {"error": "admin_pin_required"} and not page_calls(ports)
    flow, ports, _, _ = admin()
    enter(flow, ports)
    flow.handle("page_requested", page="provisioning")
    flow.handle("action_requested", action="decommission")
    assert flow.state == "confirming_action"              # cannot be undone: confirmed first
    flow.handle("confirmed")
    assert {"page": "provisioning", "action": "decommission"} in page_calls(ports)


# --- enrolment and deletion as a sub-flow ----------------------------------------------------------

def test_enrolment_runs_inside_the_admin_session_and_returns_to_the_menu(admin):
    flow, ports, clock, faces = admin()
    enter(flow, ports)
    flow.handle("enrol_requested")
    assert flow.state == "enrolling" and flow.sub.state == "entering_details"
    assert flow.handle("details_entered", person_id="carol", name="Carol Cole", role="employee")
    for _ in range(3):
        flow.handle("face_seen", frame=faces.frame("carol", dt=0.35))
    for template in (T1, T2):
        flow.handle("finger_enrolled", template=template)
    flow.handle("pin_skipped")
    clock.advance(29)
    flow.tick()  # the sub-flow's own inactivity deadline, not the admin's
    assert flow.sub.state == "summary"
    flow.handle("confirmed")
    assert flow.sub.state == "done" and ports.enrolled[-1]["person_id"] == "carol"
    flow.handle("cancelled")
    assert flow.state == "menu" and flow.sub is None and ports.screen["screen"] == "admin_menu"


@pytest.mark.parametrize("where", ["entering_details", "capturing_face", "done"])
def test_inactivity_in_enrolment_wipes_it_and_ends_the_session(admin, where):
    flow, ports, clock, faces = admin()
    enter(flow, ports)
    flow.handle("enrol_requested")
    if where != "entering_details":
        flow.handle("details_entered", person_id="carol", name="Carol Cole", role="employee")
        flow.handle("face_seen", frame=faces.frame("carol"))
    if where == "done":
        flow.handle("face_skipped")
        flow.handle("fingers_skipped")
        flow.handle("pin_entered", pin="246802")
        flow.handle("pin_entered", pin="246802")
        flow.handle("confirmed")
    sub = flow.sub
    assert sub.state == where
    clock.advance(31)
    flow.tick()
    # the admin walked away: nobody who comes next finds the admin menu
    assert flow.state == "finished" and flow.entered_by is None
    assert sub.state == "finished" and sub.vectors == [] and sub.person_id is None
    assert ports.screen["screen"] != "admin_menu"
    assert [p["person_id"] for p in ports.enrolled] == (["carol"] if where == "done" else [])


def test_exit_during_enrolment_wipes_it(admin):
    flow, ports, _, faces = admin()
    enter(flow, ports)
    flow.handle("enrol_requested")
    flow.handle("details_entered", person_id="carol", name="Carol Cole", role="employee")
    sub = flow.sub
    flow.handle("exit_requested")
    assert flow.state == "finished" and sub.state == "finished" and sub.person_id is None


def test_delete_from_the_people_page(admin):
    flow, ports, _, _ = admin()
    enter(flow, ports)
    flow.handle("page_requested", page="events")
    assert not flow.handle("person_delete_requested", person_id="bob")  # only from the people page
    flow.handle("page_requested", page="people")
    flow.handle("person_delete_requested", person_id="bob")
    assert flow.state == "enrolling" and ports.screen["screen"] == "delete_confirm"
    flow.handle("confirmed")
    assert ports.deleted == ["bob"] and flow.sub.state == "done"
    flow.handle("cancelled")
    assert flow.state == "menu"


@pytest.mark.parametrize("where", ["menu", "viewing_page", "confirming_action"])
def test_inactivity_or_exit_in_the_session_finishes(admin, where):
    for leave in ("timed_out", "exit_requested"):
        flow, ports, clock, _ = admin()
        enter(flow, ports)
        if where != "menu":
            flow.handle("page_requested", page="status")
        if where == "confirming_action":
            flow.handle("action_requested", action="clear_unknown_slots")
        assert flow.state == where
        if leave == "timed_out":
            clock.advance(29)
            flow.tick()
            assert flow.state == where
            clock.advance(2)
            flow.tick()
        else:
            flow.handle("exit_requested")
        assert flow.state == "finished" and flow.entered_by is None and flow.held is None


def test_the_session_deadline_can_be_shown_as_a_countdown(admin):
    flow, ports, clock, _ = admin()
    enter(flow, ports)
    assert flow.is_in("menu", "viewing_page") and flow.remaining_s() == 30.0
    clock.advance(12.5)
    assert flow.remaining_s() == 17.5
    clock.advance(40)
    assert flow.remaining_s() == 0.0
    flow.handle("enrol_requested")
    assert flow.remaining_s() is None and flow.sub.remaining_s() == 30.0  # the sub-flow's deadline counts


def test_the_admin_pin_never_reaches_the_log(admin, caplog):
    flow, ports, _, _ = admin()
    caplog.set_level("DEBUG")
    flow.handle("pin_entered", pin="975310")
    enter(flow, ports)
    assert "975310" not in caplog.text and ports.admin_pin not in caplog.text
    assert "admin session opened by pin" in caplog.text


def test_zz_every_declared_transition_was_taken():
    missing = declared_transitions(AdminFlow) - TAKEN
    assert not missing, f"transitions never exercised: {sorted(missing)}"
