"""The portal's web layer: blueprints, login, error pages and template filters."""

from __future__ import annotations

from flask import Flask, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError

from portal import clock
from portal.extensions import db, login_manager
from portal.money import Money


def register_web(app: Flask) -> None:
    from portal.web.accounts import bp as accounts_bp
    from portal.web.audit import bp as audit_bp
    from portal.web.auth import bp as auth_bp
    from portal.web.dashboard import bp as dashboard_bp
    from portal.web.gateways import bp as gateways_bp
    from portal.web.imports import bp as imports_bp
    from portal.web.invoices import bp as invoices_bp
    from portal.web.payments import bp as payments_bp
    from portal.web.reconciliation import bp as reconciliation_bp
    from portal.web.runs import bp as runs_bp
    from portal.web.settings import bp as settings_bp
    from portal.web.transactions import bp as transactions_bp
    from portal.web.users import bp as users_bp
    from portal.web.webhooks import bp as webhooks_bp

    blueprints = [auth_bp, dashboard_bp, runs_bp, invoices_bp, payments_bp, transactions_bp]
    blueprints += [reconciliation_bp, accounts_bp, imports_bp, users_bp, webhooks_bp]
    for bp in [*blueprints, gateways_bp, settings_bp, audit_bp]:
        app.register_blueprint(bp)

    from portal.web.security import error_reference, init_security

    init_security(app)

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"

    @app.before_request
    def choose_a_password_first():
        """After an admin's reset, nothing but choosing a new password (or logging out)."""
        from flask_login import current_user

        allowed = {"users.own_password", "auth.logout", "auth.login", "static"}
        if (
            current_user.is_authenticated
            and current_user.must_change_password
            and request.endpoint not in allowed
        ):
            return redirect(url_for("users.own_password"))
        return None

    @login_manager.user_loader
    def load_user(user_id: str):
        from portal.auth import sessions
        from portal.auth.models import User

        user = db.session.get(User, int(user_id))
        if user is None or not user.active:
            return None
        # The cookie's session must still be open at Settle: logout, a password or role change,
        # deactivation and an admin's "End" close it for every copy of the cookie.
        row = sessions.current()
        return user if row is not None and row.user_id == user.id else None

    clock.show_in(app.config["SETTLE_TIMEZONE"])
    app.add_template_filter(clock.shown, "when")

    @app.template_filter("age")
    def age(since, now) -> str:
        """How long ago, as a clerk reads it: 12 min, 5 h, 3 days."""
        if since is None:
            return "—"
        minutes = int((now - since).total_seconds() // 60)
        if minutes < 60:
            return f"{max(minutes, 0)} min"
        if minutes < 48 * 60:
            return f"{minutes // 60} h"
        return f"{minutes // (24 * 60)} days"

    @app.template_filter("money")
    def money(amount, currency: str) -> str:
        return "—" if amount is None else str(Money(amount, currency))

    @app.template_filter("changes")
    def changes(event) -> list[str]:
        """An audit event's before and after as "field: old → new" lines a person can read."""
        before, after = event.before or {}, event.after or {}

        def show(value) -> str:
            return "—" if value is None else str(value)

        lines = []
        for key in sorted(set(before) | set(after)):
            label, new = key.replace("_", " "), show(after.get(key))
            lines.append(
                f"{label}: {show(before[key])} → {new}" if key in before else f"{label}: {new}"
            )
        return lines

    @app.context_processor
    def globals_():
        from portal import jobs
        from portal.auth.models import Role
        from portal.statuses import GatewayStatus

        # A callable: only pages that show the banner ask (and the answer is cached for 15 s).
        return {"Role": Role, "GatewayStatus": GatewayStatus, "broker_problem": jobs.broker_problem}

    def keyset_url(**key) -> str:
        """This list, its filters kept, at the page the key names (none: the first page)."""
        args = {**request.view_args, **request.args.to_dict()}
        for name in ("after", "before", "end"):
            args.pop(name, None)
        return url_for(request.endpoint, **args, **key)

    # A global, not a context variable, so that imported macros (the pager) can call it.
    app.jinja_env.globals["keyset_url"] = keyset_url

    def page(e, code: int, title: str, message: str):
        if request.path.startswith("/api/"):  # the API answers in JSON, its own message kept
            data = getattr(e, "data", None) or {}
            body = {"code": code, "status": title, "message": data.get("message", message)}
            if data.get("errors"):
                body["errors"] = data["errors"]
            return body, code
        return render_template("error.html", code=code, title=title, message=message), code

    @app.errorhandler(404)
    def not_found(e):
        return page(e, 404, "Not found", "There is no such page or record.")

    @app.errorhandler(403)
    def forbidden(e):
        return page(e, 403, "Not allowed", "Your role does not allow this. Nothing was changed.")

    @app.errorhandler(CSRFError)
    def csrf_failed(e):
        return page(
            e,
            400,
            "Form expired",
            "The form was stale or incomplete. Reload the page and try again; nothing was changed.",
        )

    @app.errorhandler(413)
    def too_large(e):
        return page(
            e, 413, "File too large", "The file is larger than Settle accepts. Nothing was stored."
        )

    @app.errorhandler(500)
    def failed(e):
        reference = error_reference()
        app.logger.error("Error reference %s: %s %s", reference, request.method, request.path)
        return page(
            e, 500, "Something went wrong",
            f"Settle could not finish this request (error reference {reference}, in the log)."
            " What was saved before the error stays saved; the rest was not done. Reload the"
            " page to see where things stand, and quote the reference if it happens again.",
        )  # fmt: skip

    @app.errorhandler(405)
    def not_allowed(e):
        return page(e, 405, "Not allowed", "That action cannot be done this way.")
