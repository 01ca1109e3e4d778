"""`kiosk demo`: the whole product on its simulators, headless; says what it did."""


def register(sub):
    parser = sub.add_parser("demo", help="run the product end to end on the simulators", description=__doc__)
    parser.add_argument("--workdir", metavar="DIR", help="keep the demo's database and logs here (default: temp)")
    parser.add_argument("--people", type=int, default=12, help="people to enrol from the face dataset")
    parser.add_argument("--datasets", metavar="DIR", help="shared datasets folder (default: ../shared/datasets)")
    parser.set_defaults(func=run)


def run(args):
    from kiosk import demo

    return demo.run(workdir=args.workdir, people=args.people, datasets=args.datasets)
