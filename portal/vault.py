"""Gateway credentials at rest: sealed with Fernet (cryptography's authenticated encryption), so
the `gateways.credentials` column, a backup or a copied database file holds no usable secret.

Keys: `SETTLE_CREDENTIALS_KEY` (Fernet keys separated by commas, the first seals, all open), or
on the embedded default the file `credentials_key` in the instance folder (one key a line),
created 0600 at the first start. `flask settle rotate-key` seals every row under a new key
(`rotate`). A key that cannot open what is stored stops start-up with the gateway it failed on
(`check`), never a failing charge later.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app, has_app_context
from sqlalchemy import Text, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.types import TypeDecorator

KEY_FILE = "credentials_key"
ENV = "SETTLE_CREDENTIALS_KEY"


class VaultError(RuntimeError):
    """A key is missing or malformed, or cannot open what is stored: the message says which."""


class Vault:
    def __init__(self, keys: list[str], source: str):
        if not keys:
            raise VaultError(f"No credentials key in {source}")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError):
            raise VaultError(
                f"A credentials key in {source} is not a Fernet key (32 url-safe base64 bytes)"
            ) from None
        self.keys, self.source = keys, source
        self.read_at: int | None = None  # the key file's mtime when read (None: environment)

    def seal(self, value: dict) -> str:
        return self._fernet.encrypt(json.dumps(value, sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise VaultError(
                f"The credentials key in {self.source} cannot decrypt saved gateway credentials"
                " (a changed or lost key?): put back the key they were sealed with"
            ) from None

    def reseal(self, token: str) -> str:
        """The token sealed again under the first key (rotation)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            self.open(token)  # raises with the message
            raise


def load(instance_path: str) -> Vault:
    """The configured vault: the environment's keys, else the instance file's (made if missing)."""
    if keys := os.environ.get(ENV):
        return Vault([k.strip() for k in keys.split(",") if k.strip()], ENV)
    path = Path(instance_path) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under another name, then linked in place: a second process starting at
        # the same moment finds either no file or the whole key, never an empty one.
        fresh = path.with_name(f"{KEY_FILE}.{os.getpid()}.new")
        fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(Fernet.generate_key().decode() + "\n")
        try:
            os.link(fresh, path)
        except FileExistsError:  # the other process's key won
            pass
        finally:
            fresh.unlink()
    vault = Vault(_lines(path), str(path))
    vault.read_at = path.stat().st_mtime_ns
    return vault


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def current() -> Vault:
    """This app's vault; with the key file, read again when another process rotated it (so
    nothing is sealed under a key the file no longer holds)."""
    app = current_app._get_current_object()
    vault = app.extensions.get("settle_vault")
    if vault is not None and vault.read_at is not None:
        try:
            changed = Path(vault.source).stat().st_mtime_ns != vault.read_at
        except OSError:
            changed = False
        if changed:
            vault = None
    if vault is None:
        vault = app.extensions["settle_vault"] = load(app.instance_path)
    return vault


def reload() -> Vault:
    """Read the key source again (another process rotated the key file)."""
    current_app.extensions.pop("settle_vault", None)
    return current()


def open_sealed(token: str) -> dict:
    try:
        return current().open(token)
    except VaultError:
        if current().source == ENV:
            raise
        return reload().open(token)  # the file may hold a newer key since this process read it


class Sealed(TypeDecorator):
    """A dict stored sealed (text); read back as the dict. Needs an app context (the key)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if not has_app_context():
            raise VaultError("Credentials can be sealed only inside the app (its key)")
        return current().seal(dict(value))

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return open_sealed(value)


def _stored(session) -> list[tuple[int, str, str | None]]:
    """Every gateway's id, name and sealed credentials as stored (text, not opened)."""
    return [tuple(r) for r in session.execute(text("SELECT id, name, credentials FROM gateways"))]


def check(session) -> None:
    """Start-up: the key must open every gateway's credentials, else VaultError naming the
    gateway. Nothing to check before the migrations have made the table."""
    try:
        rows = _stored(session)
    except (OperationalError, ProgrammingError):
        session.rollback()
        return
    for gateway_id, name, token in rows:
        if token is None:
            continue
        try:
            current().open(token)
        except VaultError as exc:
            raise VaultError(f"{exc}: gateway {name!r} (id {gateway_id})") from None


def rotate(session) -> int:
    """Seal every gateway's credentials under a new first key; how many rows were sealed again.

    With the key file: a new key is written first and the previous one kept second (a process
    that read the file before can still open what it sealed meanwhile); older ones are dropped.
    With the environment, the operator puts the new key first (`new,old`) and restarts every
    process first; this then seals every row under it, after which the old key may be removed.
    The caller commits."""
    vault = current()
    if vault.source == ENV:
        if len(vault.keys) < 2:
            raise VaultError(
                f"Put a new key first in {ENV} (new,old), restart every process, then rotate."
                f" A new key: {Fernet.generate_key().decode()}"
            )
        sealer, keys = vault, None
    else:
        keys = [Fernet.generate_key().decode(), vault.keys[0]]
        sealer = Vault(keys + vault.keys[1:], vault.source)
    rows = _stored(session)
    for gateway_id, _, token in rows:
        while token is not None:
            # Only if the row still holds what was read: a supervisor's save in between wins,
            # and is sealed again from what it holds now.
            done = session.execute(
                text(
                    "UPDATE gateways SET credentials = :sealed WHERE id = :id AND credentials = :was"
                ),
                {"sealed": sealer.reseal(token), "id": gateway_id, "was": token},
            ).rowcount
            if done:
                break
            token = session.execute(
                text("SELECT credentials FROM gateways WHERE id = :id"), {"id": gateway_id}
            ).scalar()
    if keys is not None:
        # The new key is in place before the rows sealed under it commit (the old one stays
        # second, so the rows still open if the commit fails).
        path = Path(vault.source)
        temporary = path.with_name(path.name + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(keys) + "\n")
        os.replace(temporary, path)
        rotated = Vault(keys, vault.source)
        rotated.read_at = path.stat().st_mtime_ns
        current_app.extensions["settle_vault"] = rotated
    return len(rows)
