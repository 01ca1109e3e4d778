"""`kiosk doctor`: check the camera, fingerprint sensor, GPIO, disk, clock, server, model files and microphone.

Prints a table (or JSON with --json) and exits 0 when nothing failed, 1 when a check failed.
With --backend sim the simulators start in-process (the fingerprint sensor simulator, the
camera scenario player, the microphone scenario player and mock GPIO), unless fingerprint.port points at the pty of an external
`kiosk-sim sensor`, which is then used instead. The fingerprint check warns when the sensor holds
templates the kiosk database did not write (they are left alone until an admin clears them).
"""

import contextlib
import json
import sys

from kiosk import doctor
from kiosk.storage import sensor_slots
from kiosk.errors import ConfigError


def register(sub):
    parser = sub.add_parser("doctor", help="hardware and connectivity self-test (exit 1 on failure)",
                            description=__doc__)
    parser.add_argument("--backend", choices=("pi", "usb", "sim"),
                        help="hardware to check (default: hardware.backend from the settings)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    parser.add_argument("--require-server", action="store_true",
                        help="fail (not warn) when the sync server is not configured or not reachable")
    parser.add_argument("--only", action="append", choices=doctor.CHECK_NAMES, metavar="CHECK",
                        help=f"run only this check (repeatable; one of {', '.join(doctor.CHECK_NAMES)})")
    parser.add_argument("--door", action="store_true",
                        help="also pulse the door relay for 0.3 s (off by default: the door stays locked; "
                             "the GPIO check still tests lights and buzzer)")
    parser.add_argument("--sim-fault", action="append", default=[], metavar="PART:KIND",
                        help="with --backend sim, start a simulator broken: sensor:silence, sensor:busy, "
                             "sensor:wrong_password, sensor:garbage, camera:stall, camera:freeze, "
                             "camera:unplug, microphone:unplug, microphone:dead (repeatable)")
    parser.set_defaults(func=run)


def _parse_faults(specs):
    faults = []
    for spec in specs:
        part, sep, kind = spec.partition(":")
        if not sep or not part or not kind:
            raise ConfigError(f"--sim-fault {spec!r}: expected PART:KIND, e.g. sensor:silence")
        faults.append((part, kind))
    return faults


def run(args):
    from kiosk import app

    settings = app.load_settings(args)
    if args.backend:
        settings = settings.replace(hardware={"backend": args.backend})
    backend = settings.hardware.backend
    faults = _parse_faults(args.sim_fault)
    if faults and backend != "sim":
        raise ConfigError("--sim-fault needs --backend sim")
    mic_faults = [kind for part, kind in faults if part == "microphone"]
    faults = [(part, kind) for part, kind in faults if part != "microphone"]
    for kind in mic_faults:
        if kind not in ("unplug", "dead"):
            raise ConfigError(f"--sim-fault microphone:{kind}: known microphone faults are unplug, dead")
    with contextlib.ExitStack() as stack:
        if backend == "sim":
            try:
                sims = stack.enter_context(app.start_simulators(settings, faults=faults))
            except ValueError as e:  # an unknown fault kind from the simulator
                raise ConfigError(f"--sim-fault: {e}") from None
            settings = sims.settings_for(settings)
            player, factory = sims.player, sims.pin_factory
            from kiosk_sim.microphone import ScenarioMicrophone

            mic_player = ScenarioMicrophone()
            for kind in mic_faults:
                mic_player.unplug() if kind == "unplug" else mic_player.dead()
        else:
            player = factory = mic_player = None
        report = doctor.run_checks(
            settings,
            open_camera=lambda: app.build_camera(settings, player=player),
            open_sensor=lambda: app.build_fingerprint_sensor(settings),
            open_board=lambda: app.build_board(settings, pin_factory=factory),
            open_microphone=lambda: app.build_microphone(settings, player=mic_player),
            require_server=args.require_server,
            pulse_door=args.door,
            only=args.only,
            written_slots=lambda: sensor_slots.written_slot_numbers_at(settings.db_path),
        )
    if args.json:
        print(json.dumps({"backend": backend, **report.as_dict()}, indent=2))
    else:
        print(f"kiosk doctor ({backend} backend)")
        print(doctor.render_table(report))
    sys.stdout.flush()
    return 0 if report.ok else 1
