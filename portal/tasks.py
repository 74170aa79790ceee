"""Celery: with SETTLE_BROKER_URL set, workers anywhere execute payment runs chunk by chunk.

    celery -A wsgi.celery worker       # as many as you like, on any machine
    celery -A wsgi.celery beat         # one: the run sweep, the janitor and recovery on a schedule

The tasks call the same functions as the embedded thread (portal/runs/engine.py); each moves
state by a conditional UPDATE, so a message delivered twice does its work once.
"""

from __future__ import annotations

import logging

from celery import Celery, Task, shared_task
from celery.signals import worker_init, worker_process_init, worker_ready
from flask import Flask, current_app

from portal import schedule
from portal.extensions import db

log = logging.getLogger(__name__)


def init_celery(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                finally:
                    db.session.remove()

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=app.config["SETTLE_BROKER_URL"] or "memory://",
        task_ignore_result=True,
        # A chunk's message is acknowledged when it is done: a worker that dies mid-chunk leaves it
        # to be delivered again (and the run sweep re-sends chunks whose heartbeat stopped).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="settle",
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={"visibility_timeout": 3600, "socket_connect_timeout": 3},
        # One list of periodic jobs (portal/schedule.py), the embedded default's too.
        beat_schedule=schedule.beat_schedule(),
    )
    celery.flask_app = app
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@shared_task(name="settle.begin_run")
def begin_run_task(run_id: int) -> None:
    from portal.runs import dispatch
    from portal.runs.engine import begin_run

    dispatch.send_chunks(begin_run(run_id, current_app.config["SETTLE_RUN_CHUNK_SIZE"]))


@shared_task(name="settle.apply_import")
def apply_import_task(batch_id: int) -> None:
    from portal.imports.service import apply_in_background

    apply_in_background(batch_id)


@shared_task(name="settle.run_chunk")
def run_chunk_task(chunk_id: int) -> None:
    from portal.runs.engine import run_chunk

    run_chunk(chunk_id)


@shared_task(name="settle.dispatch")
def dispatch_task() -> None:
    for line in schedule.job("settle.dispatch").run():
        log.info(line)


@shared_task(name="settle.janitor")
def janitor_task() -> None:
    for line in schedule.job("settle.janitor").run():
        log.info(line)


@shared_task(name="settle.recover")
def recover_task() -> None:
    for line in schedule.job("settle.recover").run():
        log.info(line)


@worker_init.connect
def _refuse_without_broker(sender=None, **kwargs):
    flask_app = getattr(sender.app, "flask_app", None)
    if flask_app is not None and not flask_app.config["SETTLE_BROKER_URL"]:
        raise SystemExit("Set SETTLE_BROKER_URL (for example redis://127.0.0.1:6379/0) first.")


@worker_ready.connect
def _dispatch_at_start(sender=None, **kwargs):
    """A worker that starts sends what waited for one (runs queued while the broker was down)."""
    flask_app = getattr(sender.app, "flask_app", None)
    if flask_app is None:
        return
    with flask_app.app_context():
        try:
            from portal.runs import dispatch

            for line in dispatch.sweep_runs().lines:
                log.info(line)
        except Exception:
            log.exception("dispatch at worker start failed")
        finally:
            db.session.remove()
            db.engine.dispose()  # pool processes forked later must not share its connection


@worker_process_init.connect
def _own_connections(**kwargs):
    """A forked pool process opens its own database connections (never its parent's)."""
    from celery import current_app as celery_app

    flask_app = getattr(celery_app, "flask_app", None)
    if flask_app is not None:
        with flask_app.app_context():
            db.engine.dispose(close=False)
