"""The system clock's synchronization check is cheap enough to run for every event."""

import ctypes.util
import subprocess

from kiosk import clock
from kiosk.clock import SystemClock


def test_sync_check_looks_libc_up_once_and_launches_no_process_per_event(monkeypatch):
    lookups = []
    launches = []
    real_find_library = ctypes.util.find_library
    real_popen_init = subprocess.Popen.__init__

    def counting_find_library(name):
        lookups.append(name)
        return real_find_library(name)

    def counting_popen_init(self, args, *rest, **options):
        launches.append(args)
        return real_popen_init(self, args, *rest, **options)

    monkeypatch.setattr(ctypes.util, "find_library", counting_find_library)
    monkeypatch.setattr(subprocess.Popen, "__init__", counting_popen_init)
    clock.forget_libc()  # as in a fresh process
    system = SystemClock()
    answers = {system.is_synchronized() for _ in range(200)}
    assert len(answers) == 1  # the kernel's answer, the same every time on a quiet machine
    assert lookups == ["c"]
    # find_library runs `ldconfig -p` (a process) on Linux: once at most, not once per event
    assert len(launches) <= 1, launches


def test_sync_check_reads_the_kernel_state():
    # None would mean the adjtimex call itself failed on this Linux machine
    assert clock.kernel_clock_synchronized() in (True, False)
