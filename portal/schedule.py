"""Settle's periodic work, in one list: what runs, how often. Celery beat reads it with a broker;
without one, `flask settle serve` runs the same jobs at the same cadences in threads of its own.

Each job is one pass that is safe to run at any time and from any process (every step it takes
is a conditional UPDATE), and returns the lines worth logging.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from portal.extensions import db
from portal.runs import dispatch
from portal.sweeps.janitor import run_janitor
from portal.sweeps.recovery import recover

log = logging.getLogger(__name__)


def _dispatch() -> list[str]:
    return dispatch.sweep_runs().lines


def _janitor() -> list[str]:
    report = run_janitor()
    return report.looked_up + report.voided


def _recover() -> list[str]:
    report = recover()
    return report.transactions + [f"payment run #{r}: resumed" for r in report.runs]


@dataclass(frozen=True)
class Periodic:
    task: str  # the Celery task's name (portal/tasks.py)
    every: float  # seconds between passes
    what: str
    run: Callable[[], list[str]]


JOBS: tuple[Periodic, ...] = (
    Periodic(
        "settle.dispatch", 30.0, "hand again the runs and chunks no executor holds", _dispatch
    ),
    Periodic("settle.janitor", 60.0, "ask the gateways about locked charges due a check", _janitor),
    Periodic("settle.recover", 300.0, "sort calls left Pending and runs left orphaned", _recover),
)


def job(task: str) -> Periodic:
    return next(j for j in JOBS if j.task == task)


def run_pass(app: Flask, periodic: Periodic) -> None:
    """One pass of a job in its own app context; a failure is logged, never raised."""
    with app.app_context():
        try:
            for line in periodic.run():
                log.info("%s: %s", periodic.task, line)
        except Exception:
            log.exception("%s: the pass failed", periodic.task)
            db.session.rollback()
        finally:
            db.session.remove()


def beat_schedule() -> dict:
    """Celery beat's schedule; a pass that waited past its next turn is dropped (expires)."""
    return {
        j.task.replace(".", "-"): {
            "task": j.task,
            "schedule": j.every,
            "options": {"expires": j.every},
        }
        for j in JOBS
    }


def start_embedded(app: Flask, stopping: threading.Event | None = None) -> list[threading.Thread]:
    """Every job, each in a daemon thread, at its cadence (first pass after one period: the
    start-up recovery, which may treat every Pending call as orphaned, is apart)."""
    stopping = stopping or threading.Event()
    threads = []
    for periodic in JOBS:

        def loop(periodic=periodic):
            while not stopping.wait(periodic.every):
                run_pass(app, periodic)

        thread = threading.Thread(target=loop, name=periodic.task, daemon=True)
        thread.start()
        threads.append(thread)
    return threads
