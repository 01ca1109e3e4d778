"""`kiosk bench idle`: the appliance at rest with people enrolled, its CPU and memory read from /proc."""

import json

import pytest

from kiosk import cli
from kiosk.bench import idle


def test_enrol_stores_a_sealed_template_per_person(tmp_path):
    from kiosk.storage import db, people, seal

    idle.enrol(tmp_path / "data", tmp_path / "data.key", 25)
    database = db.open_db(tmp_path / "data" / "kiosk.db")
    key = seal.DataKey.load(tmp_path / "data.key")
    templates = people.face_templates(database, key, idle.MODEL_ID)
    assert len(templates) == 25 and len({p for p, _ in templates}) == 25
    assert all(v.shape == (128,) for _, v in templates)


@pytest.mark.slow
def test_bench_idle_reports_cpu_memory_and_the_target(capsys):
    assert cli.main(["bench", "idle", "--people", "200", "--seconds", "2", "--warmup-s", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["people"] == 200 and figures["seconds"] >= 2
    assert 0 <= figures["cpu_percent"] <= 200 and 50 < figures["rss_mb"] < 2000
    assert figures["target"]["met"] == (figures["cpu_percent"] <= 10 and figures["rss_mb"] <= 250)


def test_cpu_seconds_reads_a_process_own_time_and_refuses_one_that_is_gone():
    import os
    import subprocess
    import sys
    import time

    from kiosk_sim import proc_stat

    spent = time.process_time()
    while time.process_time() - spent < 0.3:  # burn a few clock ticks
        pass
    assert proc_stat.cpu_seconds(os.getpid()) == pytest.approx(time.process_time(), abs=0.1)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(OSError):
        proc_stat.cpu_seconds(child.pid)  # reaped: no /proc entry
