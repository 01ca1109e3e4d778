"""app.py lets the flows' host start each citizen service, with its real ports, and go home after."""

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from kiosk import app, config
from kiosk.clock import FakeClock
from kiosk.device_ports import HeadlessScreen
from kiosk.flows.services.activation import ActivationFlow
from kiosk.flows.services.mobile_change import MobileChangeFlow
from kiosk.host import FlowHost
from kiosk.storage import db
from kiosk.sync.protocol import public_key_hex

from test_flow_host import Recording


def settings_with_key(tmp_path, key=True):
    values = {"storage": {"data_dir": str(tmp_path)}}
    if key:
        values["security"] = {"server_public_key": public_key_hex(X25519PrivateKey.generate())}
    return config.build([("test", values)])


def test_each_service_event_starts_its_flow_and_the_host_goes_home_after(tmp_path):
    clock = FakeClock()
    home = Recording()
    host = FlowHost(home, clock=clock)
    settings = settings_with_key(tmp_path)
    screen = HeadlessScreen()
    events = app.add_service_flows(host, settings, clock=clock, database=db.open_db(tmp_path / "k.db"),
                                   screen=screen, client=app.build_service_client(settings, clock=clock))
    assert events == ["activation_requested", "account_requested", "fingerprints_requested",
                      "mobile_change_requested"]
    host.post("activation_requested")
    host.step()
    assert isinstance(host.flow, ActivationFlow) and screen.current[0] == "service_id"
    assert ("cancelled", {}) in home.events  # whatever was started at home is wiped first
    host.post("id_entered", national_id="1000000008")
    host.step()
    assert screen.current[0] == "service_offline"   # not registered: no client, nothing sent
    host.post("cancelled")
    host.step()
    assert host.flow is home
    host.post("mobile_change_requested")
    host.step()
    assert isinstance(host.flow, MobileChangeFlow)
    clock.advance(settings.ui.inactivity_timeout_s + 0.1)
    host.step()
    assert host.flow is home


def test_no_services_without_the_servers_key(tmp_path):
    clock = FakeClock()
    host = FlowHost(Recording(), clock=clock)
    settings = settings_with_key(tmp_path, key=False)
    assert app.add_service_flows(host, settings, clock=clock, database=None, screen=HeadlessScreen(),
                                 client=None) == []
    assert set(host.flow_factories) == set()
