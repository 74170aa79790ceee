"""For benchmarks that run Settle as real processes: a sandbox server process, a database with
a gateway and seeded invoices, and `flask settle ...` commands with their own environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi", "settle"]


def fresh_database(url: str) -> None:
    """An empty PostgreSQL database at `url`: dropped (its connections ended) and made anew."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


class SandboxProcess:
    """The sandbox gateway server in a process of its own, as a real gateway would be."""

    def __init__(self, latency: float = 0.0, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder = self.folder = tempfile.mkdtemp(prefix="settle-sandbox-")
        env = dict(env or os.environ, SETTLE_SANDBOX_PORT=str(self.port),
                   SETTLE_SANDBOX_SETTLE_AFTER="86400", SETTLE_INSTANCE_PATH=folder)  # fmt: skip
        env.pop("SETTLE_DATABASE_URL", None)  # the sandbox keeps its own ledger; no Settle database
        self.proc = subprocess.Popen(
            [*FLASK, "sandbox", "--latency", str(latency)], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_port(self.port)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Stack:
    """An instance folder, a database URL, a sandbox server process, and Settle's environment."""

    def __init__(self, database_url: str | None = None, latency: float = 0.0, **extra: str):
        self.folder = tempfile.mkdtemp(prefix="settle-bench-")
        self.env = dict(
            os.environ,
            SETTLE_INSTANCE_PATH=self.folder,
            SETTLE_DATABASE_URL=database_url or f"sqlite:///{self.folder}/settle.db",
            **extra,
        )
        self.sandbox = SandboxProcess(latency, self.env)
        self.port = self.sandbox.port

    def command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*FLASK, *args], cwd=ROOT, env=self.env, check=check, capture_output=True, text=True
        )

    def prepare(self, invoices: int) -> float:
        """Migrate, add the gateway, seed the invoices; returns the seconds the seeding took."""
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT, env=self.env, check=True, capture_output=True,
        )  # fmt: skip
        add_gateway = (
            "from decimal import Decimal\n"
            "from wsgi import app\n"
            "from portal.extensions import db\n"
            "from portal.gateways.models import Gateway\n"
            "from portal.sandbox.server import sandbox_credentials\n"
            "with app.app_context():\n"
            f"    db.session.add(Gateway(name='Bench', plugin='sandbox', base_url='http://127.0.0.1:{self.port}',\n"
            "        credentials=sandbox_credentials('sandbox'), timeout_seconds=Decimal(60)))\n"
            "    db.session.commit()\n"
        )
        subprocess.run([sys.executable, "-c", add_gateway], cwd=ROOT, env=self.env, check=True)
        started = time.perf_counter()
        self.command("seed", "--invoices", str(invoices), "--gateway", "Bench")
        return time.perf_counter() - started

    def run_args(self) -> list[str]:
        return ["run", "--due", date.today().isoformat(), "--wait"]

    def stop(self) -> None:
        self.sandbox.stop()


def peak_of_a_run(
    invoices: int, latency: float = 0.0, **env: str
) -> tuple[float, float, float, str]:
    """A run of `invoices` by `flask settle run --wait` in a fresh process: (its peak MiB from the
    kernel's wait4 ru_maxrss, run seconds, seed seconds, the run's summary line)."""
    stack = Stack(latency=latency, **env)
    try:
        seeded = stack.prepare(invoices)
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*FLASK, *stack.run_args()], cwd=ROOT, env=stack.env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the run failed: {out}")
        return usage.ru_maxrss / 1024, seconds, seeded, out.strip().splitlines()[-1]
    finally:
        stack.stop()
