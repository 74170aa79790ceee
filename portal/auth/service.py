"""Users: authenticate, create."""

from __future__ import annotations

from sqlalchemy import select

from portal.auth.models import Role, User
from portal.errors import DomainError
from portal.extensions import db

# Checked against when the user does not exist, so that a wrong name costs the same as a wrong password.
_DUMMY = User(username="", display_name="", role="auditor", password_hash="")
_DUMMY.set_password("not-a-real-password")


def authenticate(username: str, password: str) -> User | None:
    user = db.session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        _DUMMY.check_password(password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    return user


def create_user(username: str, password: str, role: Role, display_name: str | None = None) -> User:
    if db.session.scalar(select(User).where(User.username == username)) is not None:
        raise DomainError(f"A user named {username!r} exists already")
    if len(password) < 8:
        raise DomainError("A password needs at least 8 characters")
    user = User(username=username, display_name=display_name or username.title(), role=role.value)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user
