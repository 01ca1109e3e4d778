"""Keys and files (issue 12 item 7): key folders fsynced, key modes checked, Wi-Fi values escaped."""

import os
import stat

import pytest

from kiosk import provision, provision_file
from kiosk.errors import ProvisioningError
from kiosk.storage.seal import DataKey
from kiosk.sync import keys


def fsynced_directories(monkeypatch):
    """Record the (device, inode) of every directory fsynced from now on (os.fsync still runs)."""
    seen = []
    real = os.fsync

    def recording(fd):
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            seen.append((st.st_dev, st.st_ino))
        return real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return seen


def identity(path):
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_data_key_folder_is_fsynced_when_the_key_is_created(tmp_path, monkeypatch):
    seen = fsynced_directories(monkeypatch)
    DataKey.create(tmp_path / "keys" / "data.key")
    assert identity(tmp_path / "keys") in seen


def test_device_key_folder_is_fsynced_too(tmp_path, monkeypatch):
    seen = fsynced_directories(monkeypatch)
    keys.load_or_create_device_key(tmp_path / "keys" / "device.key")
    assert identity(tmp_path / "keys") in seen


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_device_key_readable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / "device.key"
    keys.load_or_create_device_key(path)
    keys.load_device_key(path)  # 0600: fine
    path.chmod(mode)
    with pytest.raises(ProvisioningError, match="chmod 600"):
        keys.load_device_key(path)


def parse_keyfile(text):
    """A strict reader of NetworkManager's keyfile format: sections and their keys, escapes undone."""
    sections, current = {}, None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"line {line!r} is neither a section nor key=value"
        assert key not in current, f"key {key} given twice"
        current[key] = value
    return sections


def unescape(value):
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            out.append({"n": "\n", "r": "\r", "t": "\t", "s": " ", "\\": "\\"}[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def ssid_of(value):
    if value.endswith(";"):
        return bytes(int(b) for b in value[:-1].split(";")).decode()
    return value


def apply_wifi(tmp_path, ssid, psk):
    ssid_toml = ssid.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    psk_toml = psk.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    text = (f'[server]\nurl = "https://kiosk.example.org"\nenrolment_token = "t"\n'
            f'[wifi]\nssid = "{ssid_toml}"\npsk = "{psk_toml}"\ncountry = "SA"\n')
    path = tmp_path / provision_file.FILE_NAME
    path.write_text(text)
    pf = provision_file.load(path)
    paths = provision.Paths(boot_dir=tmp_path, etc_dir=tmp_path / "etc", state_dir=tmp_path / "state")
    paths.etc_dir.mkdir()
    provision._apply_system(pf, paths)
    return (paths.etc_dir / "NetworkManager/system-connections/kiosk-wifi.nmconnection").read_text()


@pytest.mark.parametrize("ssid, psk", [
    ("evil\n[ipv4]\nmethod=disabled", "pass\\word;#x=1"),
    ("cafe;wifi\\x", "p=ss[wifi]word"),
    (" lead and trail ", "#comment-like!"),
    ("مقهى", "plain-passphrase"),
    ("office-wifi", "correct horse battery"),
])
def test_wifi_ssid_and_passphrase_cannot_inject_keyfile_lines(tmp_path, ssid, psk):
    sections = parse_keyfile(apply_wifi(tmp_path, ssid, psk))
    assert list(sections) == ["connection", "wifi", "wifi-security", "ipv4", "ipv6"]
    assert sections["ipv4"] == {"method": "auto"}
    assert ssid_of(sections["wifi"]["ssid"]) == ssid.strip()
    assert unescape(sections["wifi-security"]["psk"]) == psk.strip()


def test_passphrase_with_a_newline_is_refused(tmp_path):
    with pytest.raises(ProvisioningError, match="printable ASCII"):
        apply_wifi(tmp_path, "office", "password\n[ipv4]\nmethod=disabled")


def test_demo_stopped_with_sigterm_leaves_no_keys_behind(tmp_path, datasets):
    import signal
    import subprocess
    import sys

    env = dict(os.environ, TMPDIR=str(tmp_path))
    child = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "demo", "--people", "3", "--datasets", str(datasets)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in child.stdout:  # wait (on the demo's own output, not a timer) until the keys exist
            lines.append(line)
            if line.startswith("[4]"):
                break
        workdirs = list(tmp_path.glob("kiosk-demo-*"))
        assert len(workdirs) == 1, lines
        assert (workdirs[0] / "keys" / "device.key").exists(), lines
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        child.kill()
        child.wait()
    assert not workdirs[0].exists(), "the demo's work folder (keys, database) was left behind"
    assert not list(tmp_path.rglob("*.key"))
