"""`kiosk ui screenshots [--out DIR] [--size WxH] [--check]`: a picture of every screen in Arabic and English.

Draws every registered screen with its sample data (``kiosk/ui/samples.py``) in a real kiosk
window, off screen when there is no display, and writes ``<screen>-<language>.png`` plus an
index (``README.md``) into the folder. With --check, every picture is also run through the layout
check (nothing clipped, overlapping, off screen or under 11.6 mm) and the exit code is 1 on a fault.
"""

import sys

DEFAULT_OUT = "docs/screens"
SIZES = ("800x480", "1024x600", "1280x800", "720x1280")


def register(sub):
    parser = sub.add_parser("ui", help="the touchscreen: screenshots of every screen", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    shots = verbs.add_parser("screenshots", help="write a PNG of every screen in both languages, and an index",
                             description="Write a PNG of every screen in Arabic and English, and an index.")
    shots.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                       help=f"folder of the pictures (default: {DEFAULT_OUT}, from the current directory)")
    shots.add_argument("--size", default="1024x600", choices=SIZES, help="the layout drawn (default: 1024x600)")
    shots.add_argument("--check", action="store_true", help="also check each layout; exit 1 on a fault")
    shots.add_argument("--camera", metavar="SCENARIO", help="show this camera simulator scenario's frame in the "
                                                              "camera views (e.g. walk_up; needs kiosk_sim); "
                                                              "default: an empty dark view")
    shots.add_argument("--camera-frame", type=int, default=60, metavar="N",
                       help="which frame of the scenario (default: 60, a face close up in walk_up)")
    shots.set_defaults(func=run_screenshots)


def run_screenshots(args):
    from kiosk.ui import screenshots

    width, height = (int(v) for v in args.size.split("x"))
    camera = scenario_camera(args.camera, args.camera_frame) if args.camera else None
    written, faults = screenshots.write_all(args.out, size=(width, height), check=args.check, camera=camera)
    screenshots.write_index(args.out, written)
    print(f"wrote {len(written)} screenshots ({args.size}) and an index into {args.out}")
    for fault in faults:
        print(f"layout fault: {fault}", file=sys.stderr)
    return 1 if faults else 0


class StillCamera:
    """A camera that always has the same frame (a picture for the screenshots' camera views)."""

    def __init__(self, image):
        from kiosk.drivers.camera import Frame

        self.frame = Frame(image, image[::2, ::2], 0.0, 1)

    def latest(self):
        return self.frame


def scenario_camera(scenario, frame_number):
    """A StillCamera showing frame ``frame_number`` of a camera simulator scenario."""
    from kiosk_sim.camera import ScenarioPlayer

    player = ScenarioPlayer(scenario)
    player.open()
    try:
        image = None
        for _ in range(max(1, int(frame_number))):
            image = player.read()
    finally:
        player.close()
    if image is None:
        raise ValueError(f"scenario {scenario} has no frame {frame_number}")
    import cv2

    # the simulator adds sensor noise to every frame, which PNG cannot compress: smoothed, the
    # camera screens' pictures are about 40% smaller
    return StillCamera(cv2.GaussianBlur(image, (5, 5), 0))
