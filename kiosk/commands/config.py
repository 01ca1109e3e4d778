"""`kiosk config show | check FILE | example`."""

import sys

from kiosk import config


def register(sub):
    parser = sub.add_parser("config", help="show or check settings", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    show = verbs.add_parser("show", help="print the effective settings (secrets masked) as TOML")
    show.add_argument("--unmasked", action="store_true", help="print secrets too (root only)")
    show.set_defaults(func=run_show)
    check = verbs.add_parser("check", help="validate one settings file; exit 0 if valid")
    check.add_argument("file", help="TOML file to validate")
    check.set_defaults(func=run_check)
    example = verbs.add_parser("example", help="print a fully commented settings file with every default")
    example.set_defaults(func=run_example)


def run_show(args):
    from kiosk import app

    settings = app.load_settings(args)
    sys.stdout.write(config.to_toml(config.as_dict(settings, mask_secrets=not args.unmasked)))
    return 0


def run_check(args):
    config.check_file(args.file)
    print(f"{args.file}: valid")
    return 0


def run_example(args):
    sys.stdout.write(config.example_toml())
    return 0
