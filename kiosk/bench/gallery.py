"""`kiosk bench gallery`: 1:N search time and resident memory of the face gallery per size.

Each size is measured in a fresh Python process so its memory figure is honest: the process
records its resident set size (VmRSS) after imports, fills a gallery with random unit vectors
the way ``Gallery.load`` does (capacity reserved up front, added in chunks), records VmRSS
again, then times top-2 searches with random queries. ``memory_mb`` is the growth of the
resident set (vectors, person ids and the index together); ``matrix_mb`` is the vector matrix
alone.
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from kiosk import argtypes
from kiosk.bench import positive_ints

CHUNK = 10_000


def rss_bytes():
    """Resident set size of this process from /proc/self/status (0 if unavailable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(size, *, dim, queries, k=2, seed=0):
    """Build a gallery of ``size`` people in this process and time ``queries`` searches."""
    from kiosk.models.gallery import Gallery

    rng = np.random.default_rng(seed)
    before = rss_bytes()
    gallery = Gallery("bench", dim, capacity=size)
    for start in range(0, size, CHUNK):
        n = min(CHUNK, size - start)
        block = rng.standard_normal((n, dim), dtype=np.float32)
        gallery.add_many([f"person-{i:07d}" for i in range(start, start + n)], block, model_id="bench")
        del block
    after = rss_bytes()
    probes = rng.standard_normal((queries + 5, dim), dtype=np.float32)
    for query in probes[:5]:  # warm caches and BLAS threads
        gallery.search(query, k)
    times = []
    for query in probes[5:]:
        t0 = time.perf_counter()
        gallery.search(query, k)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {
        "search_ms": round(float(np.median(times)), 3),
        "search_p95_ms": round(float(np.percentile(times, 95)), 3),
        "memory_mb": round((after - before) / 1e6, 1),
        "matrix_mb": round(gallery.nbytes / 1e6, 1),
        "templates": len(gallery),
        "dim": dim,
        "queries": queries,
    }


def _measure_in_subprocess(size, *, dim, queries):
    command = [sys.executable, "-m", "kiosk.bench.gallery", "--worker", str(size), "--dim", str(dim),
               "--queries", str(queries)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"gallery worker for {size} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def register(sub):
    parser = sub.add_parser("gallery", help="1:N face search time and memory per gallery size",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=positive_ints("--sizes"), default=[1000, 10000, 100000], metavar="N,N,...",
                        help="gallery sizes (people, one template each); default 1000,10000,100000")
    parser.add_argument("--dim", type=argtypes.positive_int, default=128,
                        help="embedding size: 128 SFace (default), 192 MobileFaceNet, 512 large models")
    parser.add_argument("--queries", type=argtypes.positive_int, default=200, help="timed searches per size (default 200)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(func=run)


def run(args):
    if args.dim < 1 or args.queries < 1:
        print("kiosk bench gallery: --dim and --queries must be positive", file=sys.stderr)
        return 2
    results = {}
    for size in args.sizes:
        try:
            results[str(size)] = _measure_in_subprocess(size, dim=args.dim, queries=args.queries)
        except RuntimeError as e:
            print(f"kiosk bench gallery: {e}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({"dim": args.dim, "sizes": results}, indent=2))
        return 0
    print(f"gallery search, top-2 identities, {args.dim}-d float32, {args.queries} queries per size")
    print(f"{'people':>10} {'median ms':>10} {'p95 ms':>8} {'RSS MB':>8} {'matrix MB':>10}")
    for size, r in results.items():
        print(f"{int(size):>10} {r['search_ms']:>10.3f} {r['search_p95_ms']:>8.3f} {r['memory_mb']:>8.1f} "
              f"{r['matrix_mb']:>10.1f}")
    return 0


def _worker(argv):
    parser = argparse.ArgumentParser(prog="kiosk.bench.gallery")
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.worker, dim=args.dim, queries=args.queries)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
