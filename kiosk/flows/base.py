"""What every flow shares: a declarative state chart, the injected clock, deadlines, safe events.

A flow is a ``python-statemachine`` chart (states and transitions declared on the class) plus:

- ``ports``: the only way out (see ``kiosk.flows.ports``);
- ``clock``: ``monotonic()`` for deadlines and ``time()`` for wall times; nothing here reads
  the system clock or starts a timer. The owner calls ``tick()`` often (every 100 ms or so);
  when the current state's deadline has passed, the flow receives ``timed_out``;
- ``timeouts``: seconds per state id (a number, or the name of a method returning one);
  entering a state arms its deadline, leaving it disarms;
- safe events: an event the current state does not expect (a stray tap, a late camera frame)
  is ignored and logged at DEBUG, never raised, so nothing from outside can crash a kiosk.
"""

import collections
import logging

from statemachine import State, StateMachine

log = logging.getLogger(__name__)

TRANSITIONS_KEPT = 1000

__all__ = ["Flow", "State"]


class Flow(StateMachine):
    """Base class of the kiosk's flows (see the module docstring)."""

    allow_event_without_transition = True   # a stray event is ignored, not raised
    enable_self_transition_entries = False  # a frame handled in place does not re-enter the state
    timeouts = {}

    def __init__(self, *, ports, clock, **kwargs):
        self.ports = ports
        self.clock = clock
        self.deadline_s = None
        # the latest (source, event, target), for tests and diagnostics; bounded: a kiosk runs for months
        self.transitions_taken = collections.deque(maxlen=TRANSITIONS_KEPT)
        self.transitions_count = 0  # all of them: the trail's length stops growing once it is full
        super().__init__(**kwargs)

    # --- the state ------------------------------------------------------------------------------

    @property
    def state(self):
        """The id of the current state (``"idle"``, ``"entering_pin"`` ...)."""
        return next(iter(self.configuration)).id

    def is_in(self, *state_ids):
        return self.state in state_ids

    # --- events ---------------------------------------------------------------------------------

    def handle(self, event, **data):
        """Deliver one event; unexpected ones are ignored (logged at DEBUG). Returns True if taken."""
        before = self.transitions_count
        if event not in self.allowed_event_names():
            log.debug("%s: %s ignored in %s", type(self).__name__, event, self.state)
            return False
        self.send(event, **data)
        return self.transitions_count > before

    def allowed_event_names(self):
        return {e.id for e in self.allowed_events}

    def tick(self, now_s=None):
        """Check the deadline against the clock's monotonic time (or ``now_s``)."""
        now_s = self.clock.monotonic() if now_s is None else now_s
        if self.deadline_s is not None and now_s >= self.deadline_s:
            self.deadline_s = None
            self.handle("timed_out")

    def remaining_s(self):
        """Seconds until the current state's deadline, or None when it has none."""
        if self.deadline_s is None:
            return None
        return max(0.0, self.deadline_s - self.clock.monotonic())

    def extend_deadline(self):
        """Re-arm the current state's deadline ("more time", or activity on the screen)."""
        self._arm(self.state)

    # --- generic callbacks (python-statemachine calls these by name) ----------------------------

    def on_enter_state(self, target, event=None, source=None):
        self._arm(target.id)

    def after_transition(self, event, source, target):
        self.transitions_taken.append((source.id, str(event), target.id))
        self.transitions_count += 1

    def _arm(self, state_id):
        timeout = self.timeouts.get(state_id)
        if isinstance(timeout, str):
            timeout = getattr(self, timeout)()
        self.deadline_s = None if timeout is None else self.clock.monotonic() + float(timeout)


def declared_transitions(flow_class):
    """Every (source, event, target) the class declares, for coverage checks and diagrams."""
    found = set()
    for state in flow_class.states:
        for transition in state.transitions:
            for event in transition.events:
                found.add((transition.source.id, str(event), transition.target.id))
    return found
