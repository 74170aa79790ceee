"""Idempotency-Key on every POST, as Stripe does: the first successful answer to a key is the
answer to every repeat of it; a key used for another request is refused; while the first is still
running, a repeat is told so. A request that fails (refused input, an error) keeps nothing and
changes nothing, so it may be repeated with the same key once corrected."""

from __future__ import annotations

import hashlib
from functools import wraps

from flask import Response, g, request
from flask_smorest import abort
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.api.models import ApiRequest
from portal.extensions import db

HEADER = "Idempotency-Key"
DOC = {
    "in": "header", "name": HEADER, "required": True, "schema": {"type": "string", "maxLength": 255},
    "description": "A unique key per request (a UUID): a repeat with the same key returns the "
                   "first answer and changes nothing.",
}  # fmt: skip


def _fingerprint() -> str:
    h = hashlib.sha256()
    h.update(f"{request.method} {request.path}\n".encode())
    h.update(request.get_data())
    return h.hexdigest()


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
            claim = ApiRequest(user_id=user.id, key=key, fingerprint=fingerprint)
            db.session.add(claim)
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                abort(409, message="A request with this Idempotency-Key is running; try again.")
        elif kept.fingerprint != fingerprint:
            abort(422, message="This Idempotency-Key was used for a different request.",
                  errors={"headers": {HEADER: ["used for a different request"]}})  # fmt: skip
        elif kept.http_status is None:
            abort(409, message="A request with this Idempotency-Key is running; try again.")
        else:
            return Response(kept.body, status=kept.http_status,
                                             mimetype="application/json",
                                             headers={"Idempotent-Replayed": "true"})  # fmt: skip
        try:
            response = view(*args, **kwargs)
        except BaseException:
            db.session.rollback()
            _release(claim.id)
            raise
        if response.status_code >= 300:
            db.session.rollback()
            _release(claim.id)
            return response
        claim = db.session.get(ApiRequest, claim.id)
        claim.http_status, claim.body = response.status_code, response.get_data(as_text=True)
        db.session.commit()  # the request's changes and its kept answer, together
        return response

    return wrapped


def _release(claim_id: int) -> None:
    claim = db.session.get(ApiRequest, claim_id)
    if claim is not None:
        db.session.delete(claim)
        db.session.commit()
