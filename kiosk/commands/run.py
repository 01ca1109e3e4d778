"""`kiosk run`: the appliance (started by kiosk.service)."""


def register(sub):
    parser = sub.add_parser("run", help="run the kiosk appliance (what kiosk.service starts)", description=__doc__)
    parser.add_argument("--backend", choices=("pi", "usb", "sim"), help="override hardware.backend")
    parser.set_defaults(func=run)


def run(args):
    from kiosk import app

    return app.run_appliance(app.load_settings(args), backend=args.backend)
