#!/usr/bin/env python3
"""Calibrate the face match threshold for a false-accept rate at 1:N from benchmark pair scores.

Input: .npz files written by `kiosk bench face --scores FILE` (genuine scores, and every
impostor pair of the dataset in ``impostor_all``). At 1:N with N enrolled people, a stranger
is falsely accepted when any of N comparisons passes, so FAR_1N = 1 - (1 - p)^N, and FAR_1N =
1e-4 with N = 1,000 needs a per-comparison FAR p of about 1e-7. A few hundred thousand
impostor pairs cannot show 1e-7 directly (the best empirical point is ~1/n), so the threshold
is extrapolated from the upper tail of the impostor scores, two ways:
- a generalised Pareto distribution fitted (probability-weighted moments, Hosking and Wallis
  1987) to the scores above the top ``--tail`` share, the standard peaks-over-threshold model;
- a normal distribution fitted to all impostor scores (z = 5.2 for 1e-7).
The recommendation is the highest of the two and of the highest impostor score ever seen,
rounded up to 0.01; TAR at that threshold (a score at it accepted, as the decision rule does)
is reported per file. This is an extrapolation from ~100 people of LFW: re-run it on a larger
impostor set of the deployment's population when one exists, and keep the decision rule's
margin and K-of-N frames as further protection.

    .venv/bin/python tools/face_threshold.py /tmp/lfw150.npz /tmp/lfw.npz --json
"""

import argparse
import json
import math
import sys
from statistics import NormalDist

import numpy as np


def per_comparison_far(far_1n, enrolled):
    """Per-comparison FAR p with 1 - (1 - p)^N = far_1n."""
    return -math.expm1(math.log1p(-far_1n) / enrolled)


def gpd_tail_threshold(scores, p, *, tail=0.01):
    """Score exceeded with probability ``p`` from a generalised Pareto fit to the top ``tail`` share.

    Returns ``(threshold, shape_k, scale, u)``; Hosking's parameterisation, survival
    ``(1 - k*y/scale)^(1/k)`` above ``u``; k > 0 is a bounded (light) tail.
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64))
    n = len(scores)
    count = max(int(round(n * tail)), 50)
    u = scores[n - count - 1]
    y = scores[n - count:] - u
    ranks = (np.arange(1, count + 1) - 0.35) / count
    a0 = y.mean()
    a1 = float(((1.0 - ranks) * y).mean())
    k = a0 / (a0 - 2.0 * a1) - 2.0
    scale = 2.0 * a0 * a1 / (a0 - 2.0 * a1)
    q = p / (count / n)
    if abs(k) < 1e-9:
        excess = -scale * math.log(q)
    else:
        excess = scale / k * (1.0 - q ** k)
    return float(u + excess), float(k), float(scale), float(u)


def normal_threshold(scores, p):
    """Score exceeded with probability ``p`` under a normal fit to all scores."""
    scores = np.asarray(scores, dtype=np.float64)
    return float(scores.mean() + scores.std() * NormalDist().inv_cdf(1.0 - p))


def empirical_threshold(scores, far):
    """The score at most ``far`` of the impostor scores exceed (as in the benchmark)."""
    ordered = np.sort(scores)[::-1]
    index = int(math.floor(far * len(ordered) + 1e-9))
    return float(ordered[index]) if index < len(ordered) else None


def recommend(*estimates):
    """The rule: the highest of the estimates (tail fits, highest impostor seen), rounded up to 0.01."""
    return math.ceil(round(max(estimates) * 100.0, 9)) / 100.0


def load(path):
    data = np.load(path)
    impostor = data["impostor_all"] if "impostor_all" in data.files else data["impostor"]
    return data["genuine"], impostor[np.isfinite(impostor)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", nargs="+", help=".npz files from `kiosk bench face --scores`")
    parser.add_argument("--enrolled", type=int, default=1000, help="people enrolled (N of 1:N), default 1000")
    parser.add_argument("--far", type=float, default=1e-4, help="target false-accept rate at 1:N, default 1e-4")
    parser.add_argument("--tail", type=float, default=0.01, help="share of top impostor scores the tail fit uses")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    loaded = {path: load(path) for path in args.scores}
    impostor = np.concatenate([imp for _, imp in loaded.values()])
    p = per_comparison_far(args.far, args.enrolled)
    gpd, k, scale, u = gpd_tail_threshold(impostor, p, tail=args.tail)
    normal = normal_threshold(impostor, p)
    observed_max = float(impostor.max())
    recommended = recommend(gpd, normal, observed_max)
    result = {
        "enrolled": args.enrolled,
        "far_1n": args.far,
        "per_comparison_far": p,
        "impostor_pairs": int(len(impostor)),
        "empirical_threshold": {f"{far:g}": empirical_threshold(impostor, far) for far in (1e-3, 1e-4, 1e-5)},
        "impostor_max": observed_max,
        "impostor_mean": float(impostor.mean()),
        "impostor_std": float(impostor.std()),
        "gpd_fit": {"u": u, "k": k, "scale": scale, "tail_share": args.tail, "threshold": gpd},
        "normal_fit_threshold": normal,
        "recommended_threshold": recommended,
        "tar_at_recommended": {path: float((gen >= recommended).mean()) for path, (gen, _) in loaded.items()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"per-comparison FAR for {args.far:g} at 1:{args.enrolled}: {p:.3g}")
        print(f"{len(impostor)} impostor pairs: mean {result['impostor_mean']:.4f}, std {result['impostor_std']:.4f}, "
              f"max {observed_max:.4f}")
        print("empirical thresholds: " + ", ".join(f"FAR {far}: {t:.4f}" for far, t in
                                                   result["empirical_threshold"].items() if t is not None))
        print(f"generalised Pareto tail (top {args.tail:g}, k={k:.3f}): {gpd:.4f}")
        print(f"normal fit: {normal:.4f}")
        print(f"recommended threshold: {recommended:.2f}")
        for path, tar in result["tar_at_recommended"].items():
            print(f"  TAR at {recommended:.2f} on {path}: {tar:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
