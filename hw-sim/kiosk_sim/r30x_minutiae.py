"""Minutiae for the R30x simulator: extraction, ISO 19794-2 records, a real matcher, image quality.

Extraction (NIST mindtct) and comparison (NIST bozorth3) come from ``nbis-py``, a simulator-only
dependency (the firmware never imports it: a real module does this work on its own chip). Of
the open packages measured for this (see docs/simulators.md) it is the one that installs from
a wheel and works here; ``afis`` builds from source and then lacks its native library.

Character files and templates are ISO/IEC 19794-2:2005 finger minutiae records written and read
here (nbis-py's own ISO writer leaves out the resolution, the finger view header and the extended
data length), zero-padded to the module's 512 bytes: at most 80 minutiae fit. Bytes the host
sends (``DownChar``) are parsed with bounds on every field: a record that does not parse has no
minutiae and matches nothing.
"""

import functools
import hashlib
import logging
import struct
import threading

import numpy as np

log = logging.getLogger(__name__)

RECORD_LEN = 512  # a char buffer / template on the module
HEADER_LEN = 28  # record header (24) + one finger view header (4)
MINUTIA_LEN = 6
MAX_MINUTIAE = (RECORD_LEN - HEADER_LEN - 2) // MINUTIA_LEN  # 80; 2 = extended data length
MIN_MINUTIAE = 12  # fewer than this and Img2Tz answers "too few feature points"
PPI = 500  # R30x optics and the FVC optical sets are ~500 dpi
PPCM = round(PPI / 2.54)

# bozorth3 score a comparison must reach, by the module's security level (1 lenient .. 5 strict).
# Level 4 is NIST's customary bozorth3 threshold (40); each level moves by about 7 points, which
# on bozorth3's impostor tail is roughly one decade of false-match rate. Chosen, not fitted.
THRESHOLDS = {1: 20, 2: 27, 3: 34, 4: 40, 5: 48}

_KIND_BITS = {"RIDGE_ENDING": 1, "BIFURCATION": 2}


def _nbis():
    try:
        import nbis
    except ImportError as e:  # pragma: no cover - the simulator extra installs it
        raise RuntimeError("the fingerprint simulator needs nbis-py (pip install 'kiosk[sim]')") from e
    return nbis


_extractor_lock = threading.Lock()
_extractor_made = []  # the one extractor, once made


def _extractor():
    """NBIS's extractor, made on first use (about half a second and some 80 MB resident)."""
    with _extractor_lock:
        if not _extractor_made:
            nbis = _nbis()
            settings = nbis.NbisExtractorSettings(min_quality=0.0, get_center=False, check_fingerprint=False,
                                                  compute_nfiq2=False, ppi=float(PPI))
            _extractor_made.append(nbis.new_nbis_extractor(settings))
        return _extractor_made[0]


def warm_up(*, background=False):
    """Make the extractor now, so the first Img2Tz answers in module time.

    ``background``: on a thread of its own (the simulator does this when the first finger
    touches the glass, while GenImg runs), so a simulated kiosk that never sees a finger never
    pays its memory.
    """
    if not background:
        _extractor()
    elif not _extractor_made:
        threading.Thread(target=_extractor, name="r30x-nbis-load", daemon=True).start()


def encode_record(minutiae, *, width, height, quality=0):
    """An ISO 19794-2:2005 record of ``(x, y, angle_deg, kind, quality)`` tuples, padded to 512 bytes."""
    minutiae = list(minutiae)
    # keep the best, in the extractor's order: bozorth3's pairing depends on the order
    keep = set(sorted(range(len(minutiae)), key=lambda i: -minutiae[i][4])[:MAX_MINUTIAE])
    chosen = [m for i, m in enumerate(minutiae) if i in keep]
    body = bytearray()
    for x, y, angle, kind, q in chosen:
        body += struct.pack(">HHBB", (kind & 3) << 14 | (int(x) & 0x3FFF), int(y) & 0x3FFF,
                            round(angle / 1.40625) % 256, max(0, min(100, int(q))))
    length = HEADER_LEN + len(body) + 2
    header = (b"FMR\0" + b" 20\0" + struct.pack(">IHHHHHBB", length, 0, width, height, PPCM, PPCM, 1, 0)
              + struct.pack(">BBBB", 0, 0, max(0, min(100, int(quality))), len(chosen)))
    return (header + bytes(body) + b"\0\0").ljust(RECORD_LEN, b"\0")


def decode_record(data):
    """``(width, height, [(x, y, angle_deg, kind, quality), ...])`` of a record, or None when it is not one."""
    data = bytes(data)
    if len(data) < HEADER_LEN or data[:8] != b"FMR\0 20\0":
        return None
    length, _, width, height, _, _, views, _ = struct.unpack_from(">IHHHHHBB", data, 8)
    count = data[27]
    if views < 1 or not HEADER_LEN + count * MINUTIA_LEN <= length <= len(data) or width == 0 or height == 0:
        return None
    minutiae = []
    for i in range(count):
        tx, ry, angle, q = struct.unpack_from(">HHBB", data, HEADER_LEN + i * MINUTIA_LEN)
        x, y, kind = tx & 0x3FFF, ry & 0x3FFF, tx >> 14
        if x >= width or y >= height:
            return None
        minutiae.append((x, y, angle * 1.40625, kind, q))
    return width, height, minutiae


def random_record(seed, *, count=40, width=256, height=288):
    """A record of ``count`` random minutiae: a cheap stand-in for another person's finger (tests, benches)."""
    rng = np.random.default_rng(seed)
    xs, ys = rng.integers(24, width - 24, count), rng.integers(24, height - 24, count)
    angles, kinds = rng.uniform(0, 360, count), rng.integers(1, 3, count)
    return encode_record([(int(x), int(y), float(a), int(k), 60) for x, y, a, k in zip(xs, ys, angles, kinds)],
                         width=width, height=height, quality=60)


def extract(image):
    """The record Img2Tz makes from a 288x256 uint8 image (cached by the image's bytes)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return _extract_cached(image.tobytes(), image.shape)


@functools.lru_cache(maxsize=512)
def _extract_cached(pixels, shape):
    import cv2

    image = np.frombuffer(pixels, np.uint8).reshape(shape)
    ok, png = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - a uint8 array always encodes
        raise ValueError("cannot encode the image")
    found = _extractor().extract_minutiae(png.tobytes()).get()
    minutiae = [(m.x(), m.y(), m.angle(), _KIND_BITS.get(m.kind().name, 0), round(100 * m.reliability()))
                for m in found]
    return encode_record(minutiae, width=shape[1], height=shape[0])


def minutiae_count(record):
    decoded = decode_record(record)
    return 0 if decoded is None else len(decoded[2])


@functools.lru_cache(maxsize=4096)
def _loaded(record):
    """nbis's in-memory minutiae for a record (its loader reads its own ISO layout), or None."""
    decoded = decode_record(record)
    if decoded is None or not decoded[2]:
        return None
    width, height, minutiae = decoded
    # nbis-py's layout: 24-byte header with the view count at 25, no view header, no extended data
    body = b"".join(struct.pack(">HHBB", k << 14 | x, y, round(a / 1.40625) % 256, q)
                    for x, y, a, k, q in minutiae)
    blob = (b"FMR\0 20\0" + struct.pack(">IHHH", 26 + len(body), 0, width, height) + bytes(7)
            + bytes([len(minutiae)]) + body)
    try:
        return _extractor().load_iso_19794_2_2005(blob)
    except Exception as e:  # nbis raises its own error types for a record it will not take
        log.debug("record refused by the matcher: %s", type(e).__name__)
        return None


def _key(record):
    """Cache key: the record proper (padding and trailing bytes after its length ignored)."""
    data = bytes(record)
    if len(data) >= 12 and data[:8] == b"FMR\0 20\0":
        length = int.from_bytes(data[8:12], "big")
        if HEADER_LEN <= length <= len(data):
            return data[:length]
    return data[:RECORD_LEN]


def score(probe, reference):
    """bozorth3 score of two records (0 when either has no minutiae)."""
    return _score(_key(probe), _key(reference))


@functools.lru_cache(maxsize=65536)
def _score(probe, reference):
    # deterministic, so cached: a 1:N search repeats the same comparisons, capture after capture
    a, b = _loaded(probe), _loaded(reference)
    if a is None or b is None:
        return 0
    return int(a.compare(b))


def digest(record):
    return hashlib.sha256(_key(record)).hexdigest()[:12]


# -- image quality --------------------------------------------------------------------------

BLOCK = 16
RIDGE_CONTRAST = 24  # grey-level standard deviation of a block with visible ridges (of 255)
RIDGE_COHERENCE = 0.45  # how strongly a block's gradients agree on one ridge direction (0..1)
DARK_MEAN = 110  # a block darker than this without ridges is smeared by moisture or grease
MESSY_SHARE = 0.25  # share of the window smeared before the image is "too messy"
CLEAR_SHARE = 0.20  # share of the window with clear ridges needed to look for minutiae


def quality(image):
    """Contrast and ridge clarity measured on a sensor image, per 16x16 block.

    Returns ``{"clear": share of blocks with clear ridges, "smeared": share of dark blocks
    without ridges, "contrast": median standard deviation over the ridged blocks}``.
    """
    import cv2

    image = np.asarray(image, dtype=np.float32)
    h, w = (image.shape[0] // BLOCK) * BLOCK, (image.shape[1] // BLOCK) * BLOCK
    image = image[:h, :w]
    gx, gy = cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1)

    def blocks(a):
        return a.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2).reshape(h // BLOCK, w // BLOCK, -1)

    gxx, gyy, gxy = blocks(gx * gx).sum(-1), blocks(gy * gy).sum(-1), blocks(gx * gy).sum(-1)
    coherence = np.sqrt((gxx - gyy) ** 2 + 4 * gxy ** 2) / np.maximum(gxx + gyy, 1e-6)
    pixels = blocks(image)
    std, mean = pixels.std(-1), pixels.mean(-1)
    clear = (std >= RIDGE_CONTRAST) & (coherence >= RIDGE_COHERENCE)
    smeared = ~clear & (mean < DARK_MEAN)
    return {"clear": float(clear.mean()), "smeared": float(smeared.mean()),
            "contrast": float(np.median(std[clear])) if clear.any() else 0.0}


def guidance(image):
    """None when the image is usable, else "messy" (wet or oily: smeared) or "few" (too little ridge area)."""
    measured = quality(image)
    if measured["smeared"] >= MESSY_SHARE:
        return "messy"
    if measured["clear"] < CLEAR_SHARE:
        return "few"
    return None

