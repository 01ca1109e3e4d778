"""Settings: layering, validation errors that name the key and file, masking."""

import os

import pytest

from kiosk import config
from kiosk.errors import ConfigError, KioskError


def write(tmp_path, text, name="kiosk.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_valid():
    settings = config.build([])
    assert settings.hardware.backend == "pi"  # never the simulator unless asked
    assert settings.fingerprint.baud == 57600
    assert settings.db_path.name == "kiosk.db"


def test_file_overrides_defaults_and_environment_overrides_file(tmp_path):
    path = write(tmp_path, '[sync]\nbatch_size = 100\nserver_url = "https://central.example:8443"\n')
    settings = config.load(path, environ={"KIOSK_SYNC__BATCH_SIZE": "250", "KIOSK_HARDWARE_TESTS": "1"})
    assert settings.sync.batch_size == 250
    assert settings.sync.server_url == "https://central.example:8443"


def test_kiosk_config_variable_names_the_file(tmp_path):
    path = write(tmp_path, '[ui]\nlanguage = "en"\n')
    assert config.load(environ={"KIOSK_CONFIG": str(path)}).ui.language == "en"


def test_int_accepted_where_float_expected(tmp_path):
    path = write(tmp_path, "[gpio]\ndoor_pulse_s = 5\n")
    pulse = config.load(path, environ={}).gpio.door_pulse_s
    assert pulse == 5.0 and isinstance(pulse, float)


MALFORMED = [
    ("unknown key", "[sync]\nbatch_sise = 10\n", "sync.batch_sise"),
    ("unknown section", "[synk]\nbatch_size = 10\n", "[synk]"),
    ("wrong type", '[sync]\nbatch_size = "ten"\n', "sync.batch_size"),
    ("bool for int", "[sync]\nbatch_size = true\n", "sync.batch_size"),
    ("bad url", '[sync]\nserver_url = "ftp:/nowhere"\n', "sync.server_url"),
    ("url without host", '[sync]\nserver_url = "https://"\n', "sync.server_url"),
    ("negative timeout", "[fingerprint]\ncapture_timeout_s = -1.0\n", "fingerprint.capture_timeout_s"),
    ("bad pin number", "[gpio]\ndoor_pin = 40\n", "gpio.door_pin"),
    ("bad choice", '[hardware]\nbackend = "arduino"\n', "hardware.backend"),
    ("bad baud", "[fingerprint]\nbaud = 12345\n", "fingerprint.baud"),
    ("above maximum", "[face]\nthreads = 64\n", "face.threads"),
    ("section not a table", "sync = 3\n", "sync"),
    ("invalid TOML", "[sync\nbatch_size = 1\n", "line 1"),
    ("invalid TOML later line", "[sync]\nbatch_size = = 1\n", "line 2"),
    ("bad hex", '[security]\nserver_public_key = "zz"\n', "security.server_public_key"),
    ("digits cut off", "[voice]\ndigit_check = true\n", "voice.record_s"),
]


@pytest.mark.parametrize("label,text,needle", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_configuration_names_key_or_line(tmp_path, label, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path, environ={})
    message = str(info.value)
    assert needle in message
    assert str(path) in message
    assert isinstance(info.value, KioskError) and isinstance(info.value, ValueError)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        config.load(tmp_path / "absent.toml", environ={})


def test_absent_default_file_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", tmp_path / "absent.toml")
    assert config.load(environ={}).sync.batch_size == 500


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_an_error_unprivileged(tmp_path):
    path = write(tmp_path, "[sync]\n")
    path.chmod(0)
    with pytest.raises(ConfigError, match="not readable"):
        config.load(path, environ={})


def test_unreadable_file_is_an_error(tmp_path):
    # a directory where the file should be cannot be read, even by root
    with pytest.raises(ConfigError, match="is a directory"):
        config.load(tmp_path, environ={})


def test_non_utf8_file_is_an_error(tmp_path):
    path = tmp_path / "k.toml"
    path.write_bytes(b'[ui]\nlanguage = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(path, environ={})


def test_bad_environment_value_names_the_variable_source():
    with pytest.raises(ConfigError, match="environment: sync.batch_size"):
        config.load("/dev/null", environ={"KIOSK_SYNC__BATCH_SIZE": "-3"})


def test_environment_unknown_section_named():
    with pytest.raises(ConfigError, match="KIOSK_NOPE__X"):
        config.load("/dev/null", environ={"KIOSK_NOPE__X": "1"})


def test_secrets_are_masked():
    from kiosk.provision_file import hash_pin

    pin_hash = hash_pin("4321", salt=b"0123456789abcdef")
    settings = config.build([("t", {"security": {"admin_pin_hash": pin_hash}, "fingerprint": {"password": 7}})])
    shown = config.as_dict(settings)
    assert shown["security"]["admin_pin_hash"] == "***"
    assert shown["fingerprint"]["password"] == "***"
    assert pin_hash.split("$")[-1] not in config.to_toml(shown)


def test_replace_validates():
    settings = config.build([])
    assert settings.replace(sync={"batch_size": 7}).sync.batch_size == 7
    with pytest.raises(ConfigError, match="sync.batch_size"):
        settings.replace(sync={"batch_size": 0})


def test_example_file_is_current_and_valid():
    from conftest import ROOT

    example = ROOT / "docs" / "kiosk.example.toml"
    assert example.read_text() == config.example_toml(), "regenerate: kiosk config example > docs/kiosk.example.toml"
    settings = config.check_file(example)
    assert config.as_dict(settings, mask_secrets=False) == config.as_dict(config.build([]), mask_secrets=False)
