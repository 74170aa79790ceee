"""Login and logout: throttled per client address and per username, locked after repeated
failures (portal/users/throttle.py), a server-side session per login (portal/auth/sessions.py)."""

from __future__ import annotations

import math
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user, login_required, login_user, logout_user

from portal import clock
from portal.audit import service as audit
from portal.auth import sessions
from portal.auth.forms import LoginForm
from portal.auth.service import authenticate
from portal.extensions import db, limiter
from portal.users import throttle

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an open redirect to another host.
    if (
        target
        and urlsplit(target).netloc == ""
        and target.startswith("/")
        and not target.startswith("//")
    ):
        return target
    return url_for("dashboard.index")


def _typed_username() -> str:
    return "username:" + throttle.key(request.form.get("username", ""))


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def _locked(form, until) -> tuple[str, int, dict]:
    wait = (until - clock.now()).total_seconds()
    flash(
        f"Too many failed logins for this username. Try again in {_minutes(wait)}"
        f" (at {clock.shown(until)}), or ask an admin to reset the password.",
        "error",
    )
    return render_template("auth/login.html", form=form), 429, {"Retry-After": str(int(wait) + 1)}


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["SETTLE_LOGIN_LIMIT_ADDRESS"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["SETTLE_LOGIN_LIMIT_USERNAME"],
    key_func=_typed_username,
    methods=["POST"],
)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data
        until = throttle.locked_until(username)
        if until is not None:
            return _locked(form, until)
        user = authenticate(username, form.password.data)
        if user is None:
            until = throttle.failed(username, request.remote_addr)
            db.session.commit()
            if until is not None:
                return _locked(form, until)
            flash("Wrong username or password.", "error")
            return render_template("auth/login.html", form=form), 401
        throttle.succeeded(username)
        sessions.begin(user)
        login_user(user)
        audit.record("user.logged_in", user, actor=user)
        db.session.commit()
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.errorhandler(RateLimitExceeded)
def too_many(e):
    limit = limiter.current_limit
    wait = max(1, limit.reset_at - time.time()) if limit else 60
    current_app.logger.warning(
        "Login attempts refused for %s: over %s", request.remote_addr, e.description
    )
    if throttle.throttled(request.form.get("username", ""), request.remote_addr, e.description):
        db.session.commit()
    flash(f"Too many login attempts from here. Try again in {_minutes(wait)}.", "error")
    return (
        render_template("auth/login.html", form=LoginForm()),
        429,
        {"Retry-After": str(int(wait))},
    )


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    sessions.end_current("logged out")
    logout_user()
    db.session.commit()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
