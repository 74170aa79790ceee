"""Users: an admin creates them with a role, changes roles, deactivates, resets a password; every
user changes their own. Passwords have a minimum length and are not the common ones."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from sqlalchemy import func, select

from portal.audit import service as audit
from portal.auth import sessions
from portal.auth.models import Role, User
from portal.errors import DomainError, NotAllowed
from portal.extensions import db
from portal.users import throttle

MIN_LENGTH = 12
COMMON = {
    line.strip().lower()
    for line in Path(__file__).with_name("common_passwords.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}


def password_problem(password: str, username: str = "") -> str | None:
    """Why a password is not good enough, in a sentence; None when it is."""
    if len(password) < MIN_LENGTH:
        return f"A password needs at least {MIN_LENGTH} characters"
    if len(password) > 200:
        return "A password has at most 200 characters"
    bare = re.sub(r"[\d\W_]+$", "", password.lower())
    if password.lower() in COMMON or bare in COMMON:
        return "That password is one of the most common ones: choose another"
    if username and username.lower() in password.lower():
        return "A password must not contain the username"
    return None


def _check(password: str, username: str) -> None:
    problem = password_problem(password, username)
    if problem:
        raise DomainError(problem)


def create(username: str, display_name: str, role: Role, password: str, actor) -> User:
    username = username.strip().lower()
    if not re.fullmatch(r"[a-z0-9._-]{2,80}", username):
        raise DomainError("A username is 2 to 80 letters, digits, dots, dashes or underscores")
    if db.session.scalar(select(User).where(User.username == username)) is not None:
        raise DomainError(f"A user named {username!r} exists already")
    _check(password, username)
    user = User(username=username, display_name=display_name.strip() or username.title(),
                role=role.value)  # fmt: skip
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.created", user, actor=actor, after={"username": username, "role": role.value}
    )
    return user


def _active_admins(excluding: int) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == Role.ADMIN.value, User.active.is_(True), User.id != excluding)
    )


def change(user: User, actor, *, role: Role, active: bool) -> None:
    """A role change or a (re)activation; Settle never loses its last active admin."""
    losing_admin = user.role == Role.ADMIN.value and (role is not Role.ADMIN or not active)
    if losing_admin and _active_admins(excluding=user.id) == 0:
        raise NotAllowed(f"{user} is the last active admin: make another admin first")
    if user.id == getattr(actor, "id", None) and not active:
        raise NotAllowed("You cannot deactivate yourself")
    before = {"role": user.role, "active": user.active}
    user.role, user.active = role.value, active
    after = {"role": user.role, "active": user.active}
    if before != after:
        audit.record("user.changed", user, actor=actor, before=before, after=after)
    if not active and before["active"]:
        end_sessions(user, actor, "deactivated")
    elif before["role"] != user.role:
        end_sessions(user, actor, "role changed")


def reset_password(user: User, actor) -> str:
    """A temporary password, shown once to the admin; the user must choose a new one at login."""
    temporary = secrets.token_urlsafe(12)
    user.set_password(temporary)
    user.must_change_password = True
    throttle.unlock(user.username)
    audit.record("user.password_reset", user, actor=actor)
    end_sessions(user, actor, "password reset by an admin")
    return temporary


def change_own_password(user: User, current: str, new: str) -> None:
    if not user.check_password(current):
        raise DomainError("The current password is not right")
    if new == current:
        raise DomainError("Choose a password other than the current one")
    _check(new, user.username)
    user.set_password(new)
    user.must_change_password = False
    audit.record("user.password_changed", user, actor=user)
    # Every other copy of the old login ends; this browser stays logged in.
    end_sessions(user, user, "password changed", keep=sessions.current())


def end_sessions(user: User, actor, reason: str, *, keep=None, only=None) -> int:
    """End the user's open sessions (or the one `only`), audited; how many were ended."""
    if only is not None:
        if only.user_id != user.id or only.ended_at is not None:
            raise NotAllowed("That session is not open any more")
        sessions.end(only, reason)
        ended = 1
    else:
        ended = sessions.end_all(user, reason, keep=keep)
    if ended:
        audit.record(
            "user.sessions_ended", user, actor=actor, after={"sessions": ended, "why": reason}
        )
    return ended
