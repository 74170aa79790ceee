"""Every answer carries the security headers; cookies are SameSite (and Secure in production);
no template holds inline script, an inline handler or an inline style; a crash gets the styled
500 page (issue 14, hole 5)."""

import re
from pathlib import Path

import pytest
import requests

from portal import create_app
from portal.web.security import HEADERS
from tests.conftest import PASSWORD

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.mark.parametrize("path", ["/login", "/", "/runs/", "/nowhere", "/api/v1/openapi.json"])
def test_every_answer_carries_the_security_headers(client, login, make_user, path):
    login(make_user("auditor"))
    response = client.get(path)
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers  # not in production mode


def test_the_session_cookie_is_samesite_lax_and_httponly(client, make_user):
    make_user("clerk", username="c")
    response = client.post("/login", data={"username": "c", "password": PASSWORD})
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_production_mode_sends_hsts_and_secure_cookies(app, tmp_path):
    production = create_app(
        {**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY")},
         "SETTLE_PRODUCTION": True, "TESTING": True, "SETTLE_JOBS": "inline"}
    )  # fmt: skip
    with production.test_client() as client:
        response = client.get("/login")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert "Secure" in response.headers.get("Set-Cookie", "Secure")
    assert production.config["SESSION_COOKIE_SECURE"] is True


def test_no_template_holds_inline_script_handlers_or_styles():
    found = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\son[a-z]+\s*=", r"\sstyle\s*=",
                        r"<style", r"javascript:"):  # fmt: skip
            found += [
                f"{path.relative_to(TEMPLATES)}: {m.group(0)}" for m in re.finditer(pattern, text)
            ]
    assert found == []


def test_a_crash_gets_the_styled_500_page_with_a_reference(
    app, client, login, make_user, monkeypatch, caplog
):
    login(make_user("auditor"))

    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setitem(app.view_functions, "runs.index", broken)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    response = client.get("/runs/")
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in page and "settle.css" in page
    reference = re.search(r"error reference ([0-9a-f]{10})", page).group(1)
    assert reference in caplog.text
    assert "a bug" not in page
    assert response.headers["Content-Security-Policy"]


def test_the_server_header_names_no_version(portal_url):
    response = requests.get(f"{portal_url}/login", timeout=10)
    assert response.headers["Server"] == "Settle"
