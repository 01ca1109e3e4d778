"""`kiosk-sim`: start one simulator on its own, for developers, demos and outside tools.

Each simulator module exports ``register(subparsers)`` adding its parser with ``func`` set to a
function taking the parsed arguments and returning an exit code.
"""

import argparse
import importlib
import logging
import sys

# name -> module that registers it
SIMULATORS = {
    "camera": "kiosk_sim.camera",
    "sensor": "kiosk_sim.r30x",
    "sensor-ctl": "kiosk_sim.r30x_control",
    "adms": "kiosk_sim.adms",
    "server": "kiosk_sim.server",
}


def build_parser():
    parser = argparse.ArgumentParser(prog="kiosk-sim", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    sub = parser.add_subparsers(dest="simulator", metavar="SIMULATOR", required=True)
    for module in SIMULATORS.values():
        importlib.import_module(module).register(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # a port in use, a link path that cannot be made: one line, not a traceback
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"kiosk-sim {args.simulator}: {e.strerror or e}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
