"""Server-side sessions (issue 14, hole 4): a copied cookie dies with logout, a password change,
a role change, deactivation or an admin's End; login rotates the session and its CSRF token."""

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import UserSession
from portal.extensions import db
from tests.conftest import PASSWORD


def copy_of(app, client):
    """Another browser holding a copy of `client`'s session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def logged_in(client) -> bool:
    return client.get("/runs/").status_code == 200


def test_a_cookie_copied_before_logout_does_not_work_after_it(app, client, login, make_user):
    login(make_user("clerk"))
    thief = copy_of(app, client)
    assert logged_in(thief)
    client.post("/logout")
    assert not logged_in(thief)
    assert not logged_in(client)
    (row,) = db.session.scalars(select(UserSession)).all()
    assert row.ended_reason == "logged out"


def test_login_rotates_the_session_and_the_csrf_token(app, client, make_user):
    make_user("clerk")
    client.get("/login")
    with client.session_transaction() as before:
        before["csrf_token"] = "fixed-by-an-attacker"
        before["planted"] = "x"
    fixed = copy_of(app, client)
    client.post("/login", data={"username": "clerk", "password": PASSWORD})
    with client.session_transaction() as after:
        assert "planted" not in after
        assert after.get("csrf_token") != "fixed-by-an-attacker"
    assert logged_in(client)
    assert not logged_in(fixed)


def test_a_password_change_ends_every_other_session_but_this_one(app, client, login, make_user):
    login(make_user("clerk"))
    other = app.test_client()
    other.post("/login", data={"username": "clerk", "password": PASSWORD})
    thief = copy_of(app, client)
    new = "a much longer new passphrase"
    response = client.post(
        "/account/password", data={"current": PASSWORD, "new": new, "again": new}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert logged_in(client)
    assert not logged_in(other)
    assert logged_in(thief)  # a copy of *this* browser's cookie is this browser's session


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"role": "auditor", "active": "y"}, "role changed"), ({"role": "clerk"}, "deactivated")],
)
def test_a_role_change_or_deactivation_ends_every_session(
    app, client, login, make_user, change, reason
):
    clerk = make_user("clerk")
    theirs = app.test_client()
    theirs.post("/login", data={"username": "clerk", "password": PASSWORD})
    assert logged_in(theirs)
    login(make_user("admin"))
    assert client.post(f"/users/{clerk.id}", data=change).status_code == 302
    assert not logged_in(theirs)
    assert (
        db.session.scalar(select(UserSession.ended_reason).where(UserSession.user_id == clerk.id))
        == reason
    )


def test_a_password_reset_ends_every_session(app, client, login, make_user):
    clerk = make_user("clerk")
    theirs = app.test_client()
    theirs.post("/login", data={"username": "clerk", "password": PASSWORD})
    login(make_user("admin"))
    client.post(f"/users/{clerk.id}/reset-password")
    assert not logged_in(theirs)


def test_an_admin_sees_open_sessions_and_ends_one_or_all(app, client, login, make_user):
    clerk = make_user("clerk")
    browsers = []
    for agent in ("Firefox at the desk", "Chromium at home"):
        b = app.test_client()
        b.environ_base["HTTP_USER_AGENT"] = agent
        b.post("/login", data={"username": "clerk", "password": PASSWORD})
        browsers.append(b)
    login(make_user("admin"))
    page = client.get(f"/users/{clerk.id}").get_data(as_text=True)
    assert "Firefox at the desk" in page and "Chromium at home" in page
    assert "End all 2 sessions" in page
    first = db.session.scalar(
        select(UserSession.id).where(UserSession.user_agent == "Firefox at the desk")
    )
    done = client.post(f"/users/{clerk.id}/sessions/end", data={"session_id": first},
                       follow_redirects=True)  # fmt: skip
    assert "1 session(s) of clerk ended" in done.get_data(as_text=True)
    assert not logged_in(browsers[0]) and logged_in(browsers[1])
    again = client.post(f"/users/{clerk.id}/sessions/end", data={"session_id": first},
                        follow_redirects=True)  # fmt: skip
    assert "not open any more" in again.get_data(as_text=True)
    client.post(f"/users/{clerk.id}/sessions/end")
    assert not logged_in(browsers[1])
    ended = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "user.sessions_ended")
    ).all()
    assert [e.after["sessions"] for e in ended] == [1, 1]
    assert all(e.actor_id == 2 for e in ended)


@pytest.mark.parametrize("session_id", ["99", "99999999999999999999999", "x"])
def test_ending_an_unknown_session_is_a_404(client, login, make_user, session_id):
    clerk = make_user("clerk")
    login(make_user("admin"))
    response = client.post(f"/users/{clerk.id}/sessions/end", data={"session_id": session_id})
    assert response.status_code == 404


def test_only_an_admin_ends_sessions(app, client, login, make_user):
    clerk = make_user("clerk")
    login(make_user("supervisor"))
    assert client.post(f"/users/{clerk.id}/sessions/end").status_code == 403
