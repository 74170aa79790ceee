"""What every answer carries for the browser: security headers, cookie flags, the 500 page.

The Content-Security-Policy allows scripts, styles and images from Settle itself only: no
inline script, no inline handler, no inline style (bars get their width from static/widths.js),
and no framing (clickjacking). In production (SETTLE_PRODUCTION) cookies are Secure and HSTS
tells browsers to use https only.
"""

from __future__ import annotations

import uuid

from flask import Flask, request
from werkzeug.serving import WSGIRequestHandler

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
HSTS = "max-age=31536000; includeSubDomains"


def init_security(app: Flask) -> None:
    production = app.config.get("SETTLE_PRODUCTION", False)
    # Unset, TESTING would let an exception escape instead of rendering the 500 page.
    app.config.setdefault("PROPAGATE_EXCEPTIONS", None)
    for cookie in ("SESSION", "REMEMBER"):
        app.config[f"{cookie}_COOKIE_SAMESITE"] = (
            app.config.get(f"{cookie}_COOKIE_SAMESITE") or "Lax"
        )
        app.config[f"{cookie}_COOKIE_HTTPONLY"] = True
        app.config[f"{cookie}_COOKIE_SECURE"] = (
            app.config.get(f"{cookie}_COOKIE_SECURE") or production
        )

    @app.after_request
    def headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if app.config.get("SETTLE_PRODUCTION"):
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        if request.endpoint != "static":
            # A page of a finance back office is never kept by a browser or a proxy.
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def error_reference() -> str:
    """A short reference a clerk can quote, logged beside the error's traceback."""
    return uuid.uuid4().hex[:10]


class QuietRequestHandler(WSGIRequestHandler):
    """The embedded server's handler: `Server: Settle`, no server or Python version."""

    def version_string(self) -> str:
        return "Settle"
