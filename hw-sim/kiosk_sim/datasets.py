"""Where the simulators find the shared real-data folder (faces and fingers)."""

import os
from pathlib import Path


def datasets_dir():
    """The shared datasets folder: $KIOSK_DATASETS, else ../shared/datasets next to the repo."""
    env = os.environ.get("KIOSK_DATASETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
