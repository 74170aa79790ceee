"""The whole URL surface, for the proofs that enumerate it (role matrix, CSRF, escaping): every
rule of the URL map with its methods and a concrete path, and a fingerprint of the database to
tell whether a request changed anything."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import text

from portal.extensions import db

# What a refused request may still write, or Settle writes beside it: when a session or an API
# token was last seen, and the audit chain's seals (its sealer thread runs on its own).
NOT_STATE = {
    ("user_sessions", "last_seen_at"),
    ("api_tokens", "last_used_at"),
    ("audit_events", "seq"),
    ("audit_events", "prev_hash"),
    ("audit_events", "hash"),
    ("audit_chain", "id"),
    ("audit_chain", "last_seq"),
    ("audit_chain", "last_hash"),
}


def requests_of(app, value: str = "1"):
    """(endpoint, method, path) for every rule and method, path parameters filled with `value`
    (a string parameter with "sandbox", a provider's name)."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        path = re.sub(r"<int:[^>]+>", value, rule.rule)
        path = re.sub(r"<path:[^>]+>", "settle.css", path)
        path = re.sub(r"<(?:string:)?[a-z_]+>", "sandbox", path)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


def fingerprint() -> str:
    """A digest of every row of every table (but NOT_STATE): equal before and after a request
    only if it changed nothing."""
    digest = hashlib.sha256()
    db.session.expire_all()
    for name, table in sorted(db.metadata.tables.items()):
        columns = ", ".join(f'"{c.name}"' for c in table.columns if (name, c.name) not in NOT_STATE)
        if not columns:
            continue
        for row in db.session.execute(text(f'SELECT {columns} FROM "{name}" ORDER BY 1')):
            digest.update(repr(tuple(row)).encode())
    db.session.rollback()
    return digest.hexdigest()
