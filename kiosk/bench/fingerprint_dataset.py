"""`kiosk bench fingerprint --dataset DIR`: accuracy and speed on real finger images, FVC protocol.

Every image of the dataset (``<finger>_<impression>.<ext>``) is placed on the simulated sensor
and captured through the driver; its character file (the minutiae the simulator extracted) is
read back. Pairs, as in FVC: all genuine pairs (impressions of one finger), impostors as the
first impressions across fingers ("fvc") and as all cross-finger pairs ("all"). Each pair is
decided by the sensor (``DownChar`` + ``Match``) at the module's default security level (3) and
at the kiosk's configured one. A module reports no score for a comparison it rejects, so the
EER comes from the simulator's matcher scores of the same character files. An image the
sensor refuses to capture (too messy, too few features) fails every pair it is in.

Then, with the simulator's UART timing model on (datasheet-like processing times, 57,600 bps
both ways): time from finger on the glass to the answer of a 1:N search over a library filled to
the module's capacity, and of a claim-and-verify (capture, ``DownChar`` of the claimed template,
``Match``).
"""

import logging
import statistics
import time
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

MODULE_DEFAULT_LEVEL = 3  # R30x datasheets: level 3 out of 1-5 is the factory setting


def _images(dataset):
    found = {}
    for path in sorted(Path(dataset).iterdir()):
        finger, sep, number = path.stem.rpartition("_")
        if sep and number.isdigit() and path.is_file():
            found.setdefault(finger, []).append(int(number))
    if len(found) < 2:
        raise SystemExit(f"fingerprint bench: {dataset} has fewer than two fingers named <finger>_<n>.<ext>")
    return {finger: sorted(numbers) for finger, numbers in found.items()}


def pairs(images):
    """(genuine, impostor_fvc, impostor_all) lists of ((finger, n), (finger, n)) pairs."""
    fingers = sorted(images)
    genuine = [((f, a), (f, b)) for f in fingers for i, a in enumerate(images[f]) for b in images[f][i + 1:]]
    fvc = [((f, images[f][0]), (g, images[g][0])) for i, f in enumerate(fingers) for g in fingers[i + 1:]]
    every = [((f, a), (g, b)) for i, f in enumerate(fingers) for g in fingers[i + 1:]
             for a in images[f] for b in images[g]]
    return genuine, fvc, every


def eer(genuine_scores, impostor_scores):
    """Equal error rate: where false rejects and false accepts cross, over every threshold seen."""
    best = (2.0, 1.0)
    for threshold in sorted(set(genuine_scores) | set(impostor_scores) | {0}):
        frr = sum(s < threshold for s in genuine_scores) / len(genuine_scores)
        far = sum(s >= threshold for s in impostor_scores) / len(impostor_scores)
        if abs(frr - far) < best[0]:
            best = (abs(frr - far), (frr + far) / 2)
    return best[1]


def _capture_all(sim, sensor, folder, images):
    from kiosk.errors import PoorImageError

    records, refused = {}, 0
    for finger, numbers in images.items():
        for number in numbers:
            sim.place_finger(f"{folder}/{finger}", number)
            try:
                sensor.capture(timeout_s=5)
                records[(finger, number)] = sensor.characteristics()
            except PoorImageError:
                records[(finger, number)] = None
                refused += 1
            sim.lift_finger()
    return records, refused


def _decide(sim, sensor, records, pair_list, level):
    """Share of pairs the sensor accepts at ``level`` (Match on the sensor, through the driver)."""
    from kiosk.errors import NoMatchError

    sim.library.set_setting("security_level", level)
    accepted = 0
    loaded = None
    for a, b in pair_list:
        if records[a] is None or records[b] is None:
            continue
        if loaded != a:  # the probe into buffer 1 once for all its references
            sensor.load_characteristics(records[a], buffer=1)
            loaded = a
        try:
            sensor.match(records[b])
            accepted += 1
        except NoMatchError:
            pass
    return accepted / len(pair_list)


def _timings(args, sensor_cls, settings, folder, finger, numbers):
    from kiosk.errors import NoMatchError
    from kiosk_sim import r30x_minutiae as minutiae
    from kiosk_sim.r30x import SensorSimulator

    search, verify = [], []
    minutiae.warm_up()  # the simulator's matcher loads once (not the module's time): before the clock runs
    with SensorSimulator(model=args.model, speed=1.0, fingers_dir=args.dataset.parent) as sim:
        capacity = sim.library.capacity
        # a full library: other people's templates (random minutiae, cheap), the probe's at the end
        for slot in range(capacity - 1):
            sim.library.put(slot, minutiae.random_record(slot))
        with sensor_cls.from_settings(settings, port=sim.port, model=args.model) as sensor:
            sensor.probe()

            def on_step(step, number):
                if step == "place_finger":
                    sim.place_finger(f"{folder}/{finger}", numbers[number - 1])
                elif step == "lift_finger":
                    sim.lift_finger()

            template = sensor.enroll(captures=2, slot=capacity - 1, on_step=on_step).template
            for n in range(args.repeat):
                sim.place_finger(f"{folder}/{finger}", numbers[2 + n % (len(numbers) - 2)])
                for call, times in ((lambda: sensor.identify(timeout_s=10), search),
                                    (lambda: sensor.verify(template, timeout_s=10), verify)):
                    began = time.perf_counter()
                    try:
                        call()
                    except NoMatchError:  # a false reject takes as long as an accept
                        pass
                    times.append(time.perf_counter() - began)
    return capacity, statistics.median(search) * 1000, statistics.median(verify) * 1000


def run(args):
    """Accuracy (FVC protocol) and search/verify time on one dataset folder; returns the figures."""
    from kiosk import config
    from kiosk.drivers.fingerprint import FingerprintSensor
    from kiosk_sim import r30x_fingers as fingers
    from kiosk_sim.r30x import SensorSimulator

    dataset = args.dataset = Path(args.dataset).resolve()
    images = _images(dataset)
    genuine, fvc, every = pairs(images)
    settings = config.build([]).fingerprint
    figures = {"dataset": dataset.name, "fingers": len(images), "images": sum(map(len, images.values())),
               "genuine_pairs": len(genuine), "impostor_pairs_fvc": len(fvc), "impostor_pairs_all": len(every),
               "matcher": f"nbis-py {metadata.version('nbis-py')} (NIST mindtct + bozorth3) in the simulator",
               "model": args.model, "security_level": MODULE_DEFAULT_LEVEL,
               "kiosk_security_level": settings.security_level}
    with SensorSimulator(model=args.model, capacity=10, speed=0, fingers_dir=dataset.parent) as sim:
        with FingerprintSensor.from_settings(settings, port=sim.port, model=args.model) as sensor:
            sensor.probe()
            records, refused = _capture_all(sim, sensor, dataset.name, images)
            figures["capture_refused"] = refused
            for level, suffix in ((MODULE_DEFAULT_LEVEL, ""), (settings.security_level, "_kiosk_level")):
                figures["frr" + suffix] = 1 - _decide(sim, sensor, records, genuine, level)
                figures["far" + suffix] = _decide(sim, sensor, records, fvc, level)
                figures["far_all" + suffix] = _decide(sim, sensor, records, every, level)
            sim.library.set_setting("security_level", settings.security_level)

    def scores(pair_list):
        return [0 if records[a] is None or records[b] is None else fingers.raw_score(records[a], records[b])
                for a, b in pair_list]

    genuine_scores = scores(genuine)
    figures["eer"] = eer(genuine_scores, scores(fvc))
    figures["eer_all"] = eer(genuine_scores, scores(every))
    # the timed finger: the first whose first two impressions the sensor captured and merges
    finger = next((f for f in sorted(images) if len(images[f]) >= 3 and all(records[(f, n)] for n in images[f][:2])
                   and fingers.raw_score(records[(f, images[f][0])], records[(f, images[f][1])])
                   >= fingers.THRESHOLDS[settings.security_level]), None)
    if finger is None:
        raise SystemExit("fingerprint bench: no finger in the dataset enrols from its first two impressions")
    figures["library"], figures["search_ms"], figures["verify_ms"] = _timings(
        args, FingerprintSensor, settings, dataset.name, finger, images[finger])
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
