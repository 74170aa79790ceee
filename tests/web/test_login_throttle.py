"""Login throttling (issue 14, hole 3): floods are refused per client address and per username
by Flask-Limiter; repeated failures lock the username for a growing time, the same way whether
or not the user exists; both are audited; the user is told when to try again."""

import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from portal import clock
from portal.audit.models import AuditEvent
from portal.extensions import db, limiter
from portal.users import throttle
from tests.conftest import PASSWORD


@pytest.fixture
def limits(app, monkeypatch):
    limiter.reset()
    throttle._audited.clear()
    monkeypatch.setitem(app.config, "SETTLE_LOGIN_LIMIT_ADDRESS", "30 per minute")
    monkeypatch.setitem(app.config, "SETTLE_LOGIN_LIMIT_USERNAME", "1000 per minute")
    yield app.config
    limiter.reset()


def attempt(client, username, password="wrong password!"):
    return client.post("/login", data={"username": username, "password": password})


def actions(name):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == name)).all()


def test_fifty_wrong_passwords_from_one_address_are_not_all_answered(client, make_user, limits):
    make_user("clerk")
    statuses = [attempt(client, f"user{n}").status_code for n in range(50)]
    assert statuses[:30] == [401] * 30
    assert set(statuses[30:]) == {429}
    refused = attempt(client, "clerk", PASSWORD)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) <= 60
    assert "Too many login attempts from here. Try again in 1 minute" in refused.get_data(
        as_text=True
    )
    assert len(actions("login.throttled")) == 1  # a flood is one event a minute, not 20 rows


def test_one_username_tried_from_many_places_is_limited_too(client, make_user, limits):
    limits["SETTLE_LOGIN_LIMIT_ADDRESS"] = "1000 per minute"
    limits["SETTLE_LOGIN_LIMIT_USERNAME"] = "3 per minute"
    make_user("clerk")
    for n in range(3):
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{n}"
        assert attempt(client, "Clerk", PASSWORD if n == 2 else "x" * 12).status_code in (302, 401)
        client.post("/logout")
    client.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    assert attempt(client, " clerk ").status_code == 429


def answers(client, username):
    """What the portal tells a visitor, step by step, with the name itself taken out."""
    seen = []
    for password in ["wrong 1", "wrong 2", "wrong 3", "wrong 4", "wrong 5", PASSWORD]:
        r = attempt(client, username, password)
        text = re.sub(
            r"\(at [^)]*\)|in \d+ minutes?|value=\"[^\"]*\"", "", r.get_data(as_text=True)
        )
        seen.append((r.status_code, text, r.headers.get("Retry-After")))
    return seen


def test_five_failures_lock_a_username_and_an_unknown_name_answers_alike(client, make_user, limits):
    make_user("clerk")
    known, unknown = answers(client, "clerk"), answers(client, "nobody")
    assert [s for s, *_ in known] == [401, 401, 401, 401, 429, 429]
    assert known == unknown
    assert "Too many failed logins for this username. Try again" in known[-1][1]
    assert "ask an admin to reset the password" in known[-1][1]
    locked = actions("login.locked")
    assert {e.after["username"] for e in locked} == {"clerk", "nobody"}


def test_the_lock_grows_with_each_further_failure_and_the_right_password_clears_it(
    client, make_user, limits
):
    make_user("clerk")
    start = clock.now()
    with time_machine.travel(start, tick=False) as moment:
        for _ in range(5):
            attempt(client, "clerk")
        assert throttle.locked_until("clerk") == start + timedelta(minutes=1)
        moment.shift(timedelta(seconds=61))
        limiter.reset()
        attempt(client, "clerk")  # the sixth failure in a row
        assert throttle.locked_until("clerk") == clock.now() + timedelta(minutes=2)
        moment.shift(timedelta(minutes=2, seconds=1))
        limiter.reset()
        assert attempt(client, "clerk", PASSWORD).status_code == 302
        client.post("/logout")
        assert attempt(client, "clerk").status_code == 401  # the count started again


def test_the_longest_lock_is_an_hour():
    assert [throttle.lock_for(n) for n in (4, 5, 6, 7)] == [
        None, timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)
    ]  # fmt: skip
    assert throttle.lock_for(40) == timedelta(hours=1)


def test_an_admins_password_reset_unlocks_the_account(client, login, make_user, limits):
    clerk = make_user("clerk")
    for _ in range(5):
        attempt(client, "clerk")
    assert throttle.locked_until("clerk") is not None
    login(make_user("admin"))
    client.post(f"/users/{clerk.id}/reset-password")
    assert throttle.locked_until("clerk") is None
