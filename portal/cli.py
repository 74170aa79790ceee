"""The `flask settle` command group."""

from __future__ import annotations

import logging
import sys
import threading

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from portal.extensions import db


@click.group("settle")
def settle_cli():
    """Settle's own commands."""


def _sandbox_url() -> str:
    cfg = current_app.config
    return f"http://{cfg['SETTLE_SANDBOX_HOST']}:{cfg['SETTLE_SANDBOX_PORT']}"


def _start_sandbox(ledger_path: str, latency: float = 0.0, rate_limit: int | None = None):
    from portal.sandbox.server import SandboxServer

    cfg = current_app.config
    return SandboxServer(
        cfg["SETTLE_SANDBOX_HOST"],
        cfg["SETTLE_SANDBOX_PORT"],
        ledger_path=ledger_path,
        settle_after=cfg["SETTLE_SANDBOX_SETTLE_AFTER"],
        latency=latency,
        rate_limit=rate_limit,
        webhook_delay=cfg["SETTLE_SANDBOX_WEBHOOK_DELAY"],
        webhook_twice=cfg["SETTLE_SANDBOX_WEBHOOK_TWICE"],
        webhook_disorder=cfg["SETTLE_SANDBOX_WEBHOOK_DISORDER"],
    )


@settle_cli.command("check-mappings")
def check_mappings_command():
    """Load and check every shipped gateway code mapping."""
    from portal.gateways.mapping import MappingError
    from portal.gateways.registry import check_mappings

    try:
        mappings = check_mappings()
    except MappingError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    for name, mapping in mappings.items():
        click.echo(
            f"{name}: {len(mapping.codes)} codes, default {mapping.default} ({mapping.path})"
        )


@settle_cli.command("demo")
@with_appcontext
def demo_command():
    """Create the database schema and load the demo data (once)."""
    _prepare()


def _prepare() -> None:
    from portal import demo

    upgrade()
    _check_vault()
    loaded = demo.load(_sandbox_url())
    password = demo.ensure_users(current_app.config["SETTLE_DEMO_PASSWORD"])
    click.echo(
        "Demo data loaded." if loaded else "Demo data was there already; nothing duplicated."
    )
    click.echo("Demo logins: " + ", ".join(u[0] for u in demo.DEMO_USERS))
    if password:
        click.echo(f"Password for all of them: {password}")
    else:
        click.echo(
            "Password: the one printed at the first start (set SETTLE_DEMO_PASSWORD to change it)."
        )


def _check_vault() -> None:
    from portal import vault

    try:
        vault.check(db.session)
    except vault.VaultError as exc:
        raise click.ClickException(str(exc)) from None


@settle_cli.group("audit")
def audit_cli():
    """The audit trail's hash chain."""


@audit_cli.command("verify")
@with_appcontext
def audit_verify_command():
    """Seal what is not sealed yet, then walk the chain: exit 1 on a changed or removed event."""
    from portal.audit import chain

    sealed = chain.seal()
    verdict = chain.verify()
    if sealed:
        click.echo(f"Sealed {sealed} event(s) written since the last seal.")
    for problem in verdict.problems:
        click.echo(f"PROBLEM: {problem}")
    if not verdict.intact:
        raise click.ClickException(
            f"The audit trail is not intact: {len(verdict.problems)} problem(s) in"
            f" {verdict.events} event(s)"
        )
    click.echo(
        f"{verdict.events} event(s) checked: the chain is intact. Head: {verdict.head}"
        " (keep it elsewhere: a later verify must reach it)"
    )


@settle_cli.command("rotate-key")
@with_appcontext
def rotate_key_command():
    """Seal every gateway's saved credentials under a new key (see README, Security)."""
    from portal import vault

    _check_vault()
    try:
        count = vault.rotate(db.session)
    except vault.VaultError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    where = vault.current().source
    click.echo(f"Sealed the credentials of {count} gateway(s) under the first key of {where}.")
    if where == vault.ENV:
        click.echo(f"Every row is under the first key now: the others may leave {vault.ENV}.")
    else:
        click.echo("The previous key stays second in the file until the next rotation.")


@settle_cli.command("seed")
@click.option("--invoices", "count", type=int, required=True, help="How many invoices to add.")
@click.option(
    "--gateway", default="Sandbox", show_default=True, help="The gateway they charge through."
)
@click.option("--token", default="tok_approve", show_default=True, help="The sandbox test token.")
@click.option(
    "--history",
    "calls",
    type=int,
    default=None,
    help="Instead of due invoices: invoices with this many past gateway calls of daily runs.",
)
@click.option("--days", type=int, default=365, show_default=True, help="How far the history goes.")
@with_appcontext
def seed_command(count: int, gateway: str, token: str, calls: int | None, days: int):
    """Add many invoices fast (benchmarks, load tests), after the demo data: due ones, or with a
    history of past runs (--history) to measure the pages against."""
    from portal.errors import DomainError
    from portal.seed import seed_history, seed_invoices

    try:
        if calls is None:
            added = seed_invoices(count, gateway, token)
            click.echo(f"Added {added} invoices charged through {gateway}.")
            return
        if days < 1:
            raise DomainError("Give --days of at least 1")
        added, made = seed_history(count, calls, gateway, days)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Added {added} invoices and {made} gateway calls of {days} days of runs through {gateway}."
    )


@settle_cli.command("run")
@click.option("--due", "due", required=True, help="Charge invoices due on or before YYYY-MM-DD.")
@click.option("--gateway", default=None, help="Only payment methods at this gateway (its name).")
@click.option("--currency", default=None, help="Only invoices in this ISO 4217 currency.")
@click.option("--limit", type=int, default=None, help="Charge at most this many invoices.")
@click.option("--wait", is_flag=True, help="Return when the run is done and print its counts.")
@with_appcontext
def run_command(due: str, gateway: str | None, currency: str | None, limit: int | None, wait: bool):
    """Start a payment run: sent to the Celery workers with a broker, else executed here (--wait)."""
    from datetime import date

    from sqlalchemy import select

    from portal import jobs
    from portal.errors import DomainError
    from portal.gateways.models import Gateway
    from portal.runs import dispatch
    from portal.runs.models import PaymentRun
    from portal.runs.service import start_run

    try:
        due_on = date.fromisoformat(due)
    except ValueError:
        raise click.BadParameter(
            f"{due!r} is not a date: use YYYY-MM-DD", param_hint="--due"
        ) from None
    if not wait and not jobs.uses_broker():
        raise click.UsageError("Without a broker the command runs the run itself: add --wait.")
    gateway_id = None
    if gateway:
        row = db.session.scalar(select(Gateway).where(Gateway.name == gateway))
        if row is None:
            raise click.BadParameter(f"no gateway named {gateway!r}", param_hint="--gateway")
        gateway_id = row.id
    try:
        run = start_run(due_on=due_on, actor=None, currency=currency and currency.upper(),
                        gateway_id=gateway_id, invoice_limit=limit)  # fmt: skip
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    # The same choice as the portal's: the Celery workers with a broker, else this process.
    if not dispatch.submit_run(run.id, here=True):
        # Exit non-zero, but say plainly that the run is not lost.
        raise click.ClickException(
            f"payment run #{run.id} is Queued and waits for the broker: "
            + db.session.get(PaymentRun, run.id, populate_existing=True).dispatch_error
        )
    if jobs.uses_broker():
        click.echo(f"payment run #{run.id}: sent to the Celery workers")
        if not wait:
            return
        run = dispatch.wait_until_finished(run.id)
    else:
        run = db.session.get(PaymentRun, run.id, populate_existing=True)
    click.echo(
        f"payment run #{run.id}: {run.state}; selected {run.selected_count}, "
        f"success {run.success_count}, decline {run.decline_count}, failure {run.failure_count}, "
        f"indeterminate {run.indeterminate_count}, review {run.review_count}, "
        f"skipped {run.skipped_count}"
    )


@settle_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print what the import would do; write nothing.")
@with_appcontext
def import_command(path: str, dry_run: bool):
    """Import accounts, payment methods and invoices from a CSV file in Settle's layout."""
    from pathlib import Path

    from portal.errors import DomainError
    from portal.imports import service

    raw = Path(path).read_bytes()
    try:
        if dry_run:
            result = service.plan(service.decode(raw))
        else:
            batch = service.preview(Path(path).name, raw, None)
            db.session.commit()
            result = service.apply(batch.id, None)
            db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    for row in result.refused:
        click.echo(f"line {row.line}: refused: {row.reason}", err=True)
    c = result.counts
    verb = "would be" if dry_run else "were"
    click.echo(
        f"{c['create']} rows {verb} created, {c['update']} updated, {c['unchanged']} unchanged, "
        f"{c['refused']} refused"
    )


@settle_cli.command("recover")
@click.option(
    "--alone",
    is_flag=True,
    help="No other Settle process is running: treat every Pending call as orphaned now.",
)
@with_appcontext
def recover_command(alone: bool):
    """Sort every call left Pending by a crash (asking the gateway) and end orphaned runs."""
    from portal import jobs
    from portal.sweeps.recovery import recover

    report = recover(alone=alone)
    for line in report.transactions:
        click.echo(line)
    # Without a broker an orphaned run goes on in a thread of this process: wait for it, or it
    # would die with the command (and stay Running, blocking the next run of its filter).
    jobs.wait_for_threads(current_app._get_current_object(), timeout=None)
    for run_id in report.runs:
        click.echo(f"payment run #{run_id}: finished after the interruption")
    if not report.transactions and not report.runs:
        click.echo("Nothing to recover.")


def _recover_in_background(app) -> None:
    """At start, sort what a crash left behind, without holding up the portal.

    The embedded default is one process: nothing started before this start can still be in flight.
    """
    from portal.sweeps.recovery import recover

    def work():
        with app.app_context():
            try:
                report = recover(alone=True)
                for line in report.transactions:
                    logging.getLogger("portal.recovery").info(line)
            except Exception:
                logging.getLogger("portal.recovery").exception("recovery at start failed")
            finally:
                db.session.remove()

    threading.Thread(target=work, name="settle-recovery", daemon=True).start()


@settle_cli.command("janitor")
@with_appcontext
def janitor_command():
    """One pass of the janitor: ask the gateways about locked charges that are due a check."""
    from portal.sweeps.janitor import run_janitor

    report = run_janitor()
    for line in report.looked_up + report.voided:
        click.echo(line)
    if not report.looked_up and not report.voided:
        click.echo("No locked charge is due a check.")


@settle_cli.command("sandbox")
@click.option(
    "--latency",
    type=float,
    default=0.0,
    help="Seconds every answer waits (load tests).",
    show_default=True,
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Requests a second it answers; past that, HTTP 429 with Retry-After: 1 (load tests).",
)
@with_appcontext
def sandbox_command(latency: float, rate_limit: int | None):
    """Run the sandbox gateway server alone, in the foreground."""
    server = _start_sandbox(
        f"{current_app.instance_path}/sandbox-ledger.db", latency=latency, rate_limit=rate_limit
    )
    click.echo(f"Sandbox gateway server on {server.url} (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


@settle_cli.command("serve")
@with_appcontext
def serve_command():
    """The embedded default: migrate, demo data, the sandbox server, and the portal."""
    from werkzeug.serving import run_simple

    from portal.web.security import QuietRequestHandler

    _prepare()
    # After the migrations, whose alembic.ini logging setup would otherwise hide Settle's own.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = current_app._get_current_object()
    try:
        sandbox = _start_sandbox(f"{app.instance_path}/sandbox-ledger.db").start()
    except OSError as exc:
        click.echo(
            f"error: the sandbox gateway server cannot listen on {_sandbox_url()}: {exc}", err=True
        )
        click.echo("Set SETTLE_SANDBOX_PORT to a free port.", err=True)
        sys.exit(1)
    db.session.remove()
    from portal import jobs

    if jobs.uses_broker(app):
        # Workers elsewhere may be mid-call: recovery and the janitor are Celery beat's to run.
        problem = jobs.broker_problem(app, fresh=True)
        click.echo(
            problem or f"Payment runs go to the Celery workers through {jobs.broker_display(app)}"
        )
    else:
        from portal import schedule

        _recover_in_background(app)
        schedule.start_embedded(app)  # the janitor and recovery, at beat's cadences
    host, port = app.config["SETTLE_HOST"], app.config["SETTLE_PORT"]
    from portal import demo

    hooked = demo.register_webhooks(sandbox, f"http://{_loopback(host)}:{port}")
    db.session.remove()
    click.echo(f"Sandbox gateway server: {sandbox.url} (webhooks to {', '.join(hooked) or 'none'})")
    click.echo(f"Settle portal: http://{host}:{port}/   (Ctrl-C stops it)")
    try:
        run_simple(
            host, port, app, threaded=True, use_reloader=False,
            request_handler=QuietRequestHandler,
        )  # fmt: skip
    finally:
        sandbox.stop()
