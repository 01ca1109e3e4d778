"""`kiosk bench NAME`: benchmarks that print figures (speed and memory targets live here, not in tests)."""

import importlib

# each module in kiosk/bench/ exports register(subparsers)
BENCHES = ("adms", "gallery", "fingerprint", "sync", "soak", "camera", "face", "attendance", "codes")


def register(sub):
    parser = sub.add_parser("bench", help="measure speed and memory", description=__doc__)
    benches = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name in BENCHES:
        importlib.import_module(f"kiosk.bench.{name}").register(benches)
