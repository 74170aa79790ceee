"""Per-user API tokens: created by an admin on the user's page, shown once, stored as a SHA-256
hash (a random 256-bit token needs no slow hash), limited to the user's role, revocable."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update

from portal import clock
from portal.api.models import ApiToken
from portal.audit import service as audit
from portal.auth.models import User
from portal.errors import DomainError
from portal.extensions import db

PREFIX = "settle_"
# A token in use is stamped at most this often, so that reads do not each write.
_STAMP_EVERY_SECONDS = 60


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(user: User, name: str, actor) -> tuple[ApiToken, str]:
    """A new token for the user; the secret is returned here and never again."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise DomainError("Name the token (up to 80 characters), e.g. the system that uses it")
    if not user.active:
        raise DomainError(f"{user} is deactivated: a token of theirs could not be used")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, prefix=secret[: len(PREFIX) + 4],
                     sha256=_digest(secret), created_by_id=getattr(actor, "id", None))  # fmt: skip
    db.session.add(token)
    db.session.flush()
    # On the user's record, so that their page's timeline shows who gave them API access.
    audit.record("api_token.created", user, actor=actor,
                 after={"token": token.id, "name": name, "prefix": token.prefix})  # fmt: skip
    return token, secret


def revoke(token_id: int, actor) -> ApiToken:
    won = db.session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=clock.now(), revoked_by_id=getattr(actor, "id", None))
    ).rowcount
    token = db.session.get(ApiToken, token_id, populate_existing=True)
    if token is None:
        raise DomainError(f"API token {token_id} does not exist")
    if won:
        audit.record("api_token.revoked", token.user, actor=actor,
                     after={"token": token.id, "name": token.name, "prefix": token.prefix})  # fmt: skip
    return token


def tokens_of(user: User) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
        )
    )


def authenticate(header: str | None) -> User | None:
    """The active user whose live token the Authorization header carries, else None."""
    scheme, _, secret = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.startswith(PREFIX):
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.sha256 == _digest(secret.strip())))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    now = clock.now()
    if (
        token.last_used_at is None
        or (now - token.last_used_at).total_seconds() > _STAMP_EVERY_SECONDS
    ):
        token.last_used_at = now
        db.session.commit()
    return token.user
