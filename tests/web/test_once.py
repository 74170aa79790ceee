"""One-time form tokens: showing a form writes nothing; a token is spent once, only by the user
and for the action it was issued for."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import once
from portal.errors import NotAllowed
from portal.extensions import db
from portal.once import FormToken


def count() -> int:
    return db.session.scalar(select(func.count(FormToken.id)))


def test_showing_a_form_writes_nothing_and_its_token_is_spent_once(app, make_user):
    clerk, other = make_user("clerk", "clerk1"), make_user("clerk", "clerk2")
    with app.test_request_context():
        token = once.issue(clerk, "refund-unlock:7")
        assert count() == 0  # issuing is a signature, not a row
        with pytest.raises(NotAllowed, match="not issued to you"):
            once.spend(token, other, "refund-unlock:7")
        with pytest.raises(NotAllowed, match="not issued to you"):
            once.spend(token, clerk, "refund-unlock:8")
        with pytest.raises(NotAllowed, match="not issued to you"):
            once.spend(token.split(".")[0] + ".forged", clerk, "refund-unlock:7")
        once.spend(token, clerk, "refund-unlock:7")
        with pytest.raises(NotAllowed, match="already submitted at"):
            once.spend(token, clerk, "refund-unlock:7")
        assert count() == 1


def test_a_page_with_one_time_tokens_commits_nothing_on_get(client, login, make_user, make_invoice,
                                                             run_for):  # fmt: skip
    make_invoice(token="tok_approve")
    run_for()
    login(make_user("supervisor"))
    assert client.get("/payments/1").status_code == 200
    assert count() == 0


def test_a_token_expires_and_its_issue_time_cannot_be_moved(app, make_user):
    import time_machine

    from portal import clock

    clerk = make_user("clerk")
    with app.test_request_context():
        start = clock.now()
        with time_machine.travel(start, tick=False) as moment:
            token = once.issue(clerk, "manual-payment:3")
            nonce, issued, signature = token.split(".")
            later = f"{nonce}.{int(issued) + 86400}.{signature}"
            with pytest.raises(NotAllowed, match="not issued to you"):
                once.spend(later, clerk, "manual-payment:3")
            moment.shift(once.LIFETIME + timedelta(seconds=1))
            with pytest.raises(NotAllowed, match="shown more than 12 hours ago"):
                once.spend(token, clerk, "manual-payment:3")
            assert count() == 0


def test_the_janitor_forgets_spent_tokens_once_they_are_too_old_to_spend(app, make_user):
    from portal import clock
    from portal.sweeps.janitor import run_janitor

    clerk = make_user("clerk")
    with app.test_request_context():
        once.spend(once.issue(clerk, "allocate:1"), clerk, "allocate:1")
        run_janitor()
        assert count() == 1  # fresh: kept, so that a repeat is still refused
        run_janitor(clock.now() + once.LIFETIME + timedelta(minutes=6))
        assert count() == 0
