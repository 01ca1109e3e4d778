"""`kiosk bench camera`: frame rate, start-up time and lost-camera detection of the camera driver.

With the default ``--backend player`` it measures the simulator's scenario rendering and the
driver's own cost (the player unpaced, so the figure is how many frames per second the driver
can hand on), then how long a stalled camera takes to be reported lost and to recover. With
``--backend v4l2`` or ``picamera2`` it measures the real camera configured in the settings.
"""

import json
import logging
import statistics
import time

from kiosk import argtypes

log = logging.getLogger(__name__)


def register(subparsers):
    parser = subparsers.add_parser("camera", help="camera driver: frame rate, start-up, loss detection",
                                   description=__doc__)
    parser.add_argument("--backend", choices=("player", "v4l2", "picamera2"), default="player",
                        help="camera backend (default %(default)s: the simulator's scenario player)")
    parser.add_argument("--scenario", default="walk_up", help="player scenario (default %(default)s)")
    parser.add_argument("--frames", type=argtypes.positive_int, default=150, help="frames timed (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)
    return parser


def run(args):
    from kiosk import config
    from kiosk.drivers import camera
    from kiosk.drivers.camera_backends import PlayerSource

    settings = config.load(getattr(args, "config", None))
    figures = {"backend": args.backend, "frames": args.frames}
    if args.backend == "player":
        from kiosk_sim.camera import ScenarioPlayer

        player = ScenarioPlayer(args.scenario, fps=10_000)  # unpaced: the driver's own throughput
        figures["scenario"] = args.scenario
        with player:
            render_s = []
            for _ in range(min(args.frames, 60)):
                began = time.perf_counter()
                player.read()
                render_s.append(time.perf_counter() - began)
        figures["scenario_render_ms"] = round(statistics.median(render_s) * 1000, 2)
        cam = camera.Camera(PlayerSource(player), lores_size=(settings.camera.lores_width,
                                                              settings.camera.lores_height),
                            frame_timeout_s=0.5, retry_initial_s=0.1)
    else:
        cam = camera.from_settings(args.backend, settings.camera)
    began = time.perf_counter()
    with cam:
        first = cam.wait_for_frame(10.0)
        figures["first_frame_s"] = round(time.perf_counter() - began, 3)
        began = time.perf_counter()
        last = cam.wait_for_frame(30.0, after_index=first.index + args.frames - 1)
        elapsed = time.perf_counter() - began
        figures["delivered_fps"] = round((last.index - first.index) / elapsed, 1)
        figures["size"] = [last.image.shape[1], last.image.shape[0]]
        figures["lores_size"] = [last.lores.shape[1], last.lores.shape[0]]
        if args.backend == "player":
            figures.update(_loss_and_recovery(cam, player))
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:22} {value}")
    return 0


def _loss_and_recovery(cam, player):
    """Stall the player; time until when_lost, then until when_recovered after clearing it."""
    import threading

    lost, recovered = threading.Event(), threading.Event()
    cam.when_lost = lambda reason: lost.set()
    cam.when_recovered = recovered.set
    began = time.perf_counter()
    player.stall()
    lost.wait(10.0)
    lost_s = time.perf_counter() - began
    began = time.perf_counter()
    player.clear_faults()
    recovered.wait(10.0)
    return {"frame_timeout_s": cam.health.frame_timeout_s, "lost_after_s": round(lost_s, 3),
            "recovered_after_s": round(time.perf_counter() - began, 3)}
