"""The portal's pages at a million transactions: p95 of each page's answer on PostgreSQL, with
200,000 invoices and 1,000,000 gateway calls of a year of daily runs, seeded by
`flask settle seed --history`. Goal: p95 <= 100 ms for every page measured.

.venv/bin/python benchmarks/pages.py [--database URL] [--invoices 200000]
    [--transactions 1000000] [--samples 20] [--reseed]

The database (default: settle_pages on the local server) is made and seeded once and kept: a
second run measures it again unless --reseed. Each page is asked `--samples` times through the
portal's own WSGI app (routing, login, the queries, the template), after one untimed ask; a list is
asked at its first page, at a page in its middle (the key of its middle row, as Next would reach
it) and at its last page, for each filter.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._processes import fresh_database  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL_MS = 100.0
PASSWORD = "bench-pages-password-1"


def seed(url: str, invoices: int, transactions: int, env: dict) -> None:
    from sqlalchemy import create_engine, text

    fresh_database(url)
    flask = [os.path.join(ROOT, ".venv", "bin", "flask"), "--app", "wsgi", "settle"]
    started = time.perf_counter()
    subprocess.run([*flask, "demo"], env=env, cwd=ROOT, check=True, capture_output=True)
    subprocess.run(
        [*flask, "seed", "--invoices", str(invoices), "--history", str(transactions)],
        env=env, cwd=ROOT, check=True,
    )  # fmt: skip
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    print(
        f"seeded {invoices} invoices, {transactions} calls in {time.perf_counter() - started:.0f} s"
    )


def seeded(url: str, transactions: int) -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM payment_transactions")).scalar()
        engine.dispose()
        return count >= transactions
    except Exception:
        return False


def database_arguments(parser: argparse.ArgumentParser) -> None:
    """The seeded database's arguments, shared with benchmarks/export.py."""
    parser.add_argument(
        "--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/settle_pages"
    )
    parser.add_argument("--invoices", type=int, default=200_000)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--instance", default=None, help="The instance folder (credentials key).")


def seeded_database(args) -> dict:
    """Settle's environment for the seeded database, seeding it first where it is missing."""
    # The instance folder holds the key that seals the gateways' credentials: kept with the database.
    instance = args.instance or os.path.join(
        tempfile.gettempdir(), "settle-pages-" + args.database.rsplit("/", 1)[-1]
    )
    os.makedirs(instance, exist_ok=True)
    env = {**os.environ, "SETTLE_DATABASE_URL": args.database, "SETTLE_INSTANCE_PATH": instance}
    if args.reseed or not seeded(args.database, args.transactions):
        seed(args.database, args.invoices, args.transactions, env)
    return env


def logged_in(app):
    """A test client of `app`, logged in as the benchmarks' supervisor (made at the first use)."""
    from sqlalchemy import select

    from portal.auth.models import Role, User
    from portal.auth.service import create_user
    from portal.extensions import db

    with app.app_context():
        if db.session.scalar(select(User).where(User.username == "bench-pages")) is None:
            create_user("bench-pages", PASSWORD, Role.SUPERVISOR)
            db.session.commit()
    client = app.test_client()
    response = client.post("/login", data={"username": "bench-pages", "password": PASSWORD})
    assert response.status_code == 302, response.data
    return client


def middle_key(app, query, order) -> str:
    """The key of the list's middle row: where Next lands after half the list's pages."""
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.pagination import _token

    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        row = db.session.scalars(
            query.order_by(None).order_by(*order.clauses()).offset(total // 2).limit(1)
        ).first()
        return _token(order.key_of(row)) if row is not None else ""


def measure(client, url: str, samples: int) -> list[float]:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(url)
        response.get_data()
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20, method="inclusive")[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    database_arguments(parser)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--only", default="", help="Measure only the pages whose name has this.")
    args = parser.parse_args()
    os.environ.update(seeded_database(args))

    from sqlalchemy import select

    from portal import create_app
    from portal.auth.models import User
    from portal.extensions import db
    from portal.gateways.models import Gateway
    from portal.invoices.models import Invoice
    from portal.listings.invoices import InvoiceFilters
    from portal.listings.transactions import TxnFilters
    from portal.runs.models import PaymentRun
    from portal.transactions.models import PaymentTransaction

    app = create_app({"WTF_CSRF_ENABLED": False, "SETTLE_LOGIN_LIMIT_ADDRESS": "100000 per minute"})
    rng = random.Random(15)
    client = logged_in(app)
    with app.app_context():
        gateway = db.session.scalar(select(Gateway.id).where(Gateway.name == "Sandbox"))
        last_txn = db.session.scalar(select(db.func.max(PaymentTransaction.id)))
        last_invoice = db.session.scalar(select(db.func.max(Invoice.id)))
        runs = db.session.scalars(select(PaymentRun.id).order_by(PaymentRun.id)).all()
        day = db.session.scalar(select(db.func.max(PaymentTransaction.requested_at))).date()

    lists = {
        "transactions": "",
        "transactions, gateway checks": "kind=checks",
        "transactions, all calls": "kind=all",
        "transactions, Success": "status=Success",
        "transactions, Decline": "status=Decline",
        "transactions, Requires Review": "status=Requires+Review",
        "transactions, System Fail": "status=System+Fail",
        "transactions, gateway": f"gateway={gateway}",
        "transactions, invoice": "invoice=INV-1234",
        "transactions, account": "account=HIST-777",
        "transactions, last week": f"since={day.fromordinal(day.toordinal() - 6)}&until={day}",
        "transactions, amount 50-150": "min=50&max=150",
        "transactions, unmapped": "unmapped=1",
        "transactions, by amount": "sort=amount&dir=desc",
    }
    pages: list[tuple[str, str]] = []
    for name, query in lists.items():
        f = TxnFilters.from_args(_args(query))
        key = middle_key(app, f.query(), f.order)
        pages.append((f"{name}: first", f"/transactions/?{query}"))
        if key:
            pages.append((f"{name}: middle", f"/transactions/?{query}&after={key}"))
        pages.append((f"{name}: last", f"/transactions/?{query}&end=last"))
    for name, query in {"Action Required": "filter=action-required", "invoices": ""}.items():
        f = InvoiceFilters.from_args(_args(query))
        with app.app_context():
            user = db.session.scalar(select(User).where(User.username == "bench-pages"))
            key = middle_key(app, f.query(user), f.order)
        pages += [(f"{name}: first", f"/invoices/?{query}"),
                  (f"{name}: middle", f"/invoices/?{query}&after={key}"),
                  (f"{name}: last", f"/invoices/?{query}&end=last")]  # fmt: skip
    pages.append(("dashboard", "/"))

    results = []
    print(f"{'page':<46} {'p50 ms':>8} {'p95 ms':>8}")
    for name, url in [(n, u) for n, u in pages if args.only in n]:
        times = measure(client, url, args.samples)
        results.append((name, p95(times)))
        print(f"{name:<46} {statistics.median(times):8.1f} {results[-1][1]:8.1f}", flush=True)
    for name, make_url in {
        "transaction detail": lambda: f"/transactions/{rng.randint(1, last_txn)}",
        "invoice detail": lambda: f"/invoices/{rng.randint(1, last_invoice)}",
        "run detail": lambda: f"/runs/{rng.choice(runs)}",
    }.items():
        if args.only not in name:
            continue
        times = []
        for _ in range(args.samples):
            times += measure(client, make_url(), 1)
        results.append((name, p95(times)))
        print(
            f"{name + ' (random ones)':<46} {statistics.median(times):8.1f} {results[-1][1]:8.1f}"
        )
    worst = max(results, key=lambda r: r[1])
    over = [name for name, ms in results if ms > GOAL_MS]
    print(
        f"pages over {GOAL_MS:.0f} ms at p95: {len(over)} of {len(results)}"
        + (f" ({', '.join(over)})" if over else "")
    )
    print(f"worst p95: {worst[1]:.1f} ms ({worst[0]}); goal <= {GOAL_MS:.0f} ms: "
          f"ratio {worst[1] / GOAL_MS:.2f} of the goal")  # fmt: skip


def _args(query: str):
    from urllib.parse import parse_qsl

    from werkzeug.datastructures import MultiDict

    return MultiDict(parse_qsl(query))


if __name__ == "__main__":
    main()
