"""Role checks for views: every view names the least role it needs."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from portal.auth.models import Role


def requires(role: Role):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.can(role):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorator
