"""One list of periodic jobs: Celery beat's schedule is made from it, and the embedded default
runs the same jobs at the same cadences."""

import threading
import time

from portal import schedule


def test_beat_runs_every_job_of_the_list_at_its_cadence(app):
    beat = app.extensions["celery"].conf.beat_schedule
    assert beat == schedule.beat_schedule()
    assert {entry["task"]: entry["schedule"] for entry in beat.values()} == {
        "settle.dispatch": 30.0, "settle.janitor": 60.0, "settle.recover": 300.0}  # fmt: skip
    # Every job has its Celery task.
    from portal import tasks  # noqa: F401  (registers them)

    registered = app.extensions["celery"].tasks
    assert all(job.task in registered for job in schedule.JOBS)


def test_the_embedded_default_runs_the_jobs_without_a_broker_at_their_cadence(app, monkeypatch):
    calls = []
    jobs = (
        schedule.Periodic("t.fast", 0.05, "a fast one", lambda: calls.append("fast") or ["did"]),
        schedule.Periodic("t.broken", 0.05, "fails", lambda: 1 / 0),
    )
    monkeypatch.setattr(schedule, "JOBS", jobs)
    stopping = threading.Event()
    threads = schedule.start_embedded(app, stopping)
    time.sleep(0.4)
    stopping.set()
    for thread in threads:
        thread.join(timeout=2)
    assert [t.name for t in threads] == ["t.fast", "t.broken"]  # a failing pass does not stop it
    assert calls.count("fast") >= 2
    assert not any(t.is_alive() for t in threads)
