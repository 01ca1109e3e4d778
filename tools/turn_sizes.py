#!/usr/bin/env python3
"""How the turn challenge's evidence holds up on small faces: a head turn against a tilted photo.

For each face width asked (px in a 640x480 frame), every person in DIR with a near-frontal photo
(|yaw| < 8, |pitch| < 15 as the kiosk's face mesh reads it) is drawn at that width, with sensor
noise, the way `tests/test_head_model.py` draws them:
- genuine: the camera simulator's head model turns the photo 35 degrees left and right;
- attack: the same frame as a flat printed sheet turned 20, 35, 50 and 65 degrees either way.
Each is seen through the kiosk's default detector and face mesh and compared with the frontal
frame as `ActiveChallenge` does: a frame "reads as a turn" when the mesh's yaw reaches the
challenge's 18 degrees in the turn's direction and the planar residual is at least 0.07.
With `--frames 2` each case is drawn twice (its own noise each time) and must read as a turn
on both, as the challenge asks since issue 9's third sitting.

    python tools/turn_sizes.py --dataset ../shared/datasets/faces/lfw150 --sizes 40,56,72,80 --frames 2

Prints one line per width: genuine turns read as turns, flat sheets read as turns (with who and
how), the largest yaw a sheet was read at. Not run by the tests (about a minute per 100 people
and 4 widths); the figures are in docs/benchmarks.md (Liveness, "walking-up sizes").
"""

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_head_model import flat_turn, frontal_photos_in, in_frame  # noqa: E402  (the tests' own drawing)

from kiosk.models.detector import make_detector  # noqa: E402
from kiosk.models.landmarks import FaceLandmarker  # noqa: E402
from kiosk.models.liveness import ActiveChallenge, ChallengeKind, planar_residual  # noqa: E402
from kiosk_sim import head_model  # noqa: E402

SHEET_DEGREES = (20, 35, 50, 65)
HEAD_DEGREES = 35


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="folder of per-person photo folders")
    parser.add_argument("--sizes", default="40,56,72,80", help="face widths in px, comma-separated")
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--frames", type=int, default=1, choices=(1, 2), help="frames that must read as a turn")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    detector, landmarker = make_detector("blazeface_short_then_full"), FaceLandmarker()
    rule = ActiveChallenge(ChallengeKind.TURN_LEFT, started_s=0.0)
    people = frontal_photos_in(Path(args.dataset), detector, landmarker, limit=args.people, max_yaw=8, max_pitch=15)
    rng = np.random.default_rng(args.seed)

    def mesh(image):
        face = detector.detect_centre(image)
        return None if face is None else landmarker.landmarks(image, face)

    def reads_as_turn(base, draw, sign):
        """(turned on every frame, the first frame's yaw in the turn's direction), or None when not seen."""
        meshes = [mesh(draw()) for _ in range(args.frames)]
        if any(m is None for m in meshes):
            return None
        turned = all(sign * m.yaw_deg >= rule.yaw_deg and planar_residual(base.points, m.points) >= rule.min_parallax
                     for m in meshes)
        return turned, sign * meshes[0].yaw_deg

    for width in (int(v) for v in args.sizes.split(",")):
        genuine, sheets, passes, no_baseline = [], [], [], 0
        for name, photo in people:
            base_image = in_frame(photo, rng, face_px=width)
            base = mesh(base_image)
            if base is None or abs(base.yaw_deg) >= 8:
                no_baseline += 1
                continue
            for sign in (1, -1):
                genuine.append(reads_as_turn(base, lambda: in_frame(head_model.turned(photo, sign * HEAD_DEGREES), rng,
                                                                    face_px=width), sign))
                for degrees in SHEET_DEGREES:
                    seen = reads_as_turn(base, lambda: flat_turn(in_frame(photo, rng, face_px=width), sign * degrees),
                                         sign)
                    if seen is None:
                        continue
                    sheets.append(seen)
                    if seen[0]:
                        passes.append(f"{name} sheet {sign * degrees:+d} deg read {seen[1]:.1f}")
        seen_genuine = [g for g in genuine if g is not None]
        print(f"{width} px: genuine turns read as turns {sum(g[0] for g in seen_genuine)}/{len(genuine)} "
              f"({len(genuine) - len(seen_genuine)} not found); flat sheets read as turns {len(passes)}/{len(sheets)}, "
              f"largest sheet yaw {max((s[1] for s in sheets), default=float('nan')):.1f} deg; "
              f"{no_baseline} people without a frontal baseline at this size"
              + (f"; {'; '.join(passes)}" if passes else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
