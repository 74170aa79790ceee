"""The Unmapped codes queue, and each gateway's coverage: the read side of codes no mapping knows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from portal import clock
from portal.extensions import db
from portal.gateways import registry
from portal.gateways.mapping import CodeEntry
from portal.gateways.models import Gateway, UnmappedReview
from portal.gateways.suggest import suggested_entry
from portal.statuses import GatewayStatus
from portal.transactions.models import PaymentTransaction

COVERAGE_DAYS = 30


@dataclass(frozen=True)
class UnmappedCode:
    plugin: str
    provider: str
    code: str
    times: int
    first_seen: datetime
    last_seen: datetime
    fell_back_to: str
    latest: PaymentTransaction  # its message, raw answer and link
    guessed: GatewayStatus
    suggestion: str
    review: UnmappedReview | None
    # The shipped mapping knows the code now (after a restart with a newer codes.yaml).
    now_mapped: CodeEntry | None


def queue() -> list[UnmappedCode]:
    """Every code an answer carried that no mapping knew, the most recently seen first."""
    t = PaymentTransaction
    rows = db.session.execute(
        select(Gateway.plugin, t.provider_code, func.count(), func.min(t.answered_at),
               func.max(t.answered_at), func.max(t.id))
        .join(Gateway, Gateway.id == t.gateway_id)
        .where(t.unmapped.is_(True), t.provider_code.is_not(None))
        .group_by(Gateway.plugin, t.provider_code)
        .order_by(func.max(t.answered_at).desc())
    ).all()  # fmt: skip
    reviews = {(r.plugin, r.code): r for r in db.session.scalars(select(UnmappedReview))}
    found = []
    for plugin, code, times, first, last, latest_id in rows:
        mapping = registry.shipped_mapping(plugin)
        latest = db.session.get(PaymentTransaction, latest_id)
        http = (latest.raw_response or {}).get("http_status")
        guessed, suggestion = suggested_entry(code, latest.provider_message, http, mapping.default)
        found.append(UnmappedCode(
            plugin=plugin, provider=mapping.provider, code=code, times=times, first_seen=first,
            last_seen=last, fell_back_to=latest.status, latest=latest, guessed=guessed,
            suggestion=suggestion, review=reviews.get((plugin, code)),
            now_mapped=mapping.codes.get(code),
        ))  # fmt: skip
    return found


def counts_by_gateway() -> dict[int, int]:
    return dict(
        db.session.execute(
            select(PaymentTransaction.gateway_id, func.count())
            .where(PaymentTransaction.unmapped.is_(True))
            .group_by(PaymentTransaction.gateway_id)
        ).all()
    )


def coverage(now: datetime | None = None) -> dict[int, tuple[int, int]]:
    """For each gateway, of the answers with a provider's code in the last 30 days: how many
    its mapping knew, and how many there were."""
    since = (now or clock.now()) - timedelta(days=COVERAGE_DAYS)
    t = PaymentTransaction
    rows = db.session.execute(
        select(t.gateway_id, func.sum(case((t.unmapped.is_(False), 1), else_=0)), func.count())
        .where(t.provider_code.is_not(None), t.answered_at >= since)
        .group_by(t.gateway_id)
    ).all()
    return {gateway_id: (int(mapped or 0), total) for gateway_id, mapped, total in rows}
