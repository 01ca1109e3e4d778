"""CPU time of a process from Linux's /proc, for the benchmarks that run the kiosk or a simulator as a child."""

import os
from pathlib import Path


def cpu_seconds(pid):
    """User + system CPU seconds of process ``pid``, every thread; ``OSError`` when /proc has no such process.

    utime and stime are fields 14 and 15 of /proc/PID/stat; the name before them (in parentheses)
    may hold spaces, so the fields are counted after its closing parenthesis.
    """
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
