"""3,000 people, a module of capacity 200: the working set, claim and verify, and the write budget.

Through the real driver against the sensor simulator (real minutiae matching) and real storage.
Templates are made cheaply: the three people who act in the test enrol real FVC fingers on the
simulated sensor; the 2,997 others get records of random minutiae (``random_record``), which the
real matcher scores as other fingers (a few microseconds each to make, where extracting 3,000
images would take a minute). Their slots on the server run 0..2999, far past the module's 200.
"""

import pytest

from kiosk import config
from kiosk.clock import FakeClock
from kiosk.device_ports import DevicePorts, HeadlessScreen
from kiosk.drivers.fingerprint import FingerprintSensor
from kiosk.errors import NoMatchError
from kiosk.flows import working_set
from kiosk.flows.attendance import AttendanceFlow
from kiosk.flows.sensor_library import reconcile
from kiosk.storage import db, events, people, sensor_slots
from kiosk.storage.seal import DataKey
from kiosk_sim import r30x_minutiae
from kiosk_sim.r30x import start_simulator
from sensor_enrol import sensor_template

PEOPLE = 3000
CAPACITY = 200
REGULAR = "FVC2002_DB1_B/104"  # a person inside the working set (punched recently)
NEWCOMER = "FVC2002_DB1_B/107"  # a person outside it (never punched here)
STRANGER = "FVC2002_DB1_B/108"  # another enrolled person's finger


class VerifyRequests:
    """Stands in for the poller thread: keeps what the flow asked the sensor to do."""

    def __init__(self):
        self.mode, self.options = None, {}

    def set_mode(self, mode, **options):
        self.mode, self.options = mode, options


@pytest.fixture
def office(tmp_path, datasets):
    clock = FakeClock(start=1_700_000_000.0)
    sim = start_simulator(speed=0, capacity=CAPACITY, model="R503", fingers_dir=datasets / "fingers")
    sensor = FingerprintSensor(port=sim.port, timeout_s=2.0)
    sensor.open()
    database = db.open_db(":memory:")
    key = DataKey.create(tmp_path / "data.key")
    real = {"p0100": sensor_template(sim, sensor, REGULAR), "p2990": sensor_template(sim, sensor, NEWCOMER),
            "p2500": sensor_template(sim, sensor, STRANGER)}
    people.upsert_people(database, [{"person_id": f"p{n:04d}", "name": f"Person {n}"} for n in range(PEOPLE)]
                         + [{"person_id": "boss", "role": "admin", "name": "Admin"}])
    for n in range(PEOPLE):
        person_id = f"p{n:04d}"
        template = real.get(person_id) or r30x_minutiae.random_record(n)
        people.add_finger_template(database, key, person_id, "R503", n, template)
    people.add_finger_template(database, key, "boss", "R503", PEOPLE, r30x_minutiae.random_record(-1 % 2**32))
    # who was seen at this door lately: 250 people (more than fit), the regular among them
    seen = [f"p{n:04d}" for n in range(0, 500, 2) if n != 100] + ["p0100"]  # the regular came in last
    events.record_events(database, [dict(person_id=p, status_code=0, verify_mode="pin") for p in seen], clock=clock)
    settings = config.build([("test", {"device": {"timezone": "UTC"},
                                        "fingerprint": {"sensor_model": "R503", "reconcile_writes_per_min": 60},
                                        "attendance": {"repeat_guard_s": 0.0}})])
    yield sim, sensor, database, key, clock, settings
    sensor.close()
    sim.close()


def reconcile_until_settled(sensor, database, key, clock, size, budget, *, limit=20):
    reports = []
    while len(reports) < limit:
        report = reconcile(sensor, database, key, sensor_model="R503", clock=clock, size=size, budget=budget)
        reports.append(report)
        assert sensor.count() <= size <= CAPACITY  # never over the working set, never over capacity
        if not report.deferred:
            return reports
        clock.advance(60)
    raise AssertionError("the working set never settled")


def test_three_thousand_people_on_a_capacity_200_module(office):
    sim, sensor, database, key, clock, settings = office
    size = working_set.working_set_size(settings.fingerprint, sensor.capacity)
    assert size == CAPACITY - settings.fingerprint.enrol_reserve_slots
    budget = working_set.WriteBudget(settings.fingerprint.reconcile_writes_per_min, clock=clock)

    reports = reconcile_until_settled(sensor, database, key, clock, size, budget)
    for report in reports:  # within the write budget: at most 60 UART writes and deletes per minute
        assert len(report.written) + len(report.deleted) <= 60
    assert len(reports) == -(-size // 60)  # 190 templates at 60 a minute: four reconciles
    written = sensor_slots.written_slots(database)   # every slot on the sensor is one we wrote, for the R503
    assert {written[s].sensor_model for s in sensor.slots()} == {"R503"}
    on_sensor = {written[s].person_id for s in sensor.slots()}
    assert "boss" in on_sensor and "p0100" in on_sensor and "p2990" not in on_sensor
    assert len(on_sensor) == size

    screen = HeadlessScreen()
    ports = DevicePorts(settings=settings, database=database, data_key=key, clock=clock, screen=screen,
                        sensor_model="R503")
    ports.poller = requests = VerifyRequests()
    promoted = []
    ports.on_fingers_changed = promoted.append
    flow = AttendanceFlow(ports=ports, clock=clock, settings=settings)

    # inside the working set: finger alone, 1:N on the sensor
    sim.place_finger(REGULAR, 6)
    slot, score = sensor.identify(timeout_s=2)
    sim.lift_finger()
    flow.handle("finger_matched", slot=slot, score=score)
    assert flow.state == "showing_result" and screen.current[1]["person_id"] == "p0100"
    flow.handle("cancelled")

    # outside it: 1:N finds nobody; number + finger, verified 1:1 on the sensor
    sim.place_finger(NEWCOMER, 6)
    with pytest.raises(NoMatchError):
        sensor.identify(timeout_s=2)
    flow.handle("pin_requested")
    flow.handle("finger_claimed", typed="p2990")
    assert flow.state == "verifying_finger" and requests.mode == "verify"
    score = sensor.verify_any(requests.options["templates"], timeout_s=2)
    sim.lift_finger()
    flow.handle("finger_verified", score=score)
    assert flow.state == "showing_result" and screen.current[1]["person_id"] == "p2990"
    flow.handle("cancelled")

    # another person's finger under a claimed number is refused
    flow.handle("pin_requested")
    flow.handle("finger_claimed", typed="p2990")
    for _ in range(3):
        sim.place_finger(STRANGER, 6)
        with pytest.raises(NoMatchError):
            sensor.verify_any(requests.options["templates"], timeout_s=2)
        sim.lift_finger()
        flow.handle("finger_not_matched", guidance="not_recognised")
    assert flow.state == "refused"
    assert [e["person_id"] for e in database.query("SELECT person_id FROM attendance_events WHERE seq > 250")] \
        == ["p0100", "p2990"]

    # the punch promoted the newcomer: after the next reconcile, finger alone finds them
    assert {"p2990"} in promoted
    clock.advance(60)
    reports = reconcile_until_settled(sensor, database, key, clock, size, budget)
    assert sum(len(r.written) + len(r.deleted) for r in reports) <= 2 * len(reports) * 60
    sim.place_finger(NEWCOMER, 7)
    slot, _ = sensor.identify(timeout_s=2)
    assert ports.person_for_finger(slot).person_id == "p2990"
    assert sensor.count() == size


def test_write_budget_refills_with_the_clock():
    clock = FakeClock()
    budget = working_set.WriteBudget(6, clock=clock)
    assert sum(budget.take() for _ in range(10)) == 6  # a burst takes the minute's allowance
    clock.advance(10)  # a sixth of a minute: one more write
    assert budget.take() and not budget.take()
    clock.advance(3600)  # idle for an hour: still one minute's worth, not sixty
    assert sum(budget.take() for _ in range(100)) == 6
    with pytest.raises(ValueError):
        working_set.WriteBudget(0, clock=clock)


def test_a_person_goes_in_whole_or_not_at_all():
    templates = [("a", 0, b"a1"), ("a", 1, b"a2"), ("b", 2, b"b1"), ("b", 3, b"b2"), ("c", 4, b"c1")]
    chosen = working_set.choose(templates, ["a", "b", "c"], 3)
    assert [t[0] for t in chosen] == ["a", "a", "c"]  # b's two fingers do not fit, c's one does
