"""Gateway credentials are sealed at rest (issue 14, hole 2): the column holds Fernet tokens; a
key that cannot open them stops start-up naming the gateway; rotate-key seals every row under a
new key; the key file and the SQLite file are the owner's only."""

import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from portal import create_app, vault
from portal.extensions import db
from portal.gateways.models import Gateway

pytestmark = pytest.mark.integration


def stored(gateway_id: int) -> str:
    return db.session.execute(
        text("SELECT credentials FROM gateways WHERE id = :id"), {"id": gateway_id}
    ).scalar_one()


def test_the_column_holds_no_readable_credential(make_gateway):
    gateway = make_gateway(credentials={"api_key": "sk_test_visible_in_plain_text"})
    raw = stored(gateway.id)
    assert "sk_test_visible" not in raw and "api_key" not in raw
    assert raw.startswith("gAAAA")  # a Fernet token
    db.session.expire_all()
    assert db.session.get(Gateway, gateway.id).credentials == {
        "api_key": "sk_test_visible_in_plain_text"
    }


def test_a_key_that_cannot_open_the_credentials_stops_start_up_naming_the_gateway(
    app, make_gateway
):
    make_gateway(name="Main account")
    kept = app.extensions["settle_vault"]
    app.extensions["settle_vault"] = vault.Vault([Fernet.generate_key().decode()], vault.ENV)
    try:
        with pytest.raises(vault.VaultError, match="cannot decrypt.*'Main account' \\(id 1\\)"):
            vault.check(db.session)
        result = app.test_cli_runner().invoke(args=["settle", "rotate-key"])
        assert result.exit_code != 0 and "Main account" in result.output
    finally:
        app.extensions["settle_vault"] = kept
    vault.check(db.session)


@pytest.mark.parametrize("bad", ["not-a-key", "short,=="])
def test_a_malformed_key_stops_start_up_naming_where_it_came_from(app, monkeypatch, bad):
    monkeypatch.setenv("SETTLE_CREDENTIALS_KEY", bad)
    with pytest.raises(vault.VaultError, match="SETTLE_CREDENTIALS_KEY is not a Fernet key"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_rotate_key_seals_every_row_under_a_new_key_and_keeps_the_old_one_second(app, make_gateway):
    first, second = make_gateway(name="A"), make_gateway(name="B")
    path = Path(app.instance_path) / vault.KEY_FILE
    old_key = path.read_text().split()[0]
    before = {g.id: stored(g.id) for g in (first, second)}
    result = app.test_cli_runner().invoke(args=["settle", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "Sealed the credentials of 2 gateway(s)" in result.output
    new_key, kept = path.read_text().split()
    assert kept == old_key and new_key != old_key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    only_new = vault.Vault([new_key], "test")
    for g in (first, second):
        assert stored(g.id) != before[g.id]
        assert only_new.open(stored(g.id)) == g.credentials
    with pytest.raises(vault.VaultError):
        vault.Vault([old_key], "test").open(stored(first.id))


def test_a_process_that_read_the_old_key_file_reloads_it_after_a_rotation(app, make_gateway):
    gateway = make_gateway()
    credentials = dict(gateway.credentials)
    stale = app.extensions["settle_vault"]
    app.test_cli_runner().invoke(args=["settle", "rotate-key"])
    path = Path(app.instance_path) / vault.KEY_FILE
    # The other process knew only the key before the last one.
    app.extensions["settle_vault"] = vault.Vault(
        [k for k in stale.keys if k not in path.read_text()] or [Fernet.generate_key().decode()],
        str(path),
    )
    db.session.expire_all()
    assert db.session.get(Gateway, gateway.id).credentials == credentials


def test_with_the_environment_the_operator_puts_the_new_key_first(app, make_gateway, monkeypatch):
    gateway = make_gateway()
    credentials = dict(gateway.credentials)
    current = app.extensions["settle_vault"]
    monkeypatch.setitem(app.extensions, "settle_vault", vault.Vault(current.keys[:1], vault.ENV))
    refused = app.test_cli_runner().invoke(args=["settle", "rotate-key"])
    assert (
        refused.exit_code != 0 and "Put a new key first in SETTLE_CREDENTIALS_KEY" in refused.output
    )
    new = Fernet.generate_key().decode()
    monkeypatch.setitem(
        app.extensions, "settle_vault", vault.Vault([new, *current.keys], vault.ENV)
    )
    done = app.test_cli_runner().invoke(args=["settle", "rotate-key"])
    assert done.exit_code == 0, done.output
    assert vault.Vault([new], "test").open(stored(gateway.id)) == credentials
    monkeypatch.setitem(app.extensions, "settle_vault", current)
    # Put the rows back under the session's key for the tests that follow.
    db.session.execute(
        text("UPDATE gateways SET credentials = :v WHERE id = :id"),
        {"v": current.seal(credentials), "id": gateway.id},
    )
    db.session.commit()


def test_the_key_file_and_the_sqlite_file_are_the_owners_only(app, tmp_path, monkeypatch):
    monkeypatch.delenv("SETTLE_CREDENTIALS_KEY", raising=False)
    monkeypatch.setenv("SETTLE_INSTANCE_PATH", str(tmp_path / "instance"))
    fresh = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'instance' / 'settle.db'}"}
    )
    for name in (vault.KEY_FILE, "settle.db"):
        mode = stat.S_IMODE(os.stat(Path(fresh.instance_path) / name).st_mode)
        assert mode == 0o600, (name, oct(mode))
