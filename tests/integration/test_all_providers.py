"""One payment run through every provider plugin at once, each over its own wire format."""

import pytest
from sqlalchemy import select

from portal.demo import TOKEN_FORMAT
from portal.extensions import db
from portal.gateways import registry
from portal.gateways.models import Gateway
from portal.sandbox.server import sandbox_credentials
from portal.transactions.models import PaymentTransaction

pytestmark = pytest.mark.integration

PROVIDERS = [name for name in registry.names() if name != "sandbox"]
EXPECTED = {"tok_approve": "Success", "tok_decline": "Decline", "tok_review": "Requires Review",
            "tok_cvc": "Validation Error", "tok_closed": "Permanent Fail",
            "tok_hang": "Indeterminate", "tok_misconfigured": "System Fail"}  # fmt: skip


def test_a_run_through_every_provider_gives_each_status_with_the_providers_codes(
    make_invoice, sandbox, run_for, monkeypatch
):
    assert PROVIDERS, "no provider plugin is installed"
    # A time-out well clear of a busy machine's slowest answer, a hang well past the time-out.
    monkeypatch.setattr(sandbox.faults, "hang_seconds", 12.0)
    invoices = {}
    for name in PROVIDERS:
        gateway = Gateway(name=name, plugin=name, base_url=sandbox.url_for(name),
                          credentials=sandbox_credentials(name), timeout_seconds=4)  # fmt: skip
        db.session.add(gateway)
        db.session.commit()
        for token in EXPECTED:
            stored = TOKEN_FORMAT.get(name, "{}").format(token)
            invoices[name, token] = make_invoice(token=stored, gateway=gateway).id
    run = run_for()
    assert run.selected_count == len(invoices)
    for (name, token), invoice_id in invoices.items():
        txn = db.session.scalar(
            select(PaymentTransaction).where(PaymentTransaction.invoice_id == invoice_id)
        )
        assert txn.status == EXPECTED[token], (name, token, txn.provider_code, txn.provider_message)
        if token != "tok_hang":
            assert txn.provider_code, (name, token)
            assert not txn.unmapped, (name, token, txn.provider_code)
        assert txn.raw_request is not None
