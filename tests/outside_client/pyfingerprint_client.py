#!/usr/bin/env python3
"""A client outside the project: only pyfingerprint (plus the standard library) talks to the sensor.

It does what a hobbyist's enrolment script does with a real R307: verify the password, enroll
one finger from two placements, store it, find it again by 1:N search, read the template count.
Someone has to put the finger on the sensor: with --control SOCKET the script asks a running
`kiosk-sim sensor` to do it (one JSON line per request over its Unix control socket); without
it, it asks the person at the keyboard. Prints one JSON object with what it saw; exit code 0
when the finger was found at the slot it was stored in.

    python pyfingerprint_client.py --port /tmp/sensor --control /tmp/sensor.ctl --finger FVC2002_DB1_B/103
"""

import argparse
import json
import socket
import sys

from pyfingerprint.pyfingerprint import PyFingerprint


def make_placer(control, finger):
    """A function that puts the finger (impression n) on the glass, or lifts it (n = None)."""
    def ask_simulator(impression):
        request = {"cmd": "lift"} if impression is None else {"cmd": "place", "finger": finger,
                                                               "impression": impression}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(control)
            with sock.makefile("rwb") as stream:
                stream.write(json.dumps(request).encode() + b"\n")
                stream.flush()
                answer = json.loads(stream.readline())
        if not answer.get("ok"):
            raise RuntimeError(f"simulator refused {request}: {answer}")

    def ask_person(impression):
        prompt = "Remove the finger" if impression is None else "Place the finger on the sensor"
        input(f"{prompt}, then press Enter... ")

    return ask_simulator if control else ask_person


def wait_for_image(fp, tries=100):
    for _ in range(tries):
        if fp.readImage():
            return
    raise RuntimeError("no finger on the sensor")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", required=True, help="serial port of the sensor")
    parser.add_argument("--baud", type=int, default=57600)
    parser.add_argument("--password", type=lambda s: int(s, 0), default=0)
    parser.add_argument("--control", help="control socket of a `kiosk-sim sensor` (else prompt a person)")
    parser.add_argument("--finger", default="FVC2002_DB1_B/103", help="finger identity for the simulator")
    args = parser.parse_args(argv)
    place = make_placer(args.control, args.finger)

    fp = PyFingerprint(args.port, args.baud, 0xFFFFFFFF, args.password)
    report = {"password_ok": fp.verifyPassword()}
    if not report["password_ok"]:
        print(json.dumps(report))
        return 1
    report["capacity"] = fp.getStorageCapacity()
    report["count_before"] = fp.getTemplateCount()

    place(1)
    wait_for_image(fp)
    fp.convertImage(0x01)
    place(None)
    place(2)
    wait_for_image(fp)
    fp.convertImage(0x02)
    report["merged"] = fp.createTemplate()
    report["stored_at"] = fp.storeTemplate()
    place(None)

    place(3)
    wait_for_image(fp)
    fp.convertImage(0x01)
    report["found_at"], report["score"] = fp.searchTemplate()
    place(None)
    report["count_after"] = fp.getTemplateCount()
    print(json.dumps(report))
    return 0 if report["found_at"] == report["stored_at"] else 1


if __name__ == "__main__":
    sys.exit(main())
