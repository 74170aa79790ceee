"""A reconciliation report: what Settle and a gateway each said about a run's or a day's charges."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal import clock
from portal.extensions import db
from portal.money import Money
from portal.reconciliation.compare import Kind
from portal.types import Amount, JSONValue


class ReportState:
    ASKING = "Asking the gateways"
    DONE = "Done"
    INCOMPLETE = "Incomplete"


class ReconciliationReport(db.Model):
    __tablename__ = "reconciliation_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A run's report, or a day's (the portal's time zone): exactly one of the two.
    run_id: Mapped[int | None] = mapped_column(ForeignKey("payment_runs.id"), index=True)
    day: Mapped[date | None] = mapped_column(index=True)
    # The period asked of the gateways, in UTC.
    since: Mapped[datetime]
    until: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(30), default=ReportState.ASKING)
    # Per gateway: {"id", "name", "listed", "problem"}; a problem names why it is not reconciled.
    gateways: Mapped[list] = mapped_column(JSONValue, default=list)
    # Lines per kind (Kind.slug), and the charges still in flight that were not compared.
    counts: Mapped[dict] = mapped_column(JSONValue, default=dict)
    in_flight: Mapped[int] = mapped_column(default=0)
    asked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    asked_at: Mapped[datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[datetime | None]

    run = relationship("PaymentRun")
    asked_by = relationship("User")

    @property
    def title(self) -> str:
        if self.run_id:
            return f"Payment run #{self.run_id}"
        return f"Charges of {self.day.isoformat()}"

    @property
    def problems(self) -> list[dict]:
        return [g for g in self.gateways if g.get("problem")]

    @property
    def disagreements(self) -> int:
        return sum(n for kind, n in self.counts.items() if kind != "matched")


class ReconciliationLine(db.Model):
    __tablename__ = "reconciliation_lines"
    __table_args__ = (Index("ix_reconciliation_lines_report_kind", "report_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_reports.id"))
    kind: Mapped[str] = mapped_column(String(20))  # Kind.slug
    gateway_id: Mapped[int] = mapped_column(ForeignKey("gateways.id"))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("payment_transactions.id"))
    # The invoice: Settle's charge's, or the one whose number a gateway-only charge carries.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    order_id: Mapped[str | None] = mapped_column(String(120))
    settle_amount: Mapped[Decimal | None] = mapped_column(Amount)
    settle_currency: Mapped[str | None] = mapped_column(String(3))
    settle_status: Mapped[str | None] = mapped_column(String(20))
    settle_view: Mapped[str | None] = mapped_column(String(40))
    gateway_reference: Mapped[str | None] = mapped_column(String(120))
    gateway_amount: Mapped[Decimal | None] = mapped_column(Amount)
    gateway_currency: Mapped[str | None] = mapped_column(String(3))
    gateway_state: Mapped[str | None] = mapped_column(String(20))
    gateway_at: Mapped[datetime | None]
    advice: Mapped[str] = mapped_column(Text)

    gateway = relationship("Gateway")
    transaction = relationship("PaymentTransaction")
    invoice = relationship("Invoice")

    @property
    def kind_name(self) -> str:
        return Kind.from_slug(self.kind).value

    @property
    def settle_money(self) -> Money | None:
        if self.settle_amount is None:
            return None
        return Money(self.settle_amount, self.settle_currency)

    @property
    def gateway_money(self) -> Money | None:
        if self.gateway_amount is None:
            return None
        return Money(self.gateway_amount, self.gateway_currency)
