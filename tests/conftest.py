"""Shared test setup: offscreen Qt, opt-in hardware tests, paths to the shared datasets."""

import os
from pathlib import Path

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # unconditionally: tests never open a real window

ROOT = Path(__file__).resolve().parent.parent
DATASETS = (ROOT.parent / "shared" / "datasets").resolve()


def pytest_collection_modifyitems(config, items):
    if os.environ.get("KIOSK_HARDWARE_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="real hardware: set KIOSK_HARDWARE_TESTS=1 to run")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def datasets():
    """The shared real-data folder; tests that need it skip with a clear message when absent."""
    if not DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {DATASETS}")
    return DATASETS


@pytest.fixture(scope="session")
def lfw(datasets):
    """The LFW deep-funneled photo folders (one per person)."""
    return datasets / "faces" / "lfw"


@pytest.fixture
def server(tmp_path):
    """The central server simulator on loopback (plain HTTP, a database of its own); a test file may define its own."""
    from kiosk_sim.server import ServerSimulator

    with ServerSimulator(db_path=tmp_path / "server.db") as sim:
        yield sim
