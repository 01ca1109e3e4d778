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
SERVICE_FINGERS = ("FVC2002_DB1_B/102", "FVC2002_DB1_B/105", "FVC2002_DB1_B/106", "FVC2002_DB1_B/108")
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
        self.down = None        # (finger name, attempt) on the glass now
        self.fingers = {}       # the flow's finger name -> the simulated finger put down for it
        self.assisted = []      # what went the assisted way, and why (printed)
        self.guidance = []      # why captures were refused on the way (printed with it)

    def __call__(self, screen, data):
        if screen == "service_face" and self.follower is not None and data.get("challenge"):
            self.follower("face_challenge", {"challenge": data["challenge"], "stage": None})
        elif screen == "service_finger":
            self._finger(data)
        elif screen == "service_assisted":
            self.assisted.append(f"{data.get('finger') or data.get('kind')} ({data.get('reason')}; refused "
                                 f"captures: {', '.join(self.guidance) or 'none'})")
            self.guidance = []
            self.host.post("continue_requested")

    def _finger(self, data):
        """Place the finger asked for once (a new impression after a refused capture); lift when asked."""
        sensor = self.sims.sensor
        name, action = data.get("finger"), data.get("action")
        if data.get("guidance"):
            self.guidance.append(data["guidance"])
            self.down = None            # a refused capture: the person lifts and presses again
        if action == "place_finger" and self.down != (name, data.get("attempt")):
            finger = self.fingers.setdefault(name, SERVICE_FINGERS[len(self.fingers) % len(SERVICE_FINGERS)])
            self.placed[finger] = self.placed.get(finger, 0) + 1
            sensor.lift_finger()
            sensor.place_finger(finger, (self.placed[finger] - 1) % 8 + 1)
            self.down = (name, data.get("attempt"))
        elif action == "lift_finger":
            sensor.lift_finger()
            self.down = None


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

    def act(event, screens, *, timeout_s=20.0, what, **data):
        """Do what the widget would post, then wait for the flow's next screen."""
        since = len(demo.screens)
        host.post(event, **data)
        return demo.wait_for(screens, timeout_s=timeout_s, what=what, since=since)

    demo.actor = citizen
    host.post("cancelled")
    try:
        act(f"{service}_requested", ("service_id",), what="the service's first screen")
        if service == "account":
            act("id_entered", ("service_mobile",), national_id=citizen.national_id, what="the mobile screen")
            act("mobile_entered", ("service_email",), mobile="0551234567", what="the e-mail screen")
            act("email_entered", ("service_credentials",), email="carol@example.org", what="username and password")
            act("credentials_entered", ("service_language",), username="CarolCole77", password=PASSWORD,
                confirmation=PASSWORD, what="the language screen")
            demo.say("ID, mobile, e-mail, username and password (every rule met), language")
            _code(demo, act, server, "language_chosen", {"language": "ar"}, ("service_terms",))
            last = "terms_accepted"
        elif service == "mobile_change":
            act("id_entered", ("service_consent",), national_id=citizen.national_id, what="the consent screen")
            screen, data = act("consent_given", ("service_verify", "service_face"), what="face or finger")
            since = len(demo.screens)
            if screen == "service_verify":  # the kiosk has a sensor: face or finger; the demo shows the face
                demo.say(f"the kiosk offers {' or '.join(data['methods'])}; the citizen chooses the face")
                host.post("method_chosen", method="face")
            sims.player.play(person)
            demo.say(f"{person.person} stands at the camera and turns as the screen asks")
            screen, _ = demo.wait_for(("service_mobile", "service_assisted", "service_verify") + ENDS, since=since,
                                      timeout_s=60, what="the face verified by the server")
            if screen != "service_mobile":
                raise KioskError(f"mobile change: the face was not verified ({screen})")
            sims.player.play("no_face")
            demo.say("face captured (liveness passed), sealed, and matched by the server against the record")
            _code(demo, act, server, "mobile_entered", {"mobile": "0559876543"}, ("service_confirm",))
            last = "confirmed"
        else:
            _code(demo, act, server, "id_entered", {"national_id": citizen.national_id}, ("service_consent",))
            since = len(demo.screens)
            host.post("consent_given")
            if person is not None:
                sims.player.play(person)
                demo.say(f"{person.person} stands at the camera and turns as the screen asks")
            wanted = ("service_pin",) if service == "activation" else ("service_confirm",)
            screen, _ = demo.wait_for(wanted + ENDS, since=since, timeout_s=120, what="the face and fingers")
            sims.sensor.lift_finger()
            sims.player.play("no_face")
            demo.say(f"{len(citizen.fingers)} fingers on the sensor, captured and sealed"
                     + (f"; assisted path: {', '.join(citizen.assisted)}" if citizen.assisted else ""))
            if screen == "service_pin":
                act("pin_entered", ("service_pin",), pin=PIN, what="the PIN again")
                act("pin_entered", ("service_confirm",), pin=PIN, what="the last check")
                demo.say("a 6-digit PIN, typed twice")
            last = "confirmed"
        screen, data = act(last, ENDS, what="the request stored")
        if screen != "service_done":
            raise KioskError(f"{service}: {screen} {data}")
        host.post("cancelled")
        return data["reference"]
    finally:
        demo.actor = None
        sims.sensor.lift_finger()
        sims.player.play("no_face")


def _code(demo, act, server, event, data, after):
    """``event`` leads to the code screen; the citizen reads the SMS and types the code; ``after`` follows."""
    from kiosk.errors import KioskError

    screen, shown = act(event, ("service_code",) + ENDS, what="the one-time code sent", **data)
    if screen != "service_code":
        raise KioskError(f"no code: {screen} {shown}")
    act("code_entered", after, code=server.last_code(), what="the code accepted")
    demo.say(f"one-time code sent by SMS to {shown['phone_hint']} (the simulator's SMS log), typed in")
