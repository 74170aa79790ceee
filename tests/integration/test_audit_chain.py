"""A trail you can trust (issue 14, proofs): every audit event is sealed into a hash chain
moments after its commit; `flask settle audit verify` finds an event changed, one removed from
the middle and the newest ones cut off; on PostgreSQL a trigger refuses UPDATE and DELETE."""

import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from portal.audit import chain
from portal.audit import service as audit
from portal.audit.models import AuditEvent
from portal.extensions import db

pytestmark = pytest.mark.integration


@pytest.fixture
def trail(make_invoice, run_for, make_user):
    make_user("supervisor")
    for token in ("tok_approve", "tok_decline", "tok_review"):
        make_invoice(token=token)
    run_for()
    ids = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
    assert len(ids) >= 5
    wait_until_sealed()
    return ids


def wait_until_sealed(seconds: float = 10) -> None:
    """The sealer thread seals a moment after each commit."""
    give_up = time.monotonic() + seconds
    while db.session.scalar(select(func.count()).where(AuditEvent.seq.is_(None))):
        db.session.rollback()
        assert time.monotonic() < give_up, "events left unsealed"
        time.sleep(0.05)
    db.session.rollback()


def postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def tamper(sql: str, **params) -> None:
    """Change the table behind Settle's back, as someone with the database's password would
    (on PostgreSQL past the trigger, as its owner could)."""
    with db.engine.begin() as connection:
        if postgres():
            connection.execute(
                text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            )
        connection.execute(text(sql), params)
        if postgres():
            connection.execute(
                text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
            )


def test_every_event_is_sealed_after_its_commit_and_the_chain_verifies(app, trail):
    seqs = db.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.id)).all()
    assert seqs == list(range(1, len(trail) + 1))
    verdict = chain.verify()
    assert verdict.intact and verdict.events == len(trail)
    result = app.test_cli_runner().invoke(args=["settle", "audit", "verify"])
    assert result.exit_code == 0, result.output
    assert f"{len(trail)} event(s) checked: the chain is intact" in result.output


def test_a_changed_event_is_found(app, trail):
    tamper("UPDATE audit_events SET note = 'nothing happened' WHERE id = :id", id=trail[2])
    result = app.test_cli_runner().invoke(args=["settle", "audit", "verify"])
    assert result.exit_code == 1
    assert f"Event #{trail[2]} was changed after it was written" in result.output


def test_an_event_removed_from_the_middle_is_found(trail):
    tamper("DELETE FROM audit_events WHERE id = :id", id=trail[2])
    problems = chain.verify().problems
    assert any(f"removed before #{trail[3]}" in p for p in problems), problems


def test_the_newest_events_cut_off_are_found(trail):
    tamper("DELETE FROM audit_events WHERE id >= :id", id=trail[-2])
    problems = chain.verify().problems
    assert any("the newest were removed" in p for p in problems), problems


def test_events_written_at_once_by_many_threads_make_one_unbroken_chain(app, make_user):
    user = make_user("clerk")

    def write(n):
        with app.app_context():
            for _ in range(15):
                audit.record("user.logged_in", user, actor=user, note=f"thread {n}")
                db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until_sealed()
    verdict = chain.verify()
    assert verdict.intact, verdict.problems
    assert verdict.events == db.session.scalar(select(func.count()).select_from(AuditEvent))


def test_on_postgresql_a_trigger_refuses_update_and_delete(trail):
    if not postgres():
        pytest.skip("the trigger is PostgreSQL's")
    for sql in ("UPDATE audit_events SET note = 'x' WHERE id = :id",
                "DELETE FROM audit_events WHERE id = :id",
                "UPDATE audit_events SET hash = 'x' WHERE id = :id"):  # fmt: skip
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as connection:
            connection.execute(text(sql), {"id": trail[0]})
    assert chain.verify().intact
