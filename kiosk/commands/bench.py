"""`kiosk bench NAME`: benchmarks that print figures (speed and memory targets live here, not in tests)."""

import importlib
import logging
import sys

log = logging.getLogger(__name__)

# each module exports register(subparsers); the firmware ships the benchmarks that need no
# simulator, the kiosk-sim distribution (hw-sim/) the others as kiosk_sim_bench.NAME
BENCHES = ("adms", "gallery", "fingerprint", "sync", "soak", "camera", "face", "attendance", "idle", "ui", "voice", "codes")
SIM_BENCHES = ("adms", "fingerprint", "sync", "soak", "camera", "attendance", "idle", "ui", "codes")
# modules the simulator-backed benchmarks use that are not commands themselves: they ship with them
SIM_BENCH_HELPERS = ("attendance_scene", "fingerprint_dataset")
PACKAGES = ("kiosk.bench", "kiosk_sim_bench")
MISSING = "needs the simulators, which are not installed: install them (make test, or pip install ./hw-sim)"


def bench_module(name):
    """The module of benchmark ``name`` from whichever distribution has it, or None."""
    for package in PACKAGES:
        try:
            return importlib.import_module(f"{package}.{name}")
        except ModuleNotFoundError as e:
            if e.name not in (f"{package}.{name}", package):
                raise  # the module is there but something it imports is not
    return None


def register(sub):
    parser = sub.add_parser("bench", help="measure speed and memory", description=__doc__)
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name in BENCHES:
        module = bench_module(name)
        if module is not None:
            module.register(benches)
        else:
            _register_missing(benches, name)


def _register_missing(benches, name):
    """A stand-in for a simulator-backed benchmark that is not installed: says so and exits 2."""
    # no option prefix: whatever options follow (--events, --help) are taken as words, so the
    # answer is always the message below, never a usage error about an option it cannot know
    stand_in = benches.add_parser(name, help=f"({MISSING})", description=f"kiosk bench {name} {MISSING}.",
                                  prefix_chars="\x00", add_help=False)
    stand_in.add_argument("words", nargs="*", help="ignored")
    stand_in.set_defaults(func=lambda args: _missing(name))


def _missing(name):
    print(f"kiosk bench {name}: {MISSING}", file=sys.stderr)
    return 2
