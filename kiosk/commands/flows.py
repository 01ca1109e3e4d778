"""`kiosk flows diagrams [--check] [--out DIR]`: draw every flow's state chart from the code into docs/flows/.

Writes one Mermaid diagram per flow (`<flow>.md`) and an index (`README.md`) naming each flow's
states and events. With --check nothing is written: exit 1, naming the stale files, when any
differs from what the code draws now.
"""

import sys

DEFAULT_OUT = "docs/flows"


def register(sub):
    parser = sub.add_parser("flows", help="the kiosk's flows (state charts): draw their diagrams",
                            description=__doc__)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    diagrams = verbs.add_parser("diagrams", help="write docs/flows/<flow>.md (Mermaid) and an index; --check verifies",
                                description="Write one Mermaid diagram per flow and an index, drawn from the code.")
    diagrams.add_argument("--check", action="store_true",
                          help="write nothing; exit 1 naming every file that is missing or stale")
    diagrams.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                          help=f"folder of the diagrams (default: {DEFAULT_OUT}, from the current directory)")
    diagrams.set_defaults(func=run_diagrams)


def run_diagrams(args):
    from kiosk.flows import diagrams

    if args.check:
        stale = diagrams.stale(args.out)
        for name in stale:
            print(f"stale: {args.out}/{name} (run `kiosk flows diagrams`)", file=sys.stderr)
        if not stale:
            print(f"{args.out}: {len(diagrams.expected_files())} files up to date")
        return 1 if stale else 0
    written = diagrams.write(args.out)
    for name in written:
        print(f"wrote {args.out}/{name}")
    if not written:
        print(f"{args.out}: already up to date")
    return 0
