"""`kiosk` command line: a thin mirror of the library.

Each command lives in ``kiosk/commands/<name>.py`` and exports ``register(subparsers)``, which
adds its parser and sets ``func`` to a function taking the parsed arguments and returning an
exit code.
"""

import argparse
import importlib
import logging
import sys

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

COMMANDS = ("run", "demo", "config", "db", "bench", "doctor", "sync", "provision", "flows", "ui")


def build_parser():
    parser = argparse.ArgumentParser(prog="kiosk", description="Raspberry Pi identity and attendance kiosk.")
    parser.add_argument("--config", metavar="PATH",
                        help="settings file (default: $KIOSK_CONFIG or /etc/kiosk/kiosk.toml)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"kiosk.commands.{name}").register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from kiosk import app

    app.configure_logging(level=args.log_level, json_lines=args.log_json)
    try:
        return args.func(args) or 0
    except KioskError as e:
        print(f"kiosk {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
