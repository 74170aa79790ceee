"""Settings, read from SETTLE_* environment variables, with embedded defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _secret_key(instance_path: str) -> str:
    """SETTLE_SECRET_KEY, else one generated on first start and kept in the instance folder."""
    if key := os.environ.get("SETTLE_SECRET_KEY"):
        return key
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def _flag(value: str | None) -> bool:
    if value is None or value.strip().lower() in ("", "0", "false", "no", "off"):
        return False
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    raise RuntimeError(f"A SETTLE_ on/off setting must be 1 or 0, not {value!r}")


def from_environment(instance_path: str) -> dict:
    env = os.environ.get
    broker = env("SETTLE_BROKER_URL") or None
    database_url = env("SETTLE_DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'settle.db'}"
    return {
        "SECRET_KEY": _secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SETTLE_DEMO_PASSWORD": env("SETTLE_DEMO_PASSWORD"),
        "SETTLE_SANDBOX_HOST": env("SETTLE_SANDBOX_HOST", "127.0.0.1"),
        "SETTLE_SANDBOX_PORT": int(env("SETTLE_SANDBOX_PORT", "5081")),
        # Seconds after which the sandbox server settles a charge (voids then stop working).
        "SETTLE_SANDBOX_SETTLE_AFTER": float(env("SETTLE_SANDBOX_SETTLE_AFTER", "120")),
        # The sandbox's webhooks: seconds before each event leaves, and the chances that one is
        # delivered twice or overtaken by the next (as providers' deliveries sometimes are).
        "SETTLE_SANDBOX_WEBHOOK_DELAY": float(env("SETTLE_SANDBOX_WEBHOOK_DELAY", "2")),
        "SETTLE_SANDBOX_WEBHOOK_TWICE": float(env("SETTLE_SANDBOX_WEBHOOK_TWICE", "0.2")),
        "SETTLE_SANDBOX_WEBHOOK_DISORDER": float(env("SETTLE_SANDBOX_WEBHOOK_DISORDER", "0.2")),
        "SETTLE_HOST": env("SETTLE_HOST", "127.0.0.1"),
        "SETTLE_PORT": int(env("SETTLE_PORT", "5080")),
        "SETTLE_TIMEZONE": env("SETTLE_TIMEZONE", "UTC"),
        # Production: gateways send only to their providers' published hosts over https (with
        # SETTLE_GATEWAY_TEST_HOSTS, also to their test hosts and this machine's sandbox).
        "SETTLE_PRODUCTION": _flag(env("SETTLE_PRODUCTION")),
        "SETTLE_GATEWAY_TEST_HOSTS": _flag(env("SETTLE_GATEWAY_TEST_HOSTS")),
        # Background run execution: "thread" on the embedded default; "inline" runs in the caller.
        "SETTLE_JOBS": env("SETTLE_JOBS", "thread"),
        # An upload larger than this is refused before it is read (imports are at most 20 MB).
        "MAX_CONTENT_LENGTH": 25 * 1024 * 1024,
        "SETTLE_PAGE_SIZE": int(env("SETTLE_PAGE_SIZE", "50")),
        # Calls in flight per gateway during a run: gateway latency, not Settle, bounds a run.
        "SETTLE_GATEWAY_CONCURRENCY": int(env("SETTLE_GATEWAY_CONCURRENCY", "8")),
        # Invoices a run claims (records Pending) ahead of their calls, per gateway: at least 2 x
        # the calls in flight. More costs fewer database transactions per invoice where the
        # gateway answers fast; a cancel then closes more of them as never sent.
        "SETTLE_CLAIM_WINDOW": int(env("SETTLE_CLAIM_WINDOW", "0")),
        # A run writes its answers back in batches: at least every so many, or so many seconds.
        "SETTLE_ANSWER_BATCH": int(env("SETTLE_ANSWER_BATCH", "64")),
        "SETTLE_ANSWER_FLUSH_SECONDS": float(env("SETTLE_ANSWER_FLUSH_SECONDS", "0.2")),
        # Flask-Limiter's counters (login throttling): shared in Redis where there is one.
        "RATELIMIT_STORAGE_URI": env("SETTLE_RATELIMIT_STORAGE_URL")
        or (broker if broker and broker.startswith("redis") else "memory://"),
        # Redis down: count in memory meanwhile rather than refuse every login.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Login attempts allowed per client address, and per username, before a 429.
        "SETTLE_LOGIN_LIMIT_ADDRESS": env("SETTLE_LOGIN_LIMIT_ADDRESS", "30 per minute"),
        "SETTLE_LOGIN_LIMIT_USERNAME": env("SETTLE_LOGIN_LIMIT_USERNAME", "10 per minute"),
        # With a broker (Redis), runs are executed in chunks by Celery workers on any machine.
        "SETTLE_BROKER_URL": broker,
        # Invoices per chunk: the unit a worker takes, and the most a lost worker leaves to redo.
        "SETTLE_RUN_CHUNK_SIZE": int(env("SETTLE_RUN_CHUNK_SIZE", "2000")),
        # An import confirmed with more rows to write than this is written in the background.
        "SETTLE_IMPORT_BACKGROUND_ROWS": int(env("SETTLE_IMPORT_BACKGROUND_ROWS", "2000")),
        # An API POST that claimed its Idempotency-Key and never answered (its process died) is
        # run by a repeat of the key after so many seconds. Far past any live request: gunicorn
        # kills a worker silent for 30 s, and the API's POSTs call no gateway (whose calls stop
        # at their deadline, 120 s by default).
        "SETTLE_API_IDEMPOTENCY_LEASE_SECONDS": int(
            env("SETTLE_API_IDEMPOTENCY_LEASE_SECONDS", "300")
        ),
    }
