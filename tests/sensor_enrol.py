"""Enrol a finger on the simulated sensor the way a person would: place and lift when the driver asks."""


def sensor_template(sim, sensor, identity):
    """The template ``sensor`` builds from ``identity``'s impressions (``sim`` places and lifts the finger)."""
    def place(step, number):
        if step == "place_finger":
            sim.place_finger(identity, number)
        elif step == "lift_finger":
            sim.lift_finger()
    template = sensor.enroll(on_step=place).template
    sim.lift_finger()
    return template
