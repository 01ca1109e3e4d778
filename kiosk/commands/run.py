"""`kiosk run`: the appliance (started by kiosk.service).

A kiosk image that is not registered yet (ETC_DIR/kiosk exists, but no sync.device_id and no
ETC_DIR/kiosk/registration.json) first shows the provisioning screen: it waits for kiosk-provision.toml on the boot partition or a
signed code shown to the camera, registers, runs the self-test and shows its results, then
starts the kiosk with the settings provisioning wrote (docs/provisioning.md). On the device,
kiosk-firstboot.service does this as root before kiosk.service starts; `kiosk run --backend sim`
does it in its own process against the simulators.
"""

import logging

log = logging.getLogger(__name__)


def register(sub):
    parser = sub.add_parser("run", help="run the kiosk appliance (what kiosk.service starts)", description=__doc__)
    parser.add_argument("--backend", choices=("pi", "usb", "sim"), help="override hardware.backend")
    parser.add_argument("--boot-dir", metavar="DIR", default="/boot/firmware",
                        help="first boot: where the provisioning file is looked for (default: /boot/firmware)")
    parser.add_argument("--etc-dir", metavar="DIR", default="/etc",
                        help="first boot: system configuration root; provisioning writes DIR/kiosk (default: /etc)")
    parser.add_argument("--hold-s", type=float, default=5.0, metavar="SECONDS",
                        help="first boot: how long the self-test and done screens stay up (default: 5)")
    parser.add_argument("--sim-fault", action="append", default=[], metavar="PART:KIND",
                        help="with --backend sim, start a simulator broken, as `kiosk doctor --sim-fault`")
    parser.set_defaults(func=run)


def run(args):
    import signal
    import threading

    from kiosk import app, first_boot, provision
    from kiosk.commands.doctor import _parse_faults
    from kiosk.errors import ConfigError

    settings = app.load_settings(args)
    if args.backend:
        settings = settings.replace(hardware={"backend": args.backend})
    faults = _parse_faults(args.sim_fault)
    if faults and settings.hardware.backend != "sim":
        raise ConfigError("--sim-fault needs --backend sim")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    from pathlib import Path

    options = first_boot.Options(paths=provision.Paths(boot_dir=Path(args.boot_dir), etc_dir=Path(args.etc_dir),
                                                       state_dir=Path(settings.storage.data_dir)),
                                 hold_s=args.hold_s)
    return run_kiosk(settings, first_boot=options, stop_event=stop, sim_faults=faults)


def run_kiosk(settings, *, first_boot, stop_event, sim_faults=(), on_ready=None, screen=None, clock=None,
              sleep=None, admin_scan_s=None, admin_hold_s=None, admin_settings_dir=None):
    """First boot when a kiosk image is not registered, then app.run_appliance with the settings it wrote.

    ``screen`` (a HeadlessScreen) receives the provisioning screens as well when given (tests
    listen to it); ``clock``/``sleep`` drive provisioning (code expiry, backoff, hold), the
    system clock by default; ``admin_scan_s``/``admin_hold_s`` bound the admin page's code scan
    and how long its result stays before the restart; ``admin_settings_dir`` is the directory
    whose writability decides whether the page applies a change itself or files a request for the
    root helper (``first_boot.paths.kiosk_etc`` by default: read-only under kiosk.service). The admin's provisioning page (kiosk/admin_provisioning.py) is
    wired here: after a re-provisioning the kiosk starts again with the new settings; after a
    decommissioning it stops."""
    import threading

    from kiosk import app
    from kiosk import first_boot as fb
    from kiosk.admin_provisioning import RESTART_AFTER_S, SCAN_S, AdminProvisioning

    if fb.needs_provisioning(settings, first_boot.paths):
        try:
            settings = provision_on_screen(settings, first_boot, stop=stop_event, sim_faults=sim_faults,
                                           screen=screen, clock=clock, sleep=sleep)
        except fb.Stopped:
            log.info("stopped during first boot")
            return 0
    while True:
        restart = threading.Event()

        def request_restart():
            restart.set()
            stop_event.set()

        def ready(kiosk, sims):
            kiosk.ports.pages.provisioning = AdminProvisioning(
                kiosk.ports.pages, paths=first_boot.paths, show=kiosk.screen.show, request_restart=request_restart,
                request_stop=stop_event.set, scan_s=admin_scan_s or SCAN_S,
                restart_after_s=RESTART_AFTER_S if admin_hold_s is None else admin_hold_s,
                settings_dir=admin_settings_dir)
            if on_ready is not None:
                on_ready(kiosk, sims)

        code = app.run_appliance(settings, stop_event=stop_event, on_ready=ready, sim_faults=sim_faults)
        if not restart.is_set():
            return code
        log.info("restarting with the settings the re-provisioning wrote")
        stop_event.clear()
        settings = provisioned_settings(settings, first_boot.paths)


def provision_on_screen(settings, options, *, stop, sim_faults=(), screen=None, clock=None, sleep=None):
    """The first-boot provisioning screens on this kiosk's display (or headless) and hardware.

    Returns ``settings`` with the sections provisioning wrote to ETC_DIR/kiosk/kiosk.toml on top."""
    import contextlib

    from kiosk import app, doctor, provision
    from kiosk import first_boot as fb
    from kiosk.clock import SystemClock
    from kiosk.device_ports import HeadlessScreen

    clock = clock or SystemClock()
    sleep = sleep or stop.wait
    screen = screen or HeadlessScreen()
    with contextlib.ExitStack() as stack:
        sims = None
        hardware = settings
        if settings.hardware.backend == "sim":
            # full-size frames: a code is read from 1280x720, not from the simulator's 640x480
            sims = stack.enter_context(app.start_simulators(settings, faults=sim_faults, full_size=True))
            hardware = sims.settings_for(settings)

        def open_camera():
            return app.build_camera(hardware, player=sims.player if sims else None)

        def self_test():
            written = provisioned_settings(hardware, options.paths)
            return doctor.run_checks(written, open_camera=lambda: app.build_camera(written, player=sims.player
                                                                                   if sims else None),
                                     open_sensor=lambda: app.build_fingerprint_sensor(written),
                                     open_board=lambda: app.build_board(written, pin_factory=sims.pin_factory
                                                                        if sims else None),
                                     clock=clock)

        def work(show):
            console = fb.status_console(show, options.paths, provision.Console())
            return fb.run(options, console=console, open_camera=open_camera, self_test=self_test, clock=clock,
                          sleep=sleep, stop=stop)

        from kiosk.ui.runner import display_mode

        mode = display_mode(settings.ui)
        if mode == "headless":
            work(screen.show)
        else:
            from kiosk.ui import provision_window, runner

            ui = runner.prepare(settings, screen, mode=mode)
            provision_window.run_with_screen(ui, lambda: work(ui.screen.show), mode=mode, hold_s=0.0, clock=clock)
    return provisioned_settings(settings, options.paths)


def provisioned_settings(settings, paths):
    """``settings`` with every section of the kiosk.toml provisioning wrote applied over it."""
    from kiosk import config

    written = config.read_file(paths.settings_file)
    return settings.replace(**{name: values for name, values in written.items() if isinstance(values, dict)})
