"""Idempotency-Key on every POST, as Stripe does: the first successful answer to a key is the
answer to every repeat of it; a key used for another request is refused; while the first is still
running, a repeat is told so. A request that fails (refused input, an error) keeps nothing and
changes nothing, so it may be repeated with the same key once corrected. A claim has a lease: a
request that died after claiming its key (its process killed before its answer was kept) is run by
a repeat once its claim is older than SETTLE_API_IDEMPOTENCY_LEASE_SECONDS."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from functools import wraps

from flask import Response, current_app, g, request
from flask_smorest import abort
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from portal import clock
from portal.api.models import ApiRequest
from portal.extensions import db

HEADER = "Idempotency-Key"
DOC = {
    "in": "header", "name": HEADER, "required": True, "schema": {"type": "string", "maxLength": 255},
    "description": "A unique key per request (a UUID): a repeat with the same key returns the "
                   "first answer and changes nothing; while the first is running, a repeat is "
                   "answered 409 with Retry-After.",
}  # fmt: skip


def _fingerprint() -> str:
    h = hashlib.sha256()
    h.update(f"{request.method} {request.path}\n".encode())
    h.update(request.get_data())
    return h.hexdigest()


def _lease() -> timedelta:
    return timedelta(seconds=current_app.config["SETTLE_API_IDEMPOTENCY_LEASE_SECONDS"])


def idempotent(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key or len(key) > 255:
            abort(400, message=f"Every POST needs an {HEADER} header (1 to 255 characters).",
                  errors={"headers": {HEADER: ["required on every POST"]}})  # fmt: skip
        user, fingerprint = g.api_user, _fingerprint()
        kept = db.session.scalar(
            select(ApiRequest).where(ApiRequest.user_id == user.id, ApiRequest.key == key)
        )
        if kept is None:
            claimed_at = clock.now()
            claim = ApiRequest(user_id=user.id, key=key, fingerprint=fingerprint,
                               created_at=claimed_at, claimed_at=claimed_at)  # fmt: skip
            db.session.add(claim)
            try:
                db.session.flush()
                claim_id = claim.id
                db.session.commit()
            except IntegrityError:  # the same key, claimed this instant by another request
                db.session.rollback()
                _running(claimed_at)
        elif kept.fingerprint != fingerprint:
            abort(422, message="This Idempotency-Key was used for a different request.",
                  errors={"headers": {HEADER: ["used for a different request"]}})  # fmt: skip
        elif kept.http_status is not None:
            return Response(kept.body, status=kept.http_status,
                                             mimetype="application/json",
                                             headers={"Idempotent-Replayed": "true"})  # fmt: skip
        elif clock.now() < kept.claimed_at + _lease():
            _running(kept.claimed_at)
        else:
            claim_id, claimed_at = kept.id, _take_over(kept.id, kept.claimed_at)
        try:
            response = view(*args, **kwargs)
        except BaseException:
            db.session.rollback()
            _release(claim_id, claimed_at)
            raise
        if response.status_code >= 300:
            db.session.rollback()
            _release(claim_id, claimed_at)
            return response
        kept_answer = db.session.execute(
            update(ApiRequest)
            .where(*_held(claim_id, claimed_at))
            .values(http_status=response.status_code, body=response.get_data(as_text=True))
        ).rowcount
        if kept_answer != 1:
            # Ran past its lease and a repeat took the key over: that repeat's work stands.
            db.session.rollback()
            abort(409, message="This request ran longer than its Idempotency-Key's lease and a "
                               "repeat ran it meanwhile: nothing it did was kept; repeat it for "
                               "the answer.")  # fmt: skip
        db.session.commit()  # the request's changes and its kept answer, together
        return response

    return wrapped


def _held(claim_id: int, claimed_at: datetime) -> tuple:
    """The claim as this request took it: not taken over since, and not answered."""
    return (
        ApiRequest.id == claim_id,
        ApiRequest.claimed_at == claimed_at,
        ApiRequest.http_status.is_(None),
    )


def _running(claimed_at: datetime):
    """409: the key's request is running; a repeat after its lease runs it again (it died)."""
    runs_again_at = claimed_at + _lease()
    wait = max(1, math.ceil((runs_again_at - clock.now()).total_seconds()))
    abort(409, message=f"A request with this Idempotency-Key is running (since "
                       f"{clock.shown(claimed_at)}): repeat it for its answer; if it has none by "
                       f"{clock.shown(runs_again_at)}, a repeat runs it again.",
          headers={"Retry-After": str(wait)})  # fmt: skip


def _take_over(claim_id: int, claimed_at: datetime) -> datetime:
    """Take the lapsed claim of a request that died, or answer 409 if another repeat took it
    first: one conditional UPDATE, so of two repeats at once only one runs the request."""
    now = clock.now()
    won = db.session.execute(
        update(ApiRequest).where(*_held(claim_id, claimed_at)).values(claimed_at=now)
    ).rowcount
    if won != 1:
        db.session.rollback()
        _running(now)
    db.session.commit()
    return now


def _release(claim_id: int, claimed_at: datetime) -> None:
    """Give the key back after a failure, unless a repeat took it over meanwhile."""
    db.session.execute(delete(ApiRequest).where(*_held(claim_id, claimed_at)))
    db.session.commit()
