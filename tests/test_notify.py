"""sd_notify datagrams reach a real unix socket the way systemd would read them."""

import socket

from kiosk.notify import Notifier, watchdog_interval_s


def test_ready_and_watchdog_reach_the_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    notifier = Notifier(path)
    assert notifier.ready("up")
    assert server.recv(1024) == b"READY=1\nSTATUS=up"
    assert notifier.watchdog()
    assert server.recv(1024) == b"WATCHDOG=1"
    notifier.close()
    server.close()


def test_without_systemd_nothing_is_sent():
    assert Notifier("").ready() is False


def test_watchdog_interval_is_half_the_timeout(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() == 10.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval_s() is None
