"""The CLI mirrors the library: every command and subcommand has help, and the README names it."""

import argparse
import subprocess
import sys

import pytest
from conftest import ROOT

from kiosk import cli


def subcommands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,), sub
                yield from subcommands(sub, prefix + (name,))


def test_every_command_has_help_text():
    parser = cli.build_parser()
    found = list(subcommands(parser))
    assert len(found) >= len(cli.COMMANDS)
    for path, sub in found:
        assert sub.format_help().strip(), path
        assert (sub.description or sub.format_usage()), path


@pytest.mark.parametrize("command", cli.COMMANDS)
def test_help_runs_and_readme_documents_command(command):
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", command, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"kiosk {command}" in (ROOT / "README.md").read_text(), f"README does not mention `kiosk {command}`"


def test_errors_are_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[sync]\nbatch_size = 0\n")
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "config", "check", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "sync.batch_size" in result.stderr and "Traceback" not in result.stderr


def test_import_kiosk_has_no_side_effects():
    code = ("import sys, logging; before = set(sys.modules); import kiosk; "
            "assert not logging.getLogger().handlers; "
            "assert not any(m.startswith(('cv2', 'PyQt5', 'RPi', 'picamera2')) for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
