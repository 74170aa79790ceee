"""One-time form tokens: showing a form writes nothing; a token is spent once, only by the user
and for the action it was issued for."""

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
