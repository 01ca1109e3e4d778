"""Build a sync worker from the settings (used by app.py and `kiosk sync`)."""

import logging
from pathlib import Path

from kiosk.errors import ProvisioningError
from kiosk.sync import keys
from kiosk.sync.client import SyncClient
from kiosk.sync.worker import SyncWorker

log = logging.getLogger(__name__)


def build_worker(settings, database, *, clock, hooks=None, data_key=None, device_key=None, rng=None,
                 on_acknowledged=None):
    """A SyncWorker for this device; ProvisioningError if it was never registered."""
    sync = settings.sync
    if not sync.device_id:
        raise ProvisioningError("sync.device_id is empty: this kiosk is not registered with a server yet "
                                "(run `kiosk provision`)")
    key_path = Path(settings.security.device_key_file)
    if device_key is None:
        device_key = keys.load_device_key(key_path)
    if not settings.security.server_signing_key:
        raise ProvisioningError("security.server_signing_key is empty: this kiosk has no pinned server key "
                                "to check answers with (run `kiosk provision` again)")
    client = SyncClient(server_url=sync.server_url, server_key=settings.security.server_signing_key,
                        device_id=sync.device_id, device_key=device_key, ca_file=sync.ca_file,
                        timeout_s=sync.request_timeout_s, clock=clock)
    return SyncWorker(database, client, settings=sync, clock=clock, data_key=data_key, hooks=hooks, rng=rng,
                      key_path=key_path, face_model=settings.face.embedder,
                      finger_sensor=settings.fingerprint.sensor_model, on_acknowledged=on_acknowledged)
