"""`kiosk bench codes`: how often the provisioning-code reader reads codes shown to the camera, and how fast.

Renders the camera simulator's code scenarios (a phone screen, paper, tilted, too far) with a
real signed code made with a throwaway key, then times ``CodeReader.read`` on each frame (the
rendering is not timed) for each detector. A frame counts as read when the text is exactly the
code shown and its signature verifies.
"""

import json
import statistics
import tempfile
import time
from pathlib import Path

from kiosk import argtypes

SCENARIOS = ("code_phone", "code_paper", "code_tilted", "code_far")


def register(subparsers):
    parser = subparsers.add_parser("codes", help="provisioning QR codes: read rate and time per frame",
                                   description=__doc__)
    parser.add_argument("--frames", type=argtypes.positive_int, default=20,
                        help="frames per scenario (default %(default)s)")
    parser.add_argument("--sizes", default="1280x720,640x480",
                        help="frame sizes, comma-separated WIDTHxHEIGHT (default %(default)s)")
    parser.add_argument("--with-pin", action="store_true",
                        help="codes carrying the admin PIN hash (make-code --include-admin-pin)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)
    return parser


def sample_code(key, *, with_pin=False):
    """A realistic first-provisioning code as make-code makes it: Wi-Fi and a CA fingerprint."""
    import secrets

    from kiosk import pinhash, provision_code

    payload = {"id": provision_code.new_code_id(), "exp": int(time.time()) + 3600,
               "u": "https://kiosk-server.example.org:8443", "t": secrets.token_urlsafe(24),
               "ca": secrets.token_hex(32), "s": "Head office", "d": "Main entrance", "z": "Asia/Riyadh", "l": "ar",
               "w": ["office-wifi", "correct horse battery", "SA"]}
    if with_pin:
        payload["p"] = pinhash.hash_pin("4321")
    return provision_code.encode(payload, key)


def run(args):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from kiosk_sim import scenarios

    from kiosk import code_maker, code_reader, provision_code

    key = Ed25519PrivateKey.generate()
    public = [code_maker.public_hex(key)]
    text = sample_code(key, with_pin=args.with_pin)
    sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.sizes.split(",")]
    readers = {name: code_reader.CodeReader(detector=name) for name in ("aruco", "classic")}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        code_file = Path(tmp) / "code.txt"
        code_file.write_text(text)
        for size in sizes:
            for name in SCENARIOS:
                scenario = scenarios.build(f"{name}:code_file={code_file}", seed=1, size=size)
                frames = [scenario.render(i).image for i in range(args.frames)]
                for detector, reader in readers.items():
                    read, times = 0, []
                    for frame in frames:
                        began = time.perf_counter()
                        got = reader.read(frame)
                        times.append(time.perf_counter() - began)
                        if got == text:
                            provision_code.decode(got, public_keys=public, now_s=time.time())
                            read += 1
                    times.sort()
                    results.append({"size": f"{size[0]}x{size[1]}", "scenario": name, "detector": detector,
                                    "read": read, "frames": len(frames), "read_rate": round(read / len(frames), 3),
                                    "median_ms": round(statistics.median(times) * 1000, 1),
                                    "p95_ms": round(times[int(0.95 * (len(times) - 1))] * 1000, 1)})
    if args.json:
        print(json.dumps({"code_chars": len(text), "qr_version": _version(text), "results": results}))
    else:
        print(f"code: {len(text)} characters, QR version {_version(text)}")
        for r in results:
            print(f"{r['size']:>9} {r['scenario']:12} {r['detector']:8} read {r['read']:3}/{r['frames']:<3} "
                  f"median {r['median_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms")
    return 0


def _version(text):
    try:
        import segno
    except ImportError:
        return "?"
    return segno.make(text, error="m", micro=False).version
