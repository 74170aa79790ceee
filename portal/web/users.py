"""Users (an admin's page) and every user's own password."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.api import tokens as api_tokens
from portal.api.models import ApiToken
from portal.audit import service as audit
from portal.auth import sessions
from portal.auth.models import Role, User, UserSession
from portal.auth.roles import requires
from portal.errors import DomainError
from portal.extensions import db
from portal.ids import record_id
from portal.transactions.forms import ActionForm
from portal.users import service
from portal.users.forms import ApiTokenForm, ChangeUserForm, NewUserForm, OwnPasswordForm

bp = Blueprint("users", __name__)


def _list(form: NewUserForm, status: int = 200):
    users = db.session.scalars(select(User).order_by(User.username)).all()
    return render_template("users/index.html", users=users, form=form,
                           min_length=service.MIN_LENGTH), status  # fmt: skip


@bp.route("/users/", methods=["GET", "POST"])
@requires(Role.ADMIN)
def index():
    form = NewUserForm()
    if not form.is_submitted():
        return _list(form)
    if not form.validate_on_submit():
        return _list(form, 400)
    try:
        user = service.create(form.username.data, form.display_name.data or "",
                              Role(form.role.data), form.password.data, current_user)  # fmt: skip
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _list(form, 400)
    flash(f"{user} ({user.role}) can log in as {user.username}.", "success")
    return redirect(url_for("users.detail", user_id=user.id))


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@requires(Role.ADMIN)
def detail(user_id: int):
    user = db.get_or_404(User, user_id)
    form = ChangeUserForm(obj=None if request.method == "POST" else user)
    status = 200
    if form.validate_on_submit():
        try:
            service.change(user, current_user, role=Role(form.role.data), active=form.active.data)
            db.session.commit()
            flash(f"{user} is now {user.role}{'' if user.active else ', deactivated'}.", "success")
            return redirect(url_for("users.detail", user_id=user.id))
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            status = 400
    elif form.is_submitted():
        status = 400
    return _detail(db.session.get(User, user_id), form, status)


def _detail(user: User, form: ChangeUserForm, status: int = 200, new_token: str | None = None):
    return render_template("users/detail.html", user=user, form=form, events=audit.timeline(user),
                           tokens=api_tokens.tokens_of(user), new_token=new_token,
                           sessions=sessions.open_sessions(user),
                           current_session_id=getattr(sessions.current(), "id", None)), status  # fmt: skip


@bp.route("/users/<int:user_id>/api-tokens", methods=["POST"])
@requires(Role.ADMIN)
def create_token(user_id: int):
    user = db.get_or_404(User, user_id)
    form = ApiTokenForm()
    if not form.validate_on_submit():
        flash("The form expired: reload the page and try again.", "error")
        return redirect(url_for("users.detail", user_id=user.id))
    try:
        token, secret = api_tokens.create(user, form.name.data or "", current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _detail(user, ChangeUserForm(obj=user), 400)
    # Shown in this answer only: never stored, never in a cookie, never shown again.
    return _detail(user, ChangeUserForm(obj=user), 201, new_token=secret)


@bp.route("/users/<int:user_id>/api-tokens/<int:token_id>/revoke", methods=["POST"])
@requires(Role.ADMIN)
def revoke_token(user_id: int, token_id: int):
    user = db.get_or_404(User, user_id)
    if not ActionForm().validate_on_submit():
        flash("The form expired: reload the page and try again.", "error")
        return redirect(url_for("users.detail", user_id=user.id))
    if getattr(db.session.get(ApiToken, token_id), "user_id", None) != user.id:
        abort(404)
    token = api_tokens.revoke(token_id, current_user)
    db.session.commit()
    flash(f"API token {token.name} ({token.prefix}…) is revoked: it no longer works.", "success")
    return redirect(url_for("users.detail", user_id=user.id))


@bp.route("/users/<int:user_id>/sessions/end", methods=["POST"])
@requires(Role.ADMIN)
def end_sessions(user_id: int):
    """End one of the user's sessions (session_id in the form), or all of them."""
    user = db.get_or_404(User, user_id)
    if not ActionForm().validate_on_submit():
        flash("The form expired: reload the page and try again.", "error")
        return redirect(url_for("users.detail", user_id=user.id))
    only = None
    if request.form.get("session_id"):
        chosen = request.form.get("session_id", type=record_id)
        only = db.session.get(UserSession, chosen) if chosen else None
        if only is None or only.user_id != user.id:
            abort(404)
    try:
        ended = service.end_sessions(user, current_user, "ended by an admin", only=only)
    except DomainError as exc:
        flash(str(exc), "error")
        return redirect(url_for("users.detail", user_id=user.id))
    db.session.commit()
    flash(f"{ended} session(s) of {user.username} ended: they must log in again.", "success")
    return redirect(url_for("users.detail", user_id=user.id) + "#sessions")


@bp.route("/users/<int:user_id>/reset-password", methods=["POST"])
@requires(Role.ADMIN)
def reset_password(user_id: int):
    user = db.get_or_404(User, user_id)
    if not ActionForm().validate_on_submit():
        flash("The form expired: reload the page and try again.", "error")
        return redirect(url_for("users.detail", user_id=user.id))
    temporary = service.reset_password(user, current_user)
    db.session.commit()
    flash(f"Temporary password for {user.username}: {temporary} (shown once). They choose their "
          "own at their next login.", "info")  # fmt: skip
    return redirect(url_for("users.detail", user_id=user.id))


@bp.route("/account/password", methods=["GET", "POST"])
@requires(Role.AUDITOR)
def own_password():
    form = OwnPasswordForm()
    if form.validate_on_submit():
        try:
            me = current_user._get_current_object()
            service.change_own_password(me, form.current.data, form.new.data)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return render_template("users/password.html", form=form,
                                   min_length=service.MIN_LENGTH), 400  # fmt: skip
        flash("Your password is changed.", "success")
        return redirect(url_for("dashboard.index"))
    status = 400 if form.is_submitted() else 200
    return render_template("users/password.html", form=form, min_length=service.MIN_LENGTH), status
