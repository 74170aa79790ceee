"""Where background work executes, chosen here and nowhere else; it knows no domain concept.

- With SETTLE_BROKER_URL: Celery workers (portal/tasks.py) take each task by its name from the
  broker. What the broker did not take is sent again by the run sweep (runs/dispatch.py).
- Without: a background thread of the portal ("thread", the embedded default) or the caller
  ("inline": tests, `flask settle run`) runs the same function.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app

from portal.extensions import db

log = logging.getLogger(__name__)


def uses_broker(app: Flask | None = None) -> bool:
    return bool((app or current_app).config["SETTLE_BROKER_URL"])


def executor(app: Flask, *, here: bool = False) -> str:
    """Where background work runs, chosen here and nowhere else: "broker" (Celery workers),
    "inline" (the caller's thread: tests, and `flask settle run`, which asks `here`) or "thread"
    (a thread of this process: the embedded default)."""
    if uses_broker(app):
        return "broker"
    if here or app.config["SETTLE_JOBS"] == "inline":
        return "inline"
    return "thread"


def in_background(app: Flask, where: str, name: str, work, *args) -> None:
    """Call `work(*args)` without a broker: here ("inline") or in a daemon thread, either way in an
    app context of its own whose database session is removed at the end."""

    def in_context() -> None:
        with app.app_context():
            try:
                work(*args)
            finally:
                db.session.remove()

    if where == "inline":
        in_context()
        return
    thread = threading.Thread(target=in_context, name=name, daemon=True)
    thread.start()
    app.extensions.setdefault("settle_threads", []).append(thread)


def send(task: str, *args) -> None:
    """Hand a task to the Celery workers by its name; raises when the broker does not take it."""
    current_app.extensions["celery"].send_task(task, args, retry=False)


def wait_for_threads(app: Flask, timeout: float = 60.0) -> None:
    """Join the background threads started so far (tests)."""
    for thread in list(app.extensions.get("settle_threads", [])):
        thread.join(timeout)


def broker_display(app: Flask | None = None) -> str:
    """The broker's address without its password."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url((app or current_app).config["SETTLE_BROKER_URL"] or "")


_health: dict = {}


def broker_problem(app: Flask | None = None, *, fresh: bool = False) -> str | None:
    """Why the configured broker cannot take runs now, or None (checked at most every 15 s)."""
    app = app or current_app._get_current_object()
    if not uses_broker(app):
        return None
    url = app.config["SETTLE_BROKER_URL"]
    cached = _health.get(url)
    if cached and not fresh and time.monotonic() - cached[0] < 15:
        return cached[1]
    problem = None
    try:
        with app.extensions["celery"].connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        problem = (
            f"The broker {broker_display(app)} does not answer ({exc.__class__.__name__}). "
            "New payment runs stay Queued until it is back."
        )
    _health[url] = (time.monotonic(), problem)
    return problem
