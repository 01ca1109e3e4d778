"""Run the independent ADMS server (PyPI django-fingerprint-attendance) on 127.0.0.1 for interop tests.

Usage: python fpa_server.py DB_PATH [--token-required]. Prints ``PORT <n>`` once it listens.
Besides the package's own /iclock/... endpoints (mounted exactly as its README says), a few
/control/... JSON views let the test act as the HR administrator through the package's own
service functions: approve a device, set its time zone, reset its upload cursor, queue
commands, and read back punches and command states. Nothing of the package is changed.
"""

import json
import sys
from datetime import datetime, timedelta
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.http import JsonResponse
from django.urls import include, path

DB_PATH = sys.argv[1]
TOKEN_REQUIRED = "--token-required" in sys.argv

settings.configure(
    DEBUG=False,
    SECRET_KEY="interop-tests-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework",
                    "fingerprint_attendance"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB_PATH}},
    USE_TZ=True,
    TIME_ZONE="UTC",
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    FINGERPRINT_ATTENDANCE={"TEMPLATE_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
                            "ADMS_DEVICE_TOKEN_REQUIRED": TOKEN_REQUIRED,
                            "ADMS_RATE_LIMIT": "100000/m",
                            # retries of failed commands come at the next poll, so a test sees them all
                            "COMMAND_RETRY_BACKOFF": timedelta(0), "COMMAND_MAX_RETRIES": 2},
    LOGGING_CONFIG=None,
)
django.setup()


def _device(request):
    from fingerprint_attendance.models import Device

    return Device.objects.get(serial_number=request.GET["SN"])


def devices(request):
    from fingerprint_attendance.models import Device

    return JsonResponse({"devices": [{"serial": d.serial_number, "status": d.status, "attlog_stamp": d.attlog_stamp,
                                      "timezone": d.timezone} for d in Device.objects.all()]})


def approve(request):
    from fingerprint_attendance.services import devices as service

    service.approve_device(_device(request))
    return JsonResponse({"ok": True})


def set_device(request):
    """Set the device's time zone (as the HR admin would) and, optionally, its token."""
    from fingerprint_attendance.utils.security import hash_secret

    device = _device(request)
    if "tz" in request.GET:
        device.timezone = request.GET["tz"]
    if "token" in request.GET:
        device.token_hash = hash_secret(request.GET["token"])
    device.save()
    return JsonResponse({"ok": True})


def register(request):
    from fingerprint_attendance.services import devices as service

    service.register_device(request.GET["SN"], status=request.GET.get("status", "active"))
    return JsonResponse({"ok": True})


def lose_punches(request):
    """The server 'restores an old backup': every punch is gone and the cursor is reset."""
    from fingerprint_attendance.models import Punch
    from fingerprint_attendance.services import devices as service

    device = _device(request)
    Punch.objects.filter(device=device).delete()
    service.reset_upload_cursor(device)
    return JsonResponse({"ok": True})


def queue(request):
    from fingerprint_attendance.services.commands import queue_command

    body = json.loads(request.GET.get("payload", "{}"))
    command = queue_command(_device(request), request.GET["type"], body, audit=False)
    return JsonResponse({"id": command.pk})


def commands(request):
    from fingerprint_attendance.models import DeviceCommand

    return JsonResponse({"commands": [
        {"id": c.pk, "type": c.command_type, "status": c.status, "attempts": c.attempts,
         "return_code": c.return_code, "response": c.response_body}
        for c in DeviceCommand.objects.filter(device=_device(request)).order_by("pk")]})


def punches(request):
    from fingerprint_attendance.models import Punch

    return JsonResponse({"punches": [
        {"pin": p.raw_pin, "utc": p.punched_at.timestamp(), "local": p.device_local_time,
         "verify": p.verify_mode, "state": p.raw_state}
        for p in Punch.objects.filter(device=_device(request)).order_by("punched_at", "pk")]})


urlpatterns = [
    path("control/devices", devices), path("control/approve", approve), path("control/set", set_device),
    path("control/register", register), path("control/lose_punches", lose_punches),
    path("control/queue", queue), path("control/commands", commands), path("control/punches", punches),
    path("", include("fingerprint_attendance.urls")),
]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # request lines carry device tokens; the test output stays clean
        pass


def main():
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0)
    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=QuietHandler)
    print(f"PORT {server.server_port}", flush=True)
    print(f"started {datetime.now().isoformat()}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
