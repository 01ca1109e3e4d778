"""The server simulator in a process of its own, started and stopped the way a real server would be.

A deployed kiosk talks to a server on another machine: a benchmark that runs the simulator in
its own process measures that, not two programs taking turns on one interpreter lock.

    with ServerProcess(workdir=tmp, tls=True) as server:
        register with server.url, server.token, server.ca_file ...
        server.cpu_seconds()      # CPU time the server has used so far (Linux /proc)
    server.record_count()         # records it stored, read from its database
"""

import logging
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from kiosk_sim import proc_stat

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0  # imports, keys and a TLS certificate on a slow, busy machine
STOP_TIMEOUT_S = 10.0


class ServerProcessError(RuntimeError):
    """The server simulator process did not start or did not say where it listens."""


class ServerProcess:
    """``kiosk-sim server`` as a child process on a free loopback port, with one enrolment token."""

    def __init__(self, *, workdir, tls=True):
        self.workdir = Path(workdir)
        self.db_path = self.workdir / "server.db"
        self.tls = bool(tls)
        self.url = self.ca_file = self.token = None
        self._process = None

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "kiosk_sim.cli", "--log-level", "WARNING", "server", "--port", "0",
                   "--db", str(self.db_path), "--tokens", "1"] + (["--tls"] if self.tls else [])
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            self._read_banner()
        except BaseException:
            self.close()
            raise
        log.info("server simulator process %d on %s", self._process.pid, self.url)
        return self

    def _read_banner(self):
        # the CLI prints where it listens, its CA file and the token, each on a line of its own
        fields = {"server simulator listening on ": "url", "CA certificate: ": "ca_file",
                  "enrolment token: ": "token"}
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            while self.token is None:
                left_s = deadline - time.monotonic()
                if left_s <= 0 or not selector.select(left_s):
                    raise ServerProcessError(f"the server simulator said nothing within {READY_TIMEOUT_S:g} s")
                chunk = os.read(self._process.stdout.fileno(), 4096)
                if not chunk:
                    raise ServerProcessError(f"the server simulator exited with code {self._process.wait()}")
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", "replace")
                    for prefix, name in fields.items():
                        if text.startswith(prefix):
                            setattr(self, name, text[len(prefix):].split()[0])
        if self.url is None or (self.tls and self.ca_file is None):
            raise ServerProcessError("the server simulator did not print its address and CA file")

    @property
    def pid(self):
        return self._process.pid if self._process is not None else None

    def cpu_seconds(self):
        """User + system CPU time of the server process so far; None where /proc is not there."""
        if self.pid is None:
            return None
        try:
            return proc_stat.cpu_seconds(self.pid)
        except (OSError, IndexError, ValueError):
            return None

    def record_count(self):
        """Records the server holds, read from its database (works after close too)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as conn:
            count = conn.execute("SELECT count(*) FROM records").fetchone()[0]
        conn.close()
        return count

    def close(self):
        """Stop the server as an operator would (SIGINT: it closes its database), killing it if it hangs."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("server simulator process %d did not stop: killed", process.pid)
                process.kill()
                process.wait()
        process.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
