"""`kiosk provision`: first-boot provisioning from kiosk-provision.toml on the boot partition.

Run by kiosk-firstboot.service as root. Safe to run again: a registered kiosk registers no
second device. See docs/provisioning.md for the technician's procedure.
"""

import getpass
import sys


def register(sub):
    parser = sub.add_parser("provision", help="register this kiosk from kiosk-provision.toml (first boot)",
                            description=__doc__)
    parser.add_argument("--file", metavar="PATH",
                        help="provisioning file (default: BOOT_DIR/kiosk-provision.toml)")
    parser.add_argument("--boot-dir", metavar="DIR", default="/boot/firmware",
                        help="the boot partition (default: /boot/firmware)")
    parser.add_argument("--etc-dir", metavar="DIR", default="/etc",
                        help="system configuration root; kiosk files go to DIR/kiosk (default: /etc)")
    parser.add_argument("--state-dir", metavar="DIR", default="/var/lib/kiosk",
                        help="data directory holding the database and audit log (default: /var/lib/kiosk)")
    parser.add_argument("--console", metavar="PATH",
                        help="also show progress and errors as plain text here (the unit uses /dev/tty1)")
    parser.add_argument("--max-attempts", type=int, default=0, metavar="N",
                        help="give up after N failed registration attempts (default: 0 = keep trying)")
    parser.add_argument("--max-backoff-s", type=float, default=300.0, metavar="SECONDS",
                        help="longest wait between registration attempts (default: 300)")
    parser.add_argument("--timeout-s", type=float, default=15.0, metavar="SECONDS",
                        help="timeout of one request to the server (default: 15)")
    parser.add_argument("--check", action="store_true",
                        help="only validate the file and list its problems (for a technician's laptop)")
    parser.add_argument("--hash-pin", action="store_true",
                        help="read an admin PIN (twice) and print its hash for admin.pin_hash")
    parser.set_defaults(func=run)


def run(args):
    from pathlib import Path

    from kiosk import provision, provision_file

    if args.hash_pin:
        return _hash_pin(provision_file)
    paths = provision.Paths(boot_dir=Path(args.boot_dir), etc_dir=Path(args.etc_dir), state_dir=Path(args.state_dir))
    if args.check:
        path = Path(args.file) if args.file else paths.boot_dir / provision_file.FILE_NAME
        pf = provision_file.load(path, boot_dir=path.parent if args.file else paths.boot_dir)
        kind = "re-provisioning" if pf.reprovision else "first provisioning"
        print(f"{path}: valid ({kind} for {pf.server_url}, site {pf.site!r}, door {pf.door!r})")
        return 0
    outcome = provision.provision(paths=paths, file=args.file, console=provision.Console(args.console),
                                  max_attempts=args.max_attempts, max_backoff_s=args.max_backoff_s,
                                  timeout_s=args.timeout_s)
    if outcome.action == "nothing":
        print("no provisioning file: nothing to do")
    else:
        print(f"{outcome.action}: device {outcome.device_id}")
    return 0


def _hash_pin(provision_file):
    if sys.stdin.isatty():
        pin = getpass.getpass("admin PIN: ")
        if getpass.getpass("again: ") != pin:
            print("the two PINs differ", file=sys.stderr)
            return 1
    else:
        pin = sys.stdin.readline().rstrip("\n")
    if not (pin.isdigit() and 4 <= len(pin) <= 12):
        print("the admin PIN must be 4 to 12 digits", file=sys.stderr)
        return 1
    print(provision_file.hash_pin(pin))
    return 0
