"""`kiosk provision`: first-boot provisioning from kiosk-provision.toml on the boot partition.

Run by kiosk-firstboot.service as root. Safe to run again: a registered kiosk registers no
second device. See docs/provisioning.md for the technician's procedure.
"""

import getpass
import logging
import sys

log = logging.getLogger(__name__)

REFUSED_EXIT = 3    # apply-request: the request was handled and refused (kiosk-provision-request.service: a success)


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
    parser.add_argument("--code-image", metavar="IMAGE",
                        help="provision from a signed code in this picture (PNG/JPEG) instead of a file")
    parser.add_argument("--scan-camera", choices=("auto", "pi", "usb", "sim"), metavar="BACKEND",
                        help="on a kiosk not registered yet: read a signed code from the camera (pi, usb, sim, or "
                             "auto: hardware.backend of the settings; the "
                             "camera.* settings apply, full 1280x720 frames) while also taking a provisioning file "
                             "that appears on the boot partition, until one is accepted or --scan-timeout-s")
    parser.add_argument("--scan-timeout-s", type=float, default=600.0, metavar="SECONDS",
                        help="how long --scan-camera looks for a code or a file (default: 600; 0 = until one "
                             "is accepted)")
    parser.add_argument("--admin-pin-stdin", action="store_true",
                        help="with --code-image on a registered kiosk (a re-provisioning code): read the admin "
                             "PIN from standard input")
    parser.add_argument("--status-file", metavar="PATH",
                        help="also write the provisioning screen's state here as JSON (for a headless kiosk)")
    parser.add_argument("--screen", choices=("auto", "fullscreen", "window", "headless"), default="auto",
                        help="show the provisioning screens on the touchscreen: auto (default) follows ui.display "
                             "(fullscreen when a display is there), headless never opens one")
    parser.add_argument("--screen-hold-s", type=float, default=15.0, metavar="SECONDS",
                        help="how long the last provisioning screen stays up after provisioning ends (default: 15)")
    parser.add_argument("--self-test", choices=("auto", "pi", "usb", "sim"), metavar="BACKEND",
                        help="after registering, run the doctor's checks on this hardware backend (pi, usb, sim, "
                             "or auto: hardware.backend of the settings provisioning wrote) and show each result "
                             "with its remedy")
    parser.add_argument("--sim-fault", action="append", default=[], metavar="PART:KIND",
                        help="with --self-test sim, start a simulator broken, as `kiosk doctor --sim-fault`")
    parser.set_defaults(func=run)
    tools = parser.add_subparsers(dest="tool", metavar="{make-key,make-code,decommission,apply-request}")
    make_key = tools.add_parser("make-key", help="make the fleet's provisioning key (keep it off the kiosks)",
                                description="Write a new Ed25519 private key (PEM, mode 0600) and print its "
                                            "public half for KIOSK_IMG_PROVISIONING_KEYS.")
    make_key.add_argument("key_file", metavar="KEY", help="where to write the private key (must not exist)")
    make_key.set_defaults(func=run_make_key)
    make_code = tools.add_parser("make-code", help="turn provisioning files into signed QR codes (PNG, SVG, sheet)",
                                 description="Check each provisioning file, sign a one-time code from it with the "
                                             "fleet key, and write NAME-ID.png, NAME-ID.svg and a printable "
                                             "sheet.html. The outputs carry enrolment tokens: mode 0600.")
    make_code.add_argument("files", nargs="+", metavar="FILE",
                           help="provisioning files: first-provisioning ones, or re-provisioning ones ([reprovision])")
    make_code.add_argument("--key", required=True, metavar="KEY", help="the fleet's private key (make-key)")
    make_code.add_argument("--out", required=True, metavar="DIR", help="directory for the codes")
    make_code.add_argument("--valid-for-s", type=float, default=7 * 86400.0, metavar="SECONDS",
                           help="how long each code is accepted (default: 604800 = 7 days; at most 90 days)")
    make_code.add_argument("--include-admin-pin", action="store_true",
                           help="carry admin.pin_hash in the code (denser: read from less far away)")
    make_code.set_defaults(func=run_make_code)
    retire = tools.add_parser("decommission", help="upload every pending record, then wipe keys, templates and "
                                                   "the database (stop kiosk.service first)",
                              description="Take this kiosk out of service: with the admin PIN, upload every "
                                          "record not yet sent (nothing is wiped while the server cannot take "
                                          "them all), then overwrite and remove the database, the data and device "
                                          "keys, the registration and the settings, and empty the fingerprint "
                                          "sensor. Run as root with kiosk.service stopped. The settings are read "
                                          "from --config, else ETC_DIR/kiosk/kiosk.toml.")
    retire.add_argument("--admin-pin-stdin", action="store_true",
                        help="read the admin PIN from standard input instead of asking on the terminal")
    retire.add_argument("--no-sensor", action="store_true",
                        help="leave the fingerprint sensor alone (not connected; its templates stay on it)")
    retire.set_defaults(func=run_decommission)
    apply = tools.add_parser("apply-request", help="apply the provisioning request the kiosk app filed (root, "
                                                   "kiosk-provision-request.service)",
                             description="Take the request in STATE_DIR/requests (re-provisioning by a signed code "
                                         "or the boot partition's signed file, or decommissioning), check it as "
                                         "root (signature, expiry, reuse; every record uploaded before a wipe), "
                                         "apply it, remove it, and write the outcome to RESULT_DIR/result.json "
                                         "for the admin page. See kiosk/provision_request.py.")
    apply.add_argument("--result-dir", metavar="DIR", default="/var/lib/kiosk-provision",
                       help="where the outcome is written, readable by the app (default: /var/lib/kiosk-provision)")
    apply.set_defaults(func=run_apply_request)


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
    mode, settings = _screen_mode(args)
    args.screen_mode = mode      # first boot holds its self-test screen only where someone can read it
    if mode == "headless":
        return _provision(args, paths, _console(args, paths))
    from kiosk.clock import SystemClock
    from kiosk.device_ports import HeadlessScreen
    from kiosk.ui import provision_window, runner

    ui = runner.prepare(settings, HeadlessScreen(), mode=mode)
    console = _console(args, paths, screen=ui.screen)
    return provision_window.run_with_screen(ui, lambda: _provision(args, paths, console), mode=mode,
                                            hold_s=args.screen_hold_s, clock=SystemClock())


def _screen_mode(args):
    """(fullscreen | window | headless, settings): --screen, else ui.display as `kiosk run` reads it.

    The settings (language, rotation, window size) are the defaults before the first provisioning;
    settings that do not load leave the screen off rather than stop provisioning."""
    from kiosk import app
    from kiosk.errors import ConfigError

    if args.screen == "headless":
        return "headless", None
    try:
        settings = app.load_settings(args)
    except ConfigError as e:
        log.error("settings do not load (%s): provisioning headless", e)
        return "headless", None
    if args.screen != "auto":
        return args.screen, settings
    from kiosk.ui import runner

    return runner.display_mode(settings.ui), settings


def _provision(args, paths, console):
    """Provision (from a file, a code picture or the camera), then the self-test; the exit code."""
    from pathlib import Path

    from kiosk import provision, provision_file

    boot_file = Path(args.file) if args.file else paths.boot_dir / provision_file.FILE_NAME
    if args.scan_camera and not args.file and not paths.registration_file.exists():
        return _first_boot(args, paths, console)
    if args.code_image:
        from kiosk import code_reader, provision_by_code

        text = code_reader.read_image_file(args.code_image)
        pin = sys.stdin.readline().rstrip("\n") if args.admin_pin_stdin else None
        outcome = provision_by_code.provision_code(text, paths=paths, console=console, admin_pin=pin,
                                                   max_attempts=args.max_attempts, max_backoff_s=args.max_backoff_s,
                                                   timeout_s=args.timeout_s)
        print(f"{outcome.action} from a code: device {outcome.device_id}")
    else:
        if hasattr(console, "status") and not boot_file.exists():
            console.status.waiting()
        outcome = provision.provision(paths=paths, file=args.file, console=console,
                                      max_attempts=args.max_attempts, max_backoff_s=args.max_backoff_s,
                                      timeout_s=args.timeout_s)
        if outcome.action == "nothing":
            print("no provisioning file: nothing to do")
            return 0
        print(f"{outcome.action}: device {outcome.device_id}")
    report = _self_test(args, paths) if args.self_test else None
    if report is not None:
        from kiosk import doctor

        print(doctor.render_table(report))
    if hasattr(console, "finish"):
        console.finish(report)
    return 0


def _first_boot(args, paths, console):
    """Provisioning mode (kiosk/first_boot.py): a file on the boot partition or a code the camera reads.

    The same loop as `kiosk run` on an unregistered kiosk: refused codes go to the screen and the
    camera keeps looking, until one is accepted and registered or ``--scan-timeout-s`` (0: no limit)."""
    from kiosk import app, first_boot

    settings = app.load_settings(args)
    if args.scan_camera != "auto":
        settings = settings.replace(hardware={"backend": args.scan_camera})
    player = app.build_scenario_player(settings, full_size=True) if settings.hardware.backend == "sim" else None
    if not hasattr(console, "status"):     # no screen and no status file: the model still drives the console
        console = first_boot.status_console(lambda screen, **data: None, paths, console)
    options = first_boot.Options(paths=paths, hold_s=0.0 if args.screen_mode == "headless" else 5.0,
                                 scan_timeout_s=args.scan_timeout_s, max_attempts=args.max_attempts,
                                 max_backoff_s=args.max_backoff_s, timeout_s=args.timeout_s)
    import threading
    import time

    from kiosk.clock import SystemClock
    from kiosk.errors import ProvisioningError

    try:
        outcome = first_boot.run(options, console=console, clock=SystemClock(), sleep=time.sleep,
                                 stop=threading.Event(),
                                 open_camera=lambda: app.build_camera(settings, player=player),
                                 self_test=(lambda: _show_self_test(args, paths)) if args.self_test else None)
    except ProvisioningError as e:
        if str(e).startswith("no provisioning file or accepted code"):
            print(f"no accepted code within {args.scan_timeout_s:g} s")
            return 1
        raise
    print(f"{outcome.action}: device {outcome.device_id}")
    return 0


def _show_self_test(args, paths):
    from kiosk import doctor

    report = _self_test(args, paths)
    print(doctor.render_table(report))
    return report


def _console(args, paths, *, screen=None):
    """The text console, with the status model behind it when a status file or a screen (a QtScreen) wants it."""
    from kiosk import provision, provision_code, provision_file, provision_status

    text_console = provision.Console(args.console)
    if not args.status_file and screen is None:
        return text_console
    ways = ["file", "code"] if provision_code.load_public_keys(paths.provisioning_keys) else ["file"]
    port = provision_status.StatusFile(args.status_file) if args.status_file else None
    if screen is not None:
        from kiosk.ui.provision_window import Port

        port = Port(screen, port)
    status = provision_status.ProvisioningStatus(port, ways=ways,
                                                 file_path=str(paths.boot_dir / provision_file.FILE_NAME))
    return provision_status.StatusConsole(status, text_console)


def _self_test(args, paths):
    """The doctor's checks against the settings provisioning just wrote (the screen's self-test)."""
    import contextlib

    from kiosk import app, config, doctor
    from kiosk.commands.doctor import _parse_faults
    from kiosk.errors import ConfigError

    settings = config.load(paths.settings_file)
    if args.self_test != "auto":     # auto: the backend the settings provisioning wrote name
        settings = settings.replace(hardware={"backend": args.self_test})
    backend = settings.hardware.backend
    faults = _parse_faults(args.sim_fault)
    if faults and backend != "sim":
        raise ConfigError("--sim-fault needs --self-test sim")
    with contextlib.ExitStack() as stack:
        player = factory = None
        if backend == "sim":
            sims = stack.enter_context(app.start_simulators(settings, faults=faults))
            settings = sims.settings_for(settings)
            player, factory = sims.player, sims.pin_factory
        return doctor.run_checks(settings, open_camera=lambda: app.build_camera(settings, player=player),
                                 open_sensor=lambda: app.build_fingerprint_sensor(settings),
                                 open_board=lambda: app.build_board(settings, pin_factory=factory))


def run_make_key(args):
    from kiosk import code_maker

    try:
        public = code_maker.new_private_key(args.key_file)
    except FileExistsError:
        print(f"{args.key_file} exists: a fleet key is never overwritten", file=sys.stderr)
        return 1
    print(f"private key written to {args.key_file} (keep it off the kiosks and out of the repository)")
    print(f"KIOSK_IMG_PROVISIONING_KEYS={public}")
    return 0


def run_make_code(args):
    import time
    from pathlib import Path

    from kiosk import code_maker

    key = code_maker.load_private_key(args.key)
    made = code_maker.make_codes(args.files, private_key=key, out_dir=args.out, now_s=time.time(),
                                 valid_for_s=args.valid_for_s, include_admin_pin=args.include_admin_pin)
    sheet = code_maker.write_sheet(made, Path(args.out) / "sheet.html")
    for code in made:
        note = " (admin PIN hash left out: --include-admin-pin)" if code.left_out_pin else ""
        print(f"{code.source}: code {code.code_id[:8]} for {code.label}, QR version {code.qr_version} -> "
              f"{code.png.name}, {code.svg.name}{note}")
    print(f"printable sheet: {sheet}")
    return 0


def run_decommission(args):
    from pathlib import Path

    from kiosk import app, config, decommission, provision
    from kiosk.clock import SystemClock
    from kiosk.errors import HardwareError
    from kiosk.storage import db, seal
    from kiosk.sync import service, worker

    paths = provision.Paths(boot_dir=Path(args.boot_dir), etc_dir=Path(args.etc_dir), state_dir=Path(args.state_dir))
    settings = config.load(args.config or paths.settings_file)
    if not settings.sync.device_id:
        print("this kiosk is not registered: nothing to upload; re-flash the card to wipe it", file=sys.stderr)
        return 1
    pin = sys.stdin.readline().rstrip("\n") if args.admin_pin_stdin else getpass.getpass("admin PIN: ")
    database = db.open_db(settings.db_path)
    uploader = service.build_worker(settings, database, clock=SystemClock(),
                                    data_key=seal.DataKey.load(Path(settings.security.data_key_file)))

    emptied = []

    def clear_sensor():
        sensor = app.build_fingerprint_sensor(settings)
        try:
            sensor.open()
            sensor.clear()
            emptied.append(True)
        except HardwareError as e:
            log.error("the fingerprint sensor was not emptied (%s): clear it before reusing it", e)
        finally:
            sensor.close()

    try:
        done = decommission.decommission(settings=settings, paths=paths, pin=pin, database=database,
                                         run_sync_cycle=uploader.run_once, sync_status=lambda: worker.status(database),
                                         clear_sensor=None if args.no_sensor else clear_sensor)
    except decommission.DecommissionRefusedError as e:
        print(f"not decommissioned: {e}", file=sys.stderr)
        return 1
    finally:
        uploader.client.close()
    print(f"every record uploaded ({done.uploaded_cycles} sync cycle(s)); wiped: {', '.join(done.wiped)}")
    print("fingerprint sensor emptied" if emptied else "fingerprint sensor NOT emptied (--no-sensor, or it did not "
          "answer): clear it before reusing it")
    print("decommissioned: power the kiosk off, or restart it to provision it again")
    return 0


def run_apply_request(args):
    from pathlib import Path

    from kiosk import provision, provision_apply

    paths = provision.Paths(boot_dir=Path(args.boot_dir), etc_dir=Path(args.etc_dir), state_dir=Path(args.state_dir),
                            result_dir=Path(args.result_dir))
    result = provision_apply.apply_pending(paths, timeout_s=args.timeout_s)
    if result is None:
        print("no provisioning request waiting")
        return 0
    if result["done"]:
        print(f"{result['action']}: done ({result['said']})")
        return 0
    print(f"{result['action'] or 'request'} refused: {result['error']}", file=sys.stderr)
    return REFUSED_EXIT


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
