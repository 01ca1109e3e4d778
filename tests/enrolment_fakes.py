"""Test doubles for the enrolment and admin flows, on top of ``flow_fakes.RecordingPorts``."""

import dataclasses

from kiosk.flows.ports import PinCheck

from flow_fakes import RecordingPorts

# two fingerprint templates as the sensor would hand them over (512 bytes each)
T1, T2 = b"\x03\x01" + bytes(510), b"\x03\x02" + bytes(510)


class EnrolPorts(RecordingPorts):
    """RecordingPorts whose enrol takes the PIN too, and whose saving or deleting can be made to fail."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.fail_enrol = None
        self.fail_delete = None

    def enrol(self, *, person_id, name, role, faces, fingers, pin=None, voice=None):
        if self.fail_enrol is not None:
            raise self.fail_enrol
        result = super().enrol(person_id=person_id, name=name, role=role, faces=faces, fingers=fingers)
        self.enrolled[-1]["pin"] = pin
        self.enrolled[-1]["voice"] = voice
        return dataclasses.replace(result, voices=int(voice is not None))

    def delete_person(self, person_id):
        if self.fail_delete is not None:
            raise self.fail_delete
        super().delete_person(person_id)


class AdminPorts(EnrolPorts):
    """Pages answer from a dict; an export can be made to fail."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.fail_page = None
        self.no_admin_pin = False

    def admin_page(self, page, **args):
        if self.fail_page is not None:
            raise self.fail_page
        if page == "outbox":
            return 7  # not a dict: still shown, not a crash
        return super().admin_page(page, **args)

    def check_admin_pin(self, pin):
        if self.no_admin_pin:
            return PinCheck("no_pin")
        return super().check_admin_pin(pin)
