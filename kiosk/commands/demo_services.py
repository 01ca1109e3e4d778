"""The headless demo's citizen services: each of the four, completed at the kiosk against the server simulator.

A scripted citizen does what each screen asks, posting the events the touchscreen's widgets post
(kiosk/ui/screens_service.py): types the ID, reads the one-time code from the simulator's SMS
log, agrees, turns the head when asked, puts fingers on the simulated sensor, chooses a PIN. The
request is then delivered by the sync worker and the server's record of it is printed.
"""

import logging

log = logging.getLogger(__name__)

# one ID per service (valid check digits), so the server's per-ID code limit is never the story
CITIZENS = {"account": "1000000016", "fingerprints": "1000000024", "activation": "1000000032",
            "mobile_change": "1000000040"}
# fingers none of the demo's employees uses (the kiosk-enrolled one has 104 and 107)
SERVICE_FINGERS = ("FVC2002_DB1_B/101", "FVC2002_DB1_B/102", "FVC2002_DB1_B/103", "FVC2002_DB1_B/105")
PASSWORD = "Kiosk#Pass1"
PIN = "902468"
ENDS = ("service_done", "service_refused", "service_offline")


class Citizen:
    """Plays the citizen: answers each service screen as the widgets would, sensor and camera included."""

    def __init__(self, demo, host, sims, service, *, person=None):
        from kiosk_sim.scripted_person import PromptFollower

        self.host, self.sims, self.service = host, sims, service
        self.national_id = CITIZENS[service]
        self.follower = PromptFollower(person) if person is not None else None
        self.placed = {}        # finger -> impressions so far
        self.fingers = {}       # the flow's finger name -> the simulated finger put down for it
        self.assisted = 0

    def __call__(self, screen, data):
        if screen == "service_face" and self.follower is not None and data.get("challenge"):
            self.follower("face_challenge", {"challenge": data["challenge"], "stage": None})
        elif screen == "service_finger":
            self._finger(data)
        elif screen == "service_assisted":
            self.assisted += 1
            self.host.post("continue_requested")

    def _finger(self, data):
        sensor = self.sims.sensor
        if data.get("action") == "place_finger":
            name = data.get("finger")
            finger = self.fingers.setdefault(name, SERVICE_FINGERS[len(self.fingers) % len(SERVICE_FINGERS)])
            self.placed[finger] = self.placed.get(finger, 0) + 1
            sensor.lift_finger()
            sensor.place_finger(finger, min(self.placed[finger], 8))
        elif data.get("action") == "lift_finger":
            sensor.lift_finger()


def run_services(demo, kiosk, sims, server, worker, *, person_for_face, face_on_record):
    """Each citizen service completed at the kiosk; returns {service: reference} of those the server applied."""
    done = {}
    host = kiosk.host
    for service in ("account", "fingerprints", "activation", "mobile_change"):
        demo.step(f"Citizen service: {service.replace('_', ' ')} (through the service flow, against the server)")
        person = person_for_face() if service in ("activation", "mobile_change") else None
        citizen = Citizen(demo, host, sims, service, person=person)
        if service == "mobile_change":
            server.enrol_citizen(citizen.national_id, face=face_on_record)
            demo.say("the citizen's face is on record at the server; the old phone is lost")
        reference = _one(demo, host, sims, server, citizen, person)
        demo.say(f"DONE {service}: reference {reference}; the request is sealed in the outbox")
        worker.run_once()
        [record] = [h for h in server.service_history(citizen.national_id) if h["reference"] == reference]
        demo.say(f"server applied it: {record['service']} for ID {citizen.national_id[:1]}*******"
                 f"{citizen.national_id[-2:]}; {_detail(record)}")
        done[service] = reference
    return done


def _detail(record):
    detail = record.get("detail") or {}
    captured = detail.get("captured")
    return f"captured {', '.join(captured)}" if captured else "nothing biometric"


def _one(demo, host, sims, server, citizen, person):
    from kiosk.errors import KioskError

    service = citizen.service
    demo.actor = citizen
    host.post("cancelled")
    host.post(f"{service}_requested")
    try:
        demo.wait_for(("service_id",), what="the service's first screen")
        host.post("id_entered", national_id=citizen.national_id)
        if service == "account":
            demo.wait_for(("service_mobile",), what="the mobile screen")
            host.post("mobile_entered", mobile="0551234567")
            demo.wait_for(("service_email",), what="the e-mail screen")
            host.post("email_entered", email="carol@example.org")
            demo.wait_for(("service_credentials",), what="username and password")
            host.post("credentials_entered", username="CarolCole77", password=PASSWORD, confirmation=PASSWORD)
            demo.wait_for(("service_language",), what="the language screen")
            host.post("language_chosen", language="ar")
            demo.say("ID, mobile, e-mail, username and password (every rule met), language")
            _code(demo, host, server)
            demo.wait_for(("service_terms",), what="the terms")
            host.post("terms_accepted")
        else:
            if service != "mobile_change":
                _code(demo, host, server)
            demo.wait_for(("service_consent",), what="the consent screen")
            host.post("consent_given")
            if person is not None:
                sims.player.play(person)
                demo.say(f"{person.person} stands at the camera and turns as the screen asks")
            if service == "mobile_change":
                screen, data = demo.wait_for(("service_mobile", "service_assisted", "service_verify") + ENDS,
                                             timeout_s=60, what="the face verified by the server")
                if screen != "service_mobile":
                    raise KioskError(f"mobile change: the face was not verified ({screen})")
                sims.player.play("no_face")
                demo.say("face captured (liveness passed), sealed, and matched by the server against the record")
                host.post("mobile_entered", mobile="0559876543")
                _code(demo, host, server)
            else:
                wanted = ("service_pin",) if service == "activation" else ("service_confirm",)
                demo.wait_for(wanted + ENDS, timeout_s=120, what="the face and fingers")
                sims.sensor.lift_finger()
                sims.player.play("no_face")
                demo.say(f"{len(citizen.fingers)} fingers captured on the sensor and sealed"
                         + (f"; {citizen.assisted} capture(s) went the assisted way" if citizen.assisted else ""))
            if service == "activation":
                host.post("pin_entered", pin=PIN)
                host.post("pin_entered", pin=PIN)
                demo.say("a 6-digit PIN, typed twice")
            demo.wait_for(("service_confirm",), what="the last check")
            host.post("confirmed")
        screen, data = demo.wait_for(ENDS, what="the request stored")
        if screen != "service_done":
            raise KioskError(f"{service}: {screen} {data}")
        host.post("cancelled")
        return data["reference"]
    finally:
        demo.actor = None
        sims.sensor.lift_finger()
        sims.player.play("no_face")


def _code(demo, host, server):
    from kiosk.errors import KioskError

    screen, data = demo.wait_for(("service_code",) + ENDS, what="the one-time code sent")
    if screen != "service_code":
        raise KioskError(f"no code: {screen} {data}")
    host.post("code_entered", code=server.last_code())
    demo.say(f"one-time code sent by SMS to {data['phone_hint']} (the simulator's SMS log), typed in")
