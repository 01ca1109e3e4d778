"""`kiosk bench gallery`: 1:N search time and resident memory of the face gallery per size, beside faiss.

Each size is measured in fresh Python processes so the memory figures are honest: a process
records its resident set size (VmRSS) after imports, fills a gallery with random unit vectors
(person ids like ``person-0000042``) the way ``Gallery.load`` does (added in chunks), runs one
search (which builds the scan model), records VmRSS again, then times top-2 searches. Queries
are probes of enrolled people: a random enrolled vector plus noise (cosine about 0.7 to it).
``memory_mb`` is the growth of the resident set (codes, ids, scan model together);
``matrix_mb`` is what the gallery's own arrays hold. ``rank1_equal_float32`` is the share of
queries whose best identity is the one exact float32 search finds.

As in the kiosk, the float32 vectors stay out of memory: they are written to a temporary file as
they are made (the kiosk's are sealed in its database), and the gallery's ``exact_source`` reads
the few rows of a near-tie from it. ``exact_rescore_rate`` is the share of the timed searches
that asked it (the time of those reads is inside ``search_ms``); ``exact_fallbacks`` counts
searches where the codes decided a near-tie instead. After the timing beside faiss, the same
queries are timed again on the same gallery with and without its source (without it, the codes
decide every near-tie), interleaved in turns: ``search_with_source_ms`` against
``search_without_source_ms`` is what deciding near-ties exactly costs.

The peer, on the same vectors and queries: faiss-cpu's exact inner-product index
(``IndexFlatIP``, float32). Its search time ``faiss_flat_ms`` is taken in the same process as
ours, built after our memory figure is read, the two searches interleaved query by query (so
both see the same load); its memory ``faiss_memory_mb`` in a process of its own. Both run at one
thread (faiss's OpenMP and every BLAS pool set to 1, the gallery's scan at 1 interpreter thread).
faiss is a benchmark dependency only (the ``dev`` extra); without it the figures are null.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
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


TARGET_MEMORY_MB = 20.0   # at 100,000 people (issue 13)
TARGET_SIZE = 100_000
NOISE = 1.0               # probe = enrolled vector + noise of this norm (cosine ~0.7)


def _vectors(size, dim, seed):
    """The same unit vectors, in chunks, in every process (one seeded generator)."""
    rng = np.random.default_rng(seed)
    for start in range(0, size, CHUNK):
        n = min(CHUNK, size - start)
        block = rng.standard_normal((n, dim), dtype=np.float32)
        yield start, block / np.linalg.norm(block, axis=1, keepdims=True)


def _queries(size, dim, count, seed):
    rng = np.random.default_rng(seed + 1)
    rows = rng.integers(0, size, count)
    noise = rng.standard_normal((count, dim), dtype=np.float32)
    noise *= NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
    return rows, noise


def _probes(size, dim, count, seed):
    """``count`` probes: noisy copies of enrolled vectors (regenerated, so no float32 matrix is kept)."""
    rows, noise = _queries(size, dim, count, seed)
    wanted = {int(r) for r in rows}
    found = {}
    for start, block in _vectors(size, dim, seed):
        for row in wanted:
            if start <= row < start + len(block):
                found[row] = block[row - start]
    probes = np.array([found[int(r)] for r in rows], dtype=np.float32) + noise
    return probes / np.linalg.norm(probes, axis=1, keepdims=True)


def _timed(searches, queries, *, rotate=False):
    """Median-ready times (ms) of each search function, interleaved query by query.

    Interleaving puts both searches under the same load from other processes at every moment,
    so their ratio holds on a shared machine even when the absolute times do not. With
    ``rotate`` the order turns by one each query, so no search always runs on the caches the
    one before it left.
    """
    for query in queries[:5]:  # warm caches
        for search in searches:
            search(query)
    times = [[] for _ in searches]
    for number, query in enumerate(queries[5:]):
        turn = number % len(searches) if rotate else 0
        for search, out in list(zip(searches, times))[turn:] + list(zip(searches, times))[:turn]:
            t0 = time.perf_counter()
            search(query)
            out.append((time.perf_counter() - t0) * 1000.0)
    return times


def _faiss_index(size, dim, seed):
    """faiss's exact inner-product index over the same vectors at one thread, or None without faiss."""
    try:
        import faiss
    except ImportError:
        return None
    faiss.omp_set_num_threads(1)
    index = faiss.IndexFlatIP(dim)
    for _, block in _vectors(size, dim, seed):
        index.add(block)
    return index


def file_source(file, dim):
    """An ``exact_source`` reading the float32 rows of ``person-NNNNNNN`` ids from an open binary file."""
    row_bytes = dim * 4

    def source(person_ids):
        out = []
        for person_id in person_ids:
            row = int(person_id.rsplit("-", 1)[1])
            raw = os.pread(file.fileno(), row_bytes, row * row_bytes)
            out.append((person_id, np.frombuffer(raw, dtype=np.float32)))
        return out
    return source


def measure(size, *, dim, queries, k=2, seed=0):
    """Build a gallery of ``size`` people in this process and time ``queries`` searches."""
    from kiosk.models import gallery_scan
    from kiosk.models.gallery import Gallery, release_free_memory

    # the TFLite runtime's one-time setup (its libraries, op tables: about 3 MB) is paid by the
    # face models in a kiosk before the gallery exists; pay it here too, before the baseline
    gallery_scan.CodeScan(np.ones((1, dim), dtype=np.int8), 1.0)
    # likewise numpy's own first use of its random generator and linalg (numpy 2 imports those
    # modules lazily, about 9 MB of code and tables): the bench's, not the gallery's
    np.linalg.norm(np.random.default_rng(seed).standard_normal((1, dim), dtype=np.float32), axis=1)
    release_free_memory()
    before = rss_bytes()
    vectors_file = tempfile.TemporaryFile()  # the float32 vectors, on disk like the kiosk's sealed ones
    gallery = Gallery("bench", dim, threads=1, exact_source=file_source(vectors_file, dim))
    for start, block in _vectors(size, dim, seed):
        gallery.add_many([f"person-{i:07d}" for i in range(start, start + len(block))], block, model_id="bench")
        vectors_file.write(block.tobytes())
        del block
    vectors_file.flush()
    probes = _probes(size, dim, queries + 5, seed)
    gallery.search(probes[0], k)  # builds the scan model
    after = rss_bytes()
    # the peer is built only now, so the memory figure above is the gallery's alone
    index = _faiss_index(size, dim, seed)
    source = gallery.exact_source

    def codes_only(query):  # the same gallery without its exact source: what near-ties cost
        gallery.exact_source = None
        try:
            return gallery.search(query, k)
        finally:
            gallery.exact_source = source

    searches = [lambda q: gallery.search(q, k)]
    if index is not None:
        searches.append(lambda q: index.search(q.reshape(1, -1), k))
    rescores_before = gallery.exact_rescores
    times, *peer = _timed(searches, probes)
    rescores = gallery.exact_rescores - rescores_before
    with_source, without_source = _timed([searches[0], codes_only], probes, rotate=True)
    ours = [gallery.search(q, 1)[0].person_id for q in probes[5:]]
    # exact float32 reference, only now (the memory figure is taken)
    matrix = np.empty((size, dim), dtype=np.float32)
    for start, block in _vectors(size, dim, seed):
        matrix[start:start + len(block)] = block
    exact = [f"person-{int(np.argmax(matrix @ q)):07d}" for q in probes[5:]]
    return {
        "search_ms": round(float(np.median(times)), 3),
        "search_p95_ms": round(float(np.percentile(times, 95)), 3),
        "faiss_flat_ms": round(float(np.median(peer[0])), 3) if peer else None,
        "search_with_source_ms": round(float(np.median(with_source)), 3),
        "search_without_source_ms": round(float(np.median(without_source)), 3),
        "memory_mb": round((after - before) / 1e6, 1),
        "matrix_mb": round(gallery.nbytes / 1e6, 1),
        "rank1_equal_float32": round(sum(a == b for a, b in zip(ours, exact)) / len(exact), 4),
        "exact_rescore_rate": round(rescores / len(probes), 4),  # the timed searches and their 5 warm-ups
        "exact_fallbacks": gallery.exact_fallbacks,
        "templates": len(gallery),
        "dim": dim,
        "queries": queries,
    }


def measure_faiss_memory(size, *, dim, seed=0):
    """Resident memory of faiss's index over the same vectors (None without faiss)."""
    try:
        import faiss
    except ImportError:
        return {"faiss_memory_mb": None}
    before = rss_bytes()  # after the import: its libraries are not the index
    index = _faiss_index(size, dim, seed)
    grown = rss_bytes() - before
    del index
    return {"faiss_memory_mb": round(grown / 1e6, 1), "faiss_version": faiss.__version__}


def _measure_in_subprocess(size, *, dim, queries, peer=False):
    command = [sys.executable, "-m", "kiosk.bench.gallery", "--worker", str(size), "--dim", str(dim),
               "--queries", str(queries)] + (["--peer"] if peer else [])
    # one thread everywhere: the gallery's scan, faiss's OpenMP pool, any BLAS pool
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
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
            results[str(size)].update(_measure_in_subprocess(size, dim=args.dim, queries=args.queries, peer=True))
        except RuntimeError as e:
            print(f"kiosk bench gallery: {e}", file=sys.stderr)
            return 1
        r = results[str(size)]
        if r["faiss_flat_ms"]:
            r["faster_than_faiss"] = round(r["faiss_flat_ms"] / r["search_ms"], 2) if r["search_ms"] else None
    verdict = _verdict(results)
    if args.json:
        print(json.dumps({"dim": args.dim, "threads": 1, "sizes": results, "target": verdict}, indent=2))
        return 0
    print(f"gallery search, top-2 identities, {args.dim}-d int8 codes, {args.queries} queries per size, 1 thread")
    print(f"{'people':>10} {'median ms':>10} {'p95 ms':>8} {'RSS MB':>8} {'arrays MB':>10} {'rank-1 = f32':>12} "
          f"{'faiss ms':>9} {'faiss MB':>9}")
    for size, r in results.items():
        faiss_ms = "-" if r["faiss_flat_ms"] is None else f"{r['faiss_flat_ms']:.3f}"
        faiss_mb = "-" if r["faiss_memory_mb"] is None else f"{r['faiss_memory_mb']:.1f}"
        print(f"{int(size):>10} {r['search_ms']:>10.3f} {r['search_p95_ms']:>8.3f} {r['memory_mb']:>8.1f} "
              f"{r['matrix_mb']:>10.1f} {r['rank1_equal_float32']:>12.4f} {faiss_ms:>9} {faiss_mb:>9}")
    if verdict:
        print(f"target at {TARGET_SIZE:,} people (<= {TARGET_MEMORY_MB:.0f} MB, no slower than faiss IndexFlatIP): "
              f"{'met' if verdict['met'] else 'NOT met'}")
    return 0


def _verdict(results):
    """Whether the 100,000-people target holds, when that size was measured (None otherwise)."""
    r = results.get(str(TARGET_SIZE))
    if r is None:
        return None
    fast = r["faiss_flat_ms"] is not None and r["search_ms"] <= r["faiss_flat_ms"]
    return {"size": TARGET_SIZE, "memory_mb_max": TARGET_MEMORY_MB, "memory_ok": r["memory_mb"] <= TARGET_MEMORY_MB,
            "faster_than_faiss": fast if r["faiss_flat_ms"] is not None else None,
            "met": r["memory_mb"] <= TARGET_MEMORY_MB and fast}


def _worker(argv):
    parser = argparse.ArgumentParser(prog="kiosk.bench.gallery")
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--peer", action="store_true")
    args = parser.parse_args(argv)
    if args.peer:
        print(json.dumps(measure_faiss_memory(args.worker, dim=args.dim)))
    else:
        print(json.dumps(measure(args.worker, dim=args.dim, queries=args.queries)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
