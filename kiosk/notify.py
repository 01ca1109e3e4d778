"""systemd service notifications (sd_notify) without a library: READY, WATCHDOG, STATUS, STOPPING."""

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends datagrams to $NOTIFY_SOCKET; does nothing when not started by systemd."""

    def __init__(self, address=None):
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        if self.address.startswith("@"):
            self.address = "\0" + self.address[1:]  # abstract namespace socket
        self._sock = None

    @property
    def enabled(self):
        return bool(self.address)

    def send(self, **fields):
        """Send KEY=value lines, e.g. ``send(READY=1, STATUS="waiting for server")``."""
        if not self.enabled:
            return False
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            self._sock.sendto(message, self.address)
            return True
        except OSError as e:
            log.warning("sd_notify failed: %s", e)
            return False

    def ready(self, status=""):
        return self.send(READY=1, STATUS=status) if status else self.send(READY=1)

    def watchdog(self):
        return self.send(WATCHDOG=1)

    def status(self, text):
        return self.send(STATUS=text)

    def stopping(self):
        return self.send(STOPPING=1)

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_s():
    """Half the watchdog timeout systemd gave us ($WATCHDOG_USEC), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6
