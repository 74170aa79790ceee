"""Users: an admin creates them, changes roles, deactivates and resets passwords; everyone changes
their own password; passwords are long enough and not the common ones; Settle keeps an admin."""

import re

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.extensions import db
from portal.users.service import password_problem
from tests.conftest import PASSWORD

GOOD = "violet staple rhythm 42"


def user(username):
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.username == username))


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short1!", "at least 12 characters"),
        ("password1234", "most common ones"),
        ("Qwertyuiop!!", "most common ones"),
        ("my-name-is-maria", "must not contain the username"),
        (GOOD, None),
    ],
)
def test_password_rules(password, problem):
    found = password_problem(password, "maria")
    assert (found is None) if problem is None else (problem in found)


def test_an_admin_creates_a_user_who_logs_in_with_their_role(client, login, make_user):
    login(make_user("admin"))
    response = client.post("/users/", data={"username": "Maria", "display_name": "Maria Lopez",
                                            "role": "clerk", "password": GOOD})  # fmt: skip
    assert response.status_code == 302
    assert (user("maria").role, user("maria").display_name) == ("clerk", "Maria Lopez")
    client.post("/logout")
    assert client.post("/login", data={"username": "maria", "password": GOOD}).status_code == 302
    assert client.get("/users/").status_code == 403


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "x y", "role": "clerk", "password": GOOD}, "2 to 80 letters"),
        ({"username": "admin", "role": "clerk", "password": GOOD}, "exists already"),
        ({"username": "bob", "role": "clerk", "password": "password"}, "at least 12"),
        ({"username": "bob", "role": "god", "password": GOOD}, "Not a valid choice"),
    ],
)
def test_a_bad_new_user_rerenders_and_creates_nothing(client, login, make_user, data, message):
    login(make_user("admin"))
    response = client.post("/users/", data=data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert user("bob") is None


def test_a_role_change_and_a_deactivation_are_audited_and_the_last_admin_stays(
    client, login, make_user
):
    admin = make_user("admin")
    clerk = make_user("clerk")
    login(admin)
    client.post(f"/users/{clerk.id}", data={"role": "supervisor", "active": "y"})
    assert user("clerk").role == "supervisor"
    client.post(f"/users/{clerk.id}", data={"role": "supervisor"})  # the box unticked
    assert user("clerk").active is False
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.changed")).all()
    assert [e.after for e in events] == [
        {"role": "supervisor", "active": True},
        {"role": "supervisor", "active": False},
    ]
    page = client.post(f"/users/{admin.id}", data={"role": "clerk", "active": "y"})
    assert page.status_code == 400 and "the last active admin" in page.get_data(as_text=True)
    assert user("admin").role == "admin"


def test_a_reset_password_must_be_replaced_at_the_next_login(client, login, make_user):
    login(make_user("admin"))
    clerk = make_user("clerk")
    page = client.post(f"/users/{clerk.id}/reset-password", follow_redirects=True)
    temporary = re.search(r"Temporary password for clerk: (\S+) \(shown once\)",
                          page.get_data(as_text=True)).group(1)  # fmt: skip
    client.post("/logout")
    assert (
        client.post("/login", data={"username": "clerk", "password": PASSWORD}).status_code == 401
    )
    client.post("/login", data={"username": "clerk", "password": temporary})
    assert client.get("/invoices/").headers["Location"].endswith("/account/password")
    weak = client.post("/account/password", data={"current": temporary, "new": "letmein",
                                                   "again": "letmein"})  # fmt: skip
    assert weak.status_code == 400 and "at least 12" in weak.get_data(as_text=True)
    done = client.post("/account/password", data={"current": temporary, "new": GOOD, "again": GOOD})
    assert done.status_code == 302
    assert client.get("/invoices/").status_code == 200
    assert user("clerk").check_password(GOOD) and not user("clerk").must_change_password


def test_everyone_changes_their_own_password_with_the_current_one(client, login, make_user):
    login(make_user("auditor"))
    wrong = client.post("/account/password", data={"current": "nope", "new": GOOD, "again": GOOD})
    assert wrong.status_code == 400 and "current password is not right" in wrong.get_data(
        as_text=True
    )
    differ = client.post("/account/password", data={"current": PASSWORD, "new": GOOD, "again": "x"})
    assert "The two new passwords differ" in differ.get_data(as_text=True)
    assert client.post("/account/password",
                       data={"current": PASSWORD, "new": GOOD, "again": GOOD}).status_code == 302  # fmt: skip
    assert user("auditor").check_password(GOOD)


@pytest.mark.parametrize("role", ["auditor", "clerk", "supervisor"])
def test_only_an_admin_manages_users(client, login, make_user, role):
    other = make_user("clerk", "other")
    login(make_user(role, f"{role}-x"))
    assert client.get("/users/").status_code == 403
    assert (
        client.post(f"/users/{other.id}", data={"role": "admin", "active": "y"}).status_code == 403
    )
    assert client.post(f"/users/{other.id}/reset-password").status_code == 403
    assert user("other").role == "clerk"
