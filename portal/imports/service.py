"""CSV import of accounts, payment methods and invoices: read, check, plan, then apply once.

One layout for all three: a `record` column says what each row is (account, payment_method,
invoice); a row is matched to what Settle holds by the source system's `external_id`, so importing
the same file again changes nothing. A file with anything that looks like a card number is refused
whole and never stored: Settle keeps gateway tokens only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from flask import current_app
from sqlalchemy import exists, func, select, update

from portal import clock, jobs
from portal.accounts import service as accounts_service
from portal.accounts.models import Account, PaymentMethod
from portal.audit import service as audit
from portal.errors import DomainError, NotAllowed
from portal.extensions import db
from portal.gateways.models import Gateway
from portal.imports.models import ImportBatch
from portal.invoices import service as invoices
from portal.invoices.models import Invoice
from portal.money import MINOR_UNITS, MoneyError, parse_amount
from portal.payments.models import Allocation
from portal.sql import in_chunks
from portal.transactions import calls
from portal.transactions.models import PaymentTransaction

log = logging.getLogger(__name__)

RECORDS = ("account", "payment_method", "invoice")
COLUMNS = [
    "record", "external_id", "account_external_id", "number", "name", "currency", "total",
    "due_date", "posted", "gateway", "token", "brand", "last4", "exp_month", "exp_year",
    "is_default",
]  # fmt: skip
REQUIRED = {
    "account": ("external_id", "number", "name"),
    "payment_method": ("external_id", "account_external_id", "gateway", "token", "brand", "last4"),
    "invoice": ("external_id", "account_external_id", "number", "currency", "total", "due_date"),
}
MAX_BYTES = 20 * 1024 * 1024
# 200 accounts with a sandbox card each and 1,000 invoices, five of them deliberately bad.
EXAMPLE = Path(__file__).with_name("example.csv")
TEMPLATE = (
    ",".join(COLUMNS) + "\n"
    "account,CRM-1001,,ACC-1001,Fabrikam Ltd,,,,,,,,,,,\n"
    "payment_method,PM-1001,CRM-1001,,,,,,,Sandbox,tok_approve,Visa,4242,12,2030,true\n"
    "invoice,BILL-5001,CRM-1001,INV-5001,,USD,1250.00,2026-12-31,true,,,,,,,\n"
)


class ImportRefused(DomainError):
    """The whole file is refused (not a CSV of Settle's layout, or it holds card data)."""

    field: str | None = None  # the column that holds card data, where that is the reason


@dataclass
class Row:
    line: int
    record: str
    external_id: str
    action: str = "refused"  # create, update, unchanged, refused
    reason: str | None = None
    values: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)


@dataclass
class Plan:
    rows: list[Row]

    @property
    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "unchanged": 0, "refused": 0}
        for row in self.rows:
            counts[row.action] += 1
        return counts

    @property
    def refused(self) -> list[Row]:
        return [r for r in self.rows if r.action == "refused"]


# Card numbers: 13 to 19 digits, perhaps in groups split by spaces or dashes, that pass the Luhn
# check a card number carries. A gateway token never looks like that.
_DIGIT_RUN = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for n, char in enumerate(reversed(digits)):
        d = int(char)
        if n % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_number_in(text: str) -> bool:
    for match in _DIGIT_RUN.finditer(text):
        if luhn_valid(re.sub(r"[ -]", "", match.group())):
            return True
    return False


def decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise ImportRefused(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("The file is not UTF-8 text: save it as CSV UTF-8") from None


def read(content: str) -> list[tuple[int, dict]]:
    """The rows with their line numbers; refuses the whole file for its layout or card data."""
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRefused("The file is empty") from None
    except csv.Error as exc:
        raise ImportRefused(f"Line 1 is not CSV: {exc}") from None
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise ImportRefused(
            f"Line 1: column {unknown[0]!r} is not in Settle's layout; the template lists them"
        )
    if "record" not in header:
        raise ImportRefused("Line 1: no record column; the template lists Settle's columns")
    rows = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            refuse_card_numbers(dict(zip(header, values, strict=False)), f"Line {line}, column ")
            if len(values) > len(header):
                rows.append(
                    (line, {"__error__": f"{len(values)} values for {len(header)} columns"})
                )
                continue
            rows.append((line, {h: v.strip() for h, v in zip(header, values, strict=False)}))
    except csv.Error as exc:
        raise ImportRefused(f"Line {reader.line_num} is not CSV: {exc}") from None
    return rows


def _bool(text: str, default: bool) -> bool:
    if text == "":
        return default
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    raise ValueError(f"{text!r} is not true or false")


def _existing(model, ids: set[str]) -> dict[str, object]:
    found = {}
    for chunk in in_chunks(ids):
        for item in db.session.scalars(select(model).where(model.external_id.in_(chunk))):
            found[item.external_id] = item
    return found


def plan(content: str) -> Plan:
    """What importing the file would do, row by row, without writing anything."""
    return plan_rows(read(content))


def refuse_card_numbers(values: dict[str, str], where: str) -> None:
    """Refuse the whole input if any value looks like a card number; nothing of it is stored."""
    for name, value in values.items():
        if _card_number_in(value):
            refused = ImportRefused(
                f"{where}{name}: this looks like a card number (its digits pass the card check)."
                " Settle stores gateway tokens only, never card numbers: nothing was stored."
                " Export tokens from your gateway instead."
            )
            refused.field = name
            raise refused


def plan_rows(read_rows: list[tuple[int, dict]]) -> Plan:
    """What writing these rows (line number, values as text) would do; the API plans its
    requests here too, so that a file and a request meet the same rules."""
    rows: list[Row] = []
    for line, values in read_rows:
        record = values.get("record", "")
        row = Row(line, record, values.get("external_id", ""), values=values)
        rows.append(row)
        if "__error__" in values:
            row.reason = values["__error__"]
        elif record not in RECORDS:
            row.reason = f"record {record!r} is not one of {', '.join(RECORDS)}"
        else:
            missing = [c for c in REQUIRED[record] if not values.get(c)]
            if missing:
                row.reason = f"{', '.join(missing)} missing"
    ids = {r: {row.external_id for row in rows if row.record == r} for r in RECORDS}
    accounts = _existing(
        Account,
        ids["account"]
        | {row.values.get("account_external_id", "") for row in rows if row.record != "account"},
    )
    methods = _existing(PaymentMethod, ids["payment_method"])
    invoices = _existing(Invoice, ids["invoice"])
    gateways = {g.name: g for g in db.session.scalars(select(Gateway))}
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        if row.reason:
            continue
        key = (row.record, row.external_id)
        if key in seen:
            row.reason = f"{row.record} {row.external_id} is on line {seen[key]} already"
            continue
        seen[key] = row.line
    numbers = _numbers_taken(rows)
    in_file: set[str] = set()
    # Accounts first: a method or invoice of an account refused here is refused too.
    for record in RECORDS:
        for row in rows:
            if row.reason or row.record != record:
                continue
            try:
                if record == "account":
                    _plan_account(row, accounts.get(row.external_id), numbers)
                    in_file.add(row.external_id)
                elif record == "payment_method":
                    _plan_method(row, methods.get(row.external_id), accounts, in_file, gateways)
                else:
                    _plan_invoice(row, invoices.get(row.external_id), accounts, in_file, numbers)
            except (ValueError, MoneyError) as exc:
                row.action, row.reason = "refused", str(exc)
    return Plan(rows)


def _numbers_taken(rows: list[Row]) -> dict[str, dict[str, str | None]]:
    """Account and invoice numbers already used, with the external id of who uses them."""
    taken: dict[str, dict[str, str | None]] = {"account": {}, "invoice": {}}
    for record, model in (("account", Account), ("invoice", Invoice)):
        wanted = {r.values.get("number", "") for r in rows if r.record == record}
        for chunk in in_chunks(wanted):
            for number, external_id in db.session.execute(
                select(model.number, model.external_id).where(model.number.in_(chunk))
            ):
                taken[record][number] = external_id
    return taken


def _decide(row: Row, current, wanted: dict) -> None:
    if current is None:
        row.action = "create"
        return
    row.changes = {
        k: (getattr(current, k), v) for k, v in wanted.items() if getattr(current, k) != v
    }
    row.action = "update" if row.changes else "unchanged"


def _number_free(row: Row, numbers: dict, what: str) -> None:
    owner = numbers[row.record].get(row.values["number"], row.external_id)
    if owner != row.external_id:
        raise ValueError(f"{what} number {row.values['number']} is used by another {what}")
    numbers[row.record][row.values["number"]] = row.external_id


def _plan_account(row: Row, current: Account | None, numbers: dict) -> None:
    v = row.values
    if len(v["number"]) > 40 or len(v["name"]) > 200:
        raise ValueError("number (40) or name (200 characters) too long")
    _number_free(row, numbers, "account")
    _decide(row, current, {"number": v["number"], "name": v["name"]})


def _account_known(row: Row, accounts: dict, in_file: set[str]) -> Account | None:
    ref = row.values["account_external_id"]
    if ref not in accounts and ref not in in_file:
        raise ValueError(f"account {ref} is neither in Settle nor a valid row of this file")
    return accounts.get(ref)


def _plan_method(row, current, accounts, in_file, gateways) -> None:
    v = row.values
    account = _account_known(row, accounts, in_file)
    gateway = gateways.get(v["gateway"])
    if gateway is None:
        raise ValueError(f"no gateway named {v['gateway']!r} (Gateways lists them)")
    if not re.fullmatch(r"\d{4}", v["last4"]):
        raise ValueError("last4 must be the card's last 4 digits")
    month = int(v["exp_month"]) if v.get("exp_month") else None
    year = int(v["exp_year"]) if v.get("exp_year") else None
    if month is not None and not 1 <= month <= 12:
        raise ValueError("exp_month must be 1 to 12")
    if year is not None and not 2000 <= year <= 2100:
        raise ValueError("exp_year must be a year such as 2030")
    if len(v["token"]) > 200 or len(v["brand"]) > 40:
        raise ValueError("token (200) or brand (40 characters) too long")
    if current is not None and account is not None and current.account_id != account.id:
        raise ValueError("a payment method cannot move to another account")
    refusal = current is not None and accounts_service.another_providers_gateway(current, gateway)
    if refusal:
        raise ValueError(f"gateway {gateway.name!r}: {refusal}")
    row.values["gateway_id"] = gateway.id
    _decide(row, current, {
        "gateway_id": gateway.id, "token": v["token"], "brand": v["brand"], "last4": v["last4"],
        "exp_month": month, "exp_year": year, "is_default": _bool(v.get("is_default", ""), True),
    })  # fmt: skip


def _plan_invoice(row, current, accounts, in_file, numbers) -> None:
    v = row.values
    account = _account_known(row, accounts, in_file)
    if v["currency"] not in MINOR_UNITS:
        raise ValueError(f"currency {v['currency']!r} is not one Settle knows")
    total = parse_amount(v["total"], v["currency"])
    if total < 0:
        raise ValueError("total cannot be negative")
    try:
        due = date.fromisoformat(v["due_date"])
    except ValueError:
        raise ValueError(f"due_date {v['due_date']!r} is not a date (YYYY-MM-DD)") from None
    _number_free(row, numbers, "invoice")
    wanted = {"number": v["number"], "currency": v["currency"], "total": total, "due_date": due,
              "posted": _bool(v.get("posted", ""), True)}  # fmt: skip
    if current is not None:
        if account is not None and current.account_id != account.id:
            raise ValueError("an invoice cannot move to another account")
        _refuse_change_of_money_or_number(current, v["number"], v["currency"], total)
    _decide(row, current, wanted)


def _refuse_change_of_money_or_number(current: Invoice, number: str, currency: str, total) -> None:
    """The rules an invoice's change must meet, when it is planned and again when it is written
    (under the invoice's row lock: a run may have charged it in between). Its total and currency
    are frozen once it has money history; its number, while one of its charges has an outcome
    Settle does not know (the gateway may hold it under that number)."""
    if (current.currency != currency or current.total != total) and _has_money_history(current.id):
        raise ValueError(
            f"invoice {current.number} was charged or paid already: change its total or "
            "currency in Settle's billing source only before it is charged"
        )
    if current.number != number:
        unknown = calls.charge_of_unknown_outcome(current.id)
        if unknown is not None:
            raise ValueError(
                f"invoice {current.number} cannot be renumbered while charge #{unknown.id} "
                f"({unknown.status}) has an outcome Settle does not know: the gateway may hold it "
                "under this number. Renumber it once a clerk has finalized that charge"
            )


def _has_money_history(invoice_id: int) -> bool:
    return db.session.scalar(
        select(
            exists().where(PaymentTransaction.invoice_id == invoice_id)
            | exists().where(Allocation.invoice_id == invoice_id)
        )
    )


# Preview, then apply --------------------------------------------------------------------------


def preview(filename: str, raw: bytes, actor) -> ImportBatch:
    """Check and plan an uploaded file, and keep it for a supervisor to confirm. Nothing of a
    refused file is kept."""
    content = decode(raw)
    result = plan(content)
    batch = ImportBatch(
        filename=(filename or "import.csv")[:200], sha256=hashlib.sha256(raw).hexdigest(),
        content=content, counts=result.counts, uploaded_by_id=getattr(actor, "id", None),
    )  # fmt: skip
    db.session.add(batch)
    db.session.flush()
    return batch


def apply(batch_id: int, actor, background_rows: int | None = None) -> Plan | None:
    """Write what the file says, once: planned again now (Settle may have changed since the
    preview), refused rows left out, audited with its counts. A file of more rows than
    `background_rows` is only claimed here (state Applying, committed) and None is returned: the
    caller hands it to the background (submit_import), which writes it in batches."""
    won = db.session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id, ImportBatch.applied_at.is_(None))
        .values(applied_at=clock.now(), applied_by_id=getattr(actor, "id", None))
    ).rowcount
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None:
        raise DomainError(f"Import {batch_id} does not exist")
    if won != 1:
        db.session.rollback()
        batch = db.session.get(ImportBatch, batch_id, populate_existing=True)
        raise NotAllowed(
            f"Import #{batch.id} was applied already by {batch.applied_by or 'Settle'} at "
            f"{clock.shown(batch.applied_at)}"
        )
    # The preview's counts decide where it is written; the background plans it again itself.
    batch.rows_total = batch.counts.get("create", 0) + batch.counts.get("update", 0)
    if background_rows is not None and batch.rows_total > background_rows:
        batch.state = "Applying"
        return None
    result = plan(batch.content)
    batch.rows_total = sum(1 for r in result.rows if r.action in ("create", "update"))
    write(result)
    _applied(batch, result, actor)
    return result


def _applied(batch: ImportBatch, result: Plan, actor) -> None:
    batch.counts, batch.state, batch.finished_at = result.counts, "Applied", clock.now()
    batch.rows_done = batch.rows_total
    audit.record(
        "import.applied", batch, actor=actor, after={"file": batch.filename, **result.counts}
    )


# Rows written per database transaction when a large file is applied in the background.
WRITE_BATCH = 1000


def apply_in_background(batch_id: int) -> None:
    """Write a claimed (Applying) import in batches, each committed with its progress. A crash
    leaves the batches written so far: importing the same file again writes only the rest."""
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None or batch.state != "Applying":
        return
    actor = batch.applied_by
    try:
        result = plan(batch.content)
        todo = [r for record in RECORDS for r in result.rows
                if r.record == record and r.action in ("create", "update")]  # fmt: skip
        batch.rows_total, batch.rows_done = len(todo), 0
        db.session.commit()
        for start in range(0, len(todo), WRITE_BATCH):
            write(Plan(todo[start : start + WRITE_BATCH]))
            batch.rows_done = min(len(todo), start + WRITE_BATCH)
            db.session.commit()
        _applied(batch, result, actor)
        db.session.commit()
    except Exception as exc:
        log.exception("import #%s failed", batch_id)
        db.session.rollback()
        batch = db.session.get(ImportBatch, batch_id)
        batch.state, batch.finished_at = "Failed", clock.now()
        batch.error = (
            f"Stopped after {batch.rows_done} of {batch.rows_total} rows ({type(exc).__name__})."
            " The rows written so far are kept; import the same file again to write the rest:"
            " its preview shows what is left."
        )
        audit.record("import.failed", batch, actor=actor,
                     after={"file": batch.filename, "rows_done": batch.rows_done})  # fmt: skip
        db.session.commit()


def write(result: Plan) -> None:
    """Accounts first, so that the methods and invoices of the same file find theirs."""
    by_external = {}
    for record in RECORDS:
        for row in result.rows:
            if row.record != record or row.action not in ("create", "update"):
                continue
            if record == "account":
                by_external[row.external_id] = _write_account(row)
            elif record == "payment_method":
                _write_method(row, by_external)
            else:
                _write_invoice(row, by_external)
        db.session.flush()


def _account_id(row: Row, by_external: dict) -> int:
    ref = row.values["account_external_id"]
    if ref in by_external:
        return by_external[ref].id
    return db.session.scalar(select(Account.id).where(Account.external_id == ref))


def _write_account(row: Row) -> Account:
    v = row.values
    account = db.session.scalar(select(Account).where(Account.external_id == row.external_id))
    if account is None:
        account = Account(external_id=row.external_id)
        db.session.add(account)
    account.number, account.name = v["number"], v["name"]
    db.session.flush()
    return account


def _write_method(row: Row, by_external: dict) -> None:
    v = row.values
    method = db.session.scalar(
        select(PaymentMethod).where(PaymentMethod.external_id == row.external_id)
    )
    if method is None:
        method = PaymentMethod(
            external_id=row.external_id, account_id=_account_id(row, by_external)
        )
        db.session.add(method)
    elif "token" in row.changes:
        method.state = "Active"  # a new token is the customer's updated card
    method.gateway_id, method.token, method.brand, method.last4 = (
        v["gateway_id"],
        v["token"],
        v["brand"],
        v["last4"],
    )
    method.exp_month = int(v["exp_month"]) if v.get("exp_month") else None
    method.exp_year = int(v["exp_year"]) if v.get("exp_year") else None
    method.is_default = _bool(v.get("is_default", ""), True)


def _write_invoice(row: Row, by_external: dict) -> None:
    """Write an invoice's row, looking again under its row lock: what was planned may no longer
    hold (a run charged it, a clerk paid it since the preview), and then the row is refused now,
    with its reason, and nothing of it is written."""
    v = row.values
    total = parse_amount(v["total"], v["currency"])
    found = db.session.scalar(select(Invoice.id).where(Invoice.external_id == row.external_id))
    if found is None:
        invoice = Invoice(external_id=row.external_id, account_id=_account_id(row, by_external))
        db.session.add(invoice)
        invoice.balance = total
    else:
        invoice = invoices.lock_invoice(found)
        try:
            _refuse_change_of_money_or_number(invoice, v["number"], v["currency"], total)
        except ValueError as exc:
            row.action, row.reason, row.changes = "refused", f"refused when written: {exc}", {}
            return
        # Total less what is allocated, never overwritten: the money rule allows a new total
        # only with no money history, but the balance is derived the one way regardless.
        invoice.balance = total - _allocated(invoice.id)
    invoice.number, invoice.currency, invoice.total = v["number"], v["currency"], total
    invoice.due_date = date.fromisoformat(v["due_date"])
    invoice.posted = _bool(v.get("posted", ""), True)


def _allocated(invoice_id: int):
    return db.session.scalar(
        select(func.coalesce(func.sum(Allocation.amount), 0)).where(
            Allocation.invoice_id == invoice_id, Allocation.unallocated_at.is_(None)
        )
    )


def recent_batches(limit: int = 20) -> list[ImportBatch]:
    return list(
        db.session.scalars(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit))
    )


def submit_import(batch_id: int) -> None:
    """Write a large, claimed import in the background: a Celery worker, or a thread here."""
    app = current_app._get_current_object()
    where = jobs.executor(app)
    if where == "broker":
        jobs.send("settle.apply_import", batch_id)
        return
    jobs.in_background(app, where, f"import-{batch_id}", apply_in_background, batch_id)
