"""Where payment runs execute: a background thread of the portal (embedded) or the caller (inline)."""

from __future__ import annotations

import logging
import threading

from flask import Flask, current_app

from portal.extensions import db

log = logging.getLogger(__name__)


def submit_run(run_id: int) -> None:
    """Hand a committed, Queued run to the configured executor."""
    app = current_app._get_current_object()
    if app.config["SETTLE_JOBS"] == "inline":
        _execute(app, run_id)
        return
    thread = threading.Thread(
        target=_execute, args=(app, run_id), name=f"payment-run-{run_id}", daemon=True
    )
    thread.start()
    app.extensions.setdefault("settle_threads", []).append(thread)


def _execute(app: Flask, run_id: int) -> None:
    from portal.runs.service import execute_run, finish_run

    with app.app_context():
        try:
            execute_run(run_id)
        except Exception as exc:
            log.exception("payment run #%s stopped", run_id)
            db.session.rollback()
            finish_run(run_id, [f"the run stopped: {exc}"])
        finally:
            db.session.remove()


def wait_for_runs(app: Flask, timeout: float = 60.0) -> None:
    """Join the run threads started so far (tests and the CLI's --wait)."""
    for thread in list(app.extensions.get("settle_threads", [])):
        thread.join(timeout)
