"""Which server addresses the kiosk may use: http(s) with a host, and plain http only on this machine.

Plain http is neither private nor authenticated, so it is allowed only for loopback (127.0.0.0/8,
::1, localhost), where the simulators and tests run. Settings (kind 'url'), provisioning files
and the sync client all ask ``url_problem``.
"""

import ipaddress
import logging
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


def is_loopback_host(host):
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url):
    """Why ``url`` may not be used to reach a server, or None when it may."""
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return f"{url!r} contains spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as e:
        return f"{url!r} is not a valid URL ({e})"
    if parts.scheme not in ("http", "https") or not host:
        return f"{url!r} is not an http(s) URL with a host"
    if parts.scheme == "http" and not is_loopback_host(host):
        return (f"{url!r}: plain http is refused except on this machine (127.0.0.1, ::1, localhost); "
                "use https")
    return None
