"""Provisioning requests: the unprivileged kiosk app asks, a root-run helper checks and applies.

kiosk.service runs as the kiosk user with /etc/kiosk read-only, so the admin page cannot
rewrite the settings itself. It files a request instead: ``request.json`` renamed into
``/var/lib/kiosk/requests`` (a directory the kiosk user writes).
kiosk-provision-request.path sees the directory is not empty and starts
kiosk-provision-request.service, which runs ``kiosk provision apply-request`` as root. The
outcome goes to ``/var/lib/kiosk-provision/result.json`` (root's directory, readable by all),
which the page reads and shows.

The request comes from a less trusted process, so the root side trusts nothing in it but the
choice of action, and checks everything that matters itself:

- the request file: a regular file (no symlink, FIFO or device), one link, owned by the
  spool directory's owner, at most MAX_REQUEST_BYTES, a JSON object with known fields only;
  it is removed once read, and so is anything else found in the spool;
- re-provisioning by code: the code's signature by a fleet key in /etc/kiosk/provisioning-keys
  (baked into the image), its expiry and the used-code list (/etc/kiosk/used-codes.json, root's)
  are checked here, by provision_by_code, as at first boot; the kiosk must be registered and the
  code must name this device;
- re-provisioning by file: the root side reads kiosk-provision.toml from the boot partition
  itself (nothing of the file passes through the app); it must be a signed re-provisioning file
  (its signature by a key the kiosk learnt at first provisioning, a sequence newer than the last);
- decommissioning: honoured without the admin PIN (the kiosk user can destroy its own data
  anyway), but only as ``kiosk provision decommission`` does it: every pending record uploaded
  first, nothing wiped while the server cannot take them all.

The admin PIN is the app's gate (the admin page is reached only with it); the root side's
authority for a change of settings is the signature, not the app's word.
"""

import json
import logging
import os
import secrets
import shutil
import stat
from pathlib import Path

from kiosk.errors import ProvisioningError

log = logging.getLogger(__name__)

REQUEST_NAME = "request.json"
RESULT_NAME = "result.json"
MAX_REQUEST_BYTES = 4096          # a code is at most 1200 characters (provision_code.MAX_CODE_CHARS)
MAX_RESULT_BYTES = 16384
ACTIONS = ("reprovision_code", "reprovision_file", "decommission")
FIELDS = {"id", "action", "code"}


class RequestRefusedError(ProvisioningError):
    """A provisioning request was refused before anything was changed; the message says why."""


def new_request_id():
    return secrets.token_hex(16)


# --- the app's side ------------------------------------------------------------------------------

def file_request(paths, action, *, code=None):
    """Write a request for ``action`` into the spool (complete files only: written aside, then renamed)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown provisioning request {action!r}")
    request = {"id": new_request_id(), "action": action}
    if code is not None:
        request["code"] = code
    spool = Path(paths.request_dir)
    spool.mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = spool.parent / f".{REQUEST_NAME}.{request['id']}"
    # written outside the spool, so the helper never sees half a file
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(request, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(aside, spool / REQUEST_NAME)
    log.info("provisioning request %s filed (%s)", request["id"][:8], action)
    return request["id"]


def is_pending(paths):
    """True while a request waits in the spool for the helper."""
    return (Path(paths.request_dir) / REQUEST_NAME).exists()


def read_result(paths, request_id=None):
    """The helper's last result (a dict), or None; with ``request_id``, only that request's."""
    path = Path(paths.result_dir) / RESULT_NAME
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_RESULT_BYTES + 1)
    except OSError:
        return None
    try:
        result = json.loads(raw) if len(raw) <= MAX_RESULT_BYTES else None
    except ValueError:
        return None
    if not isinstance(result, dict) or (request_id is not None and result.get("id") != request_id):
        return None
    return result


# --- the root side -------------------------------------------------------------------------------

def take_request(request_dir):
    """Read and remove the request in ``request_dir``: the parsed dict, or None when there is none.

    RequestRefusedError when it is not a small regular JSON file of the spool's owner; it is
    removed all the same. Anything else in the spool is removed (and logged)."""
    try:
        dir_fd = os.open(request_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:     # a symlink in place of the spool (ELOOP), or not a directory
        raise RequestRefusedError(f"{request_dir} is not a plain directory ({e.strerror}): nothing read") from None
    try:
        owner = os.fstat(dir_fd).st_uid
        names = os.listdir(dir_fd)
        for name in names:
            if name != REQUEST_NAME:
                log.warning("removing %r from the request spool: not a request", name)
                _remove(name, dir_fd)
        if REQUEST_NAME not in names:
            return None
        try:
            raw = _read_checked(dir_fd, owner)
        finally:
            _remove(REQUEST_NAME, dir_fd)
    finally:
        os.close(dir_fd)
    return parse_request(raw)


def _read_checked(dir_fd, owner):
    try:   # O_NONBLOCK: opening a FIFO must not hang the helper
        fd = os.open(REQUEST_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY, dir_fd=dir_fd)
    except OSError as e:
        raise RequestRefusedError(f"the request is not a regular file ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RequestRefusedError("the request is not a regular file")
        if st.st_nlink != 1:
            raise RequestRefusedError("the request has other hard links: refused")
        if st.st_uid != owner:
            raise RequestRefusedError("the request is not owned by the spool's owner: refused")
        if st.st_size > MAX_REQUEST_BYTES:
            raise RequestRefusedError(f"the request is {st.st_size} bytes, over the limit of {MAX_REQUEST_BYTES}")
        raw = os.read(fd, MAX_REQUEST_BYTES + 1)
        if len(raw) > MAX_REQUEST_BYTES:
            raise RequestRefusedError(f"the request is over the limit of {MAX_REQUEST_BYTES} bytes")
        return raw
    finally:
        os.close(fd)


def _remove(name, dir_fd):
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)     # symlink-safe: never follows a link out of the spool
        else:
            os.unlink(name, dir_fd=dir_fd)
    except OSError as e:
        log.error("cannot remove %r from the request spool: %s", name, e)


def parse_request(raw):
    """The request dict from its bytes; RequestRefusedError for anything but a known, well-formed one."""
    try:
        request = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestRefusedError("the request is not JSON") from None
    if not isinstance(request, dict) or set(request) - FIELDS:
        raise RequestRefusedError("the request is not a JSON object of id, action and code")
    request_id, action, code = request.get("id"), request.get("action"), request.get("code")
    if not isinstance(request_id, str) or not (1 <= len(request_id) <= 64) or not request_id.isalnum():
        raise RequestRefusedError("the request has no valid id")
    if action not in ACTIONS:
        raise RequestRefusedError(f"unknown action {str(action)[:40]!r}")
    if (action == "reprovision_code") != isinstance(code, str):
        raise RequestRefusedError("a code goes with reprovision_code, and only with it")
    return request


def write_result(paths, result):
    """Write ``result`` atomically to RESULT_NAME in the helper's own directory, readable by the app."""
    directory = Path(paths.result_dir)
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    aside = directory / f".{RESULT_NAME}.tmp"
    aside.unlink(missing_ok=True)
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(result, f)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(aside, 0o644)        # the helper's UMask is 0077; the app (another user) reads it
    os.replace(aside, directory / RESULT_NAME)
