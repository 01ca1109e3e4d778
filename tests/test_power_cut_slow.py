"""Power cuts: the event writer runs in an emulated arm64 machine whose power is cut at random.

Slow (marker ``slow``, run by ``make test-all``). The machine is the image boot test's
(qemu-system-aarch64 -M virt, cortex-a72, TCG) with Debian 12's arm64 kernel and Python 3.11,
booted from the small initramfs image-build/power-cut/make-guest.sh builds (a boot takes
seconds, not the minutes of the full systemd image). The events database lives on a virtio disk
opened with ``cache=none`` (O_DIRECT: nothing the guest wrote waits in the host's page cache),
formatted ext4 with the defaults.

Each round boots the guest, which first checks what survived the previous cut (inside the guest:
the ext4 journal is replayed by the mount, SQLite recovers its WAL), then runs
tests/helpers/write_events.py, which prints each event on the serial console only after its
COMMIT (WAL, synchronous=FULL) returned. After a random number of reported events and a random
delay the emulator is killed with SIGKILL: the guest's RAM, its page cache and every write in
flight are gone, as in a power cut. A last boot only checks. Every event reported on the console
before a cut must be stored, with the same sequence number; ``PRAGMA integrity_check`` must say
ok and the hash chain must verify.

The process-crash campaign (SIGKILL of the writer process on the host) is
tests/test_storage_crash.py.
"""

import os
import random
import re
import shutil
import signal
import subprocess
import time

import pytest
from conftest import ROOT

APT_LINE = "apt-get install qemu-system-arm"
TOOLS = ("qemu-system-aarch64", "dpkg-deb", "apt-get", "mke2fs")
CUTS = int(os.environ.get("KIOSK_POWER_CUTS", "12"))
BOOT_TIMEOUT_S = 300.0
MAX_EVENTS_PER_ROUND = 400
EVENT = re.compile(r"^@@PC ev (\d+) ([0-9a-f-]{36})$")
STORED = re.compile(r"^@@PC stored (\d+) ([0-9a-f-]{36})$")
CHECK = re.compile(r"^@@PC check integrity=(\S+) chain=(\S+) events=(\d+)$")


def _missing():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return f"needs {', '.join(missing)}: {APT_LINE}" if missing else None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]


class Guest:
    """One emulated machine with the guest's kernel and initramfs and the events disk."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.disk = workdir / "events.img"
        self.console = workdir / "console.log"
        self.proc = None

    def boot(self, mode):
        self.console.write_bytes(b"")
        command = [
            "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "1", "-m", "512",
            "-accel", "tcg", "-nic", "none", "-no-reboot", "-display", "none", "-monitor", "none",
            "-serial", f"file:{self.console}",
            "-kernel", str(self.workdir / "vmlinuz"), "-initrd", str(self.workdir / "initrd.cpio.gz"),
            "-append", f"console=ttyAMA0 quiet loglevel=3 pc.mode={mode}",
            # cache=none: O_DIRECT on the host, so a killed emulator loses exactly what the guest
            # had not yet flushed to its disk
            "-drive", f"file={self.disk},format=raw,if=none,id=events,cache=none",
            "-device", "virtio-blk-device,drive=events",
        ]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

    def lines(self):
        """Complete console lines so far (a line cut by the power cut is not complete)."""
        text = self.console.read_bytes().decode(errors="replace").replace("\r", "")
        return [line.strip() for line in text.split("\n")[:-1]]

    def wait_for(self, predicate, what):
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while time.monotonic() < deadline:
            lines = self.lines()
            if predicate(lines):
                return lines
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)  # polling the emulator's console file
        raise AssertionError(f"guest never got to {what} (qemu status {self.proc.poll()}):\n"
                             + "\n".join(self.lines()[-30:]))

    def cut_power(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def wait_end(self):
        self.proc.wait(timeout=BOOT_TIMEOUT_S)
        assert self.proc.returncode == 0, self.proc.stderr.read().decode(errors="replace")


def check_report(lines):
    """(stored {uuid: seq}, integrity, chain, events) from a boot's check lines."""
    stored = {}
    for line in lines:
        match = STORED.match(line)
        if match:
            stored[match.group(2)] = int(match.group(1))
    for line in lines:
        match = CHECK.match(line)
        if match:
            return stored, match.group(1), match.group(2), int(match.group(3))
    return stored, None, None, None


def assert_nothing_lost(lines, committed):
    stored, integrity, chain, count = check_report(lines)
    assert integrity == "ok", f"PRAGMA integrity_check: {integrity}"
    assert chain == f"ok:{count}", f"hash chain: {chain}"
    assert count == len(stored)
    lost = {uuid: seq for uuid, seq in committed.items() if stored.get(uuid) != seq}
    assert not lost, f"{len(lost)} committed events lost or renumbered, e.g. {sorted(lost.items())[:5]}"
    return count


@pytest.mark.timeout(int(BOOT_TIMEOUT_S * (CUTS + 2) + 600))
def test_power_cuts_lose_no_committed_event(tmp_path):
    build = subprocess.run([ROOT / "image-build" / "power-cut" / "make-guest.sh", tmp_path],
                           capture_output=True, text=True)
    assert build.returncode == 0, f"make-guest.sh failed:\n{build.stdout[-2000:]}\n{build.stderr[-4000:]}"
    guest = Guest(tmp_path)
    with open(guest.disk, "wb") as disk:
        disk.truncate(64 * 1024 * 1024)
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-F", str(guest.disk)], check=True)

    rng = random.Random(20261128)
    committed = {}
    t0 = time.monotonic()
    for cut in range(CUTS):
        guest.boot("write")
        lines = guest.wait_for(lambda ls: "@@PC writing" in ls, "the writer")
        if cut > 0:
            assert_nothing_lost(lines, committed)
        target = rng.randint(1, MAX_EVENTS_PER_ROUND)
        guest.wait_for(lambda ls: sum(1 for line in ls if EVENT.match(line)) >= target, f"{target} events")
        time.sleep(rng.random() * 0.5)  # somewhere inside the next transaction or checkpoint
        guest.cut_power()
        round_events = [EVENT.match(line) for line in guest.lines()]
        for match in filter(None, round_events):
            committed[match.group(2)] = int(match.group(1))
    guest.boot("check")
    guest.wait_end()
    stored_count = assert_nothing_lost(guest.lines(), committed)
    elapsed_s = time.monotonic() - t0
    print(f"power cuts: {CUTS}, events reported committed: {len(committed)}, stored: {stored_count}, "
          f"lost: 0, integrity ok, chain ok; {elapsed_s:.0f} s ({elapsed_s / (CUTS + 1):.1f} s per boot)")
    assert len(committed) >= CUTS
