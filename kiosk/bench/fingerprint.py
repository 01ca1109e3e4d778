"""`kiosk bench fingerprint`: time the fingerprint driver's operations against the R30x simulator.

With ``--speed 0`` the simulator answers at once, so the figures are the cost of our driver,
pyfingerprint and the pseudo-terminal; with ``--speed 1`` they add the simulator's
datasheet-like module timing (image capture, search, 57,600 bps on the wire).
"""

import json
import logging
import statistics
import time
from pathlib import Path

from kiosk import argtypes

log = logging.getLogger(__name__)


def register(subparsers):
    parser = subparsers.add_parser("fingerprint", help="fingerprint driver: enrol, identify, transfers, "
                                   "unplug detection against the simulator", description=__doc__)
    parser.add_argument("--speed", type=argtypes.non_negative_float, default=0.0,
                        help="simulator timing factor: 0 = driver overhead only, 1 = datasheet timing "
                             "(default %(default)s)")
    parser.add_argument("--templates", type=argtypes.positive_int, default=1000, help="library size searched (default %(default)s)")
    parser.add_argument("--repeat", type=argtypes.positive_int, default=5, help="identifications timed (default %(default)s)")
    parser.add_argument("--model", default="R307", help="simulated module model (default %(default)s)")
    parser.add_argument("--dataset", type=Path, help="a folder of real finger images <finger>_<n>.<ext> (e.g. FVC): "
                        "FRR, FAR, EER by the FVC protocol, and 1:N search / claim-and-verify time with the "
                        "UART timing model on (ignores --speed and --templates)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)
    return parser


def _timed(fn):
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def run(args):
    """Fill a simulated library, then time each operation through FingerprintSensor."""
    if args.dataset is not None:
        return _run_dataset(args)
    from kiosk import config
    from kiosk.drivers.fingerprint import FingerprintSensor
    from kiosk.errors import DeviceAbsentError
    from kiosk_sim.r30x import SensorSimulator

    from kiosk_sim import r30x_minutiae as minutiae

    identity = "synthetic/bench-0"
    figures = {"speed": args.speed, "templates": args.templates, "model": args.model}
    minutiae.warm_up()  # the simulator's matcher loads once (not the module's time): before the clock runs
    with SensorSimulator(model=args.model, capacity=max(args.templates, 1), speed=args.speed) as sim:
        # fill the library directly (as a long-used sensor would be), bypassing the wire
        # (other people: random minutiae records, cheap to make and real to the matcher)
        for slot in range(1, args.templates):
            sim.library.put(slot, minutiae.random_record(slot))
        settings = config.build([]).fingerprint  # production defaults (timeouts, security level)
        with FingerprintSensor.from_settings(settings, port=sim.port, model=args.model) as sensor:
            figures["probe_s"], _ = _timed(sensor.probe)

            def on_step(step, number):
                if step == "place_finger":
                    sim.place_finger(identity, number)
                elif step == "lift_finger":
                    sim.lift_finger()

            figures["enroll_3_captures_s"], enrollment = _timed(lambda: sensor.enroll(slot=0, on_step=on_step))
            times = []
            for n in range(args.repeat):
                sim.place_finger(identity, 4 + n % 5)
                seconds, (slot, _) = _timed(lambda: sensor.identify(timeout_s=10))
                if slot != 0:
                    raise SystemExit(f"fingerprint bench: identified slot {slot}, expected 0")
                times.append(seconds)
            figures["identify_median_s"] = statistics.median(times)
            figures["template_download_s"], template = _timed(lambda: sensor.download_template(0))
            figures["template_upload_s"], _ = _timed(lambda: sensor.upload_template(0, template))
            figures["image_download_s"], _ = _timed(sensor.download_image)
            sim.set_fault("silence")
            for name, call in (("unplug_detect_capture_s", lambda: sensor.capture(timeout_s=10)),
                               ("unplug_detect_probe_s", sensor.probe)):
                began = time.perf_counter()
                try:
                    call()
                except DeviceAbsentError:
                    figures[name] = time.perf_counter() - began
            sim.clear_fault()
            figures["reconnect_s"], _ = _timed(sensor.probe)
    figures = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"fingerprint driver vs simulator ({args.model}, speed {args.speed:g}, {args.templates} templates)")
        for key, value in figures.items():
            if key.endswith("_s"):
                print(f"  {key[:-2].replace('_', ' '):28s} {value:8.3f} s")
    return 0


def _run_dataset(args):
    from . import fingerprint_dataset  # kiosk.bench or kiosk_sim_bench: they ship together

    figures = fingerprint_dataset.run(args)
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"fingerprint on {figures['dataset']}: {figures['fingers']} fingers, {figures['images']} images, "
          f"{figures['genuine_pairs']} genuine / {figures['impostor_pairs_fvc']} (fvc) and "
          f"{figures['impostor_pairs_all']} (all) impostor pairs; {figures['matcher']}")
    print(f"  captures refused       {figures['capture_refused']}")
    for suffix, level in (("", figures["security_level"]), ("_kiosk_level", figures["kiosk_security_level"])):
        print(f"  security level {level}: FRR {figures['frr' + suffix]:.2%}  FAR {figures['far' + suffix]:.2%} "
              f"(all pairs {figures['far_all' + suffix]:.3%})")
    print(f"  EER                    {figures['eer']:.2%} (all pairs {figures['eer_all']:.2%})")
    print(f"  1:N search, {figures['library']} templates   {figures['search_ms']:.0f} ms (finger on glass to answer)")
    print(f"  claim and verify       {figures['verify_ms']:.0f} ms")
    return 0
