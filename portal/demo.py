"""Demo data: accounts, invoices and gateways that give every one of the seven statuses in a run."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from portal import clock
from portal.accounts.models import Account, PaymentMethod
from portal.auth.models import Role, User
from portal.extensions import db
from portal.gateways import registry
from portal.gateways import service as gateways
from portal.gateways.models import Gateway
from portal.invoices.models import Invoice
from portal.sandbox.server import mount_path, sandbox_credentials

DEMO_USERS = [
    ("admin", "Ada Admin", Role.ADMIN),
    ("supervisor", "Sam Supervisor", Role.SUPERVISOR),
    ("clerk", "Carla Clerk", Role.CLERK),
    ("auditor", "Otto Auditor", Role.AUDITOR),
]

# (account number, name, token, gateway, [(invoice, currency, total, days until due, posted, paid)])
DEMO_ACCOUNTS = [
    ("ACC-1001", "Northwind Traders", "tok_approve", "Sandbox",
     [("INV-1001", "USD", "1250.00", -10, True, False), ("INV-1002", "USD", "320.50", -3, True, False)]),
    ("ACC-1002", "Contoso Ltd", "tok_approve", "Sandbox", [("INV-1003", "EUR", "980.00", -5, True, False)]),
    ("ACC-1003", "Fabrikam Inc", "tok_decline", "Sandbox", [("INV-1004", "USD", "450.00", -7, True, False)]),
    ("ACC-1004", "Tailspin Toys", "tok_cvc", "Sandbox", [("INV-1005", "GBP", "210.00", -4, True, False)]),
    ("ACC-1005", "Wide World Importers", "tok_closed", "Sandbox",
     [("INV-1006", "USD", "1800.00", -12, True, False)]),
    ("ACC-1006", "Adventure Works", "tok_review", "Sandbox", [("INV-1007", "USD", "2400.00", -6, True, False)]),
    ("ACC-1007", "Litware Inc", "tok_hang", "Sandbox", [("INV-1008", "USD", "615.25", -9, True, False)]),
    ("ACC-1008", "Proseware", "tok_drop", "Sandbox", [("INV-1009", "EUR", "99.90", -2, True, False)]),
    ("ACC-1009", "Lucerne Publishing", "tok_approve", "Sandbox (offline)",
     [("INV-1010", "USD", "730.00", -8, True, False)]),
    ("ACC-1010", "Margie's Travel", "tok_unknown", "Sandbox", [("INV-1011", "USD", "150.00", -1, True, False)]),
    ("ACC-1011", "Blue Yonder Airlines", "tok_garbage", "Sandbox",
     [("INV-1012", "USD", "1999.99", -11, True, False)]),
    ("ACC-1012", "Coho Winery", "tok_approve", "Sandbox",
     [("INV-1013", "USD", "500.00", 14, True, False), ("INV-1014", "USD", "75.00", -3, False, False),
      ("INV-1015", "USD", "60.00", -20, True, True)]),
    ("ACC-1013", "Alpine Ski House", "tok_misconfigured", "Sandbox",
     [("INV-1016", "USD", "88.00", -5, True, False)]),
    ("ACC-1014", "Fourth Coffee", "tok_approve", "Sandbox", [("INV-1017", "JPY", "15000", -2, True, False)]),
    # Approved, but the sandbox's own books disagree, so that a run's reconciliation report shows
    # every kind of line: the gateway lost the charge, holds less, holds a second one Settle never
    # sent, or captured a charge it answered as declined.
    ("ACC-1015", "Trey Research", "tok_lost", "Sandbox", [("INV-1018", "USD", "410.00", -4, True, False)]),
    ("ACC-1016", "Woodgrove Bank", "tok_short", "Sandbox", [("INV-1019", "USD", "275.00", -4, True, False)]),
    ("ACC-1017", "Humongous Insurance", "tok_twin", "Sandbox",
     [("INV-1020", "EUR", "640.00", -4, True, False)]),
    ("ACC-1018", "Relecloud", "tok_decline_captured", "Sandbox",
     [("INV-1021", "USD", "1120.00", -4, True, False)]),
]  # fmt: skip


def ensure_users(password: str | None) -> str | None:
    """Create missing demo users; with a password given, set it on all of them. Returns it if set."""
    users = {u.username: u for u in db.session.scalars(select(User))}
    targets = DEMO_USERS if password else [spec for spec in DEMO_USERS if spec[0] not in users]
    if not targets:
        return None
    chosen = password or secrets.token_urlsafe(9)
    for username, display, role in targets:
        user = users.get(username)
        if user is None:
            user = User(username=username, display_name=display, role=role.value)
            db.session.add(user)
        user.set_password(chosen)
    db.session.commit()
    return chosen


def ensure_gateways(sandbox_url: str) -> None:
    """The demo's gateways, kept pointed at this start's sandbox server."""
    specs = [
        ("Sandbox", sandbox_url),
        # Nothing listens on port 9 here: every call is refused before it leaves (System Fail).
        ("Sandbox (offline)", "http://127.0.0.1:9"),
    ]
    for name, url in specs:
        _ensure_gateway(name, "sandbox", url)
    db.session.commit()


# One gateway per provider plugin, each with three customers: one approved, one soft decline and
# one held for review. Authorize.Net's stored token is a "customerProfileId/paymentProfileId" pair;
# Stripe's a "customer|payment method" pair.
PROVIDER_CUSTOMERS = [
    ("Globex", "tok_approve", "410.00"),
    ("Initech", "tok_decline", "95.50"),
    ("Umbrella", "tok_review", "1200.00"),
]
# Where the provider's webhooks come back: a charge that hangs, settled by its webhook, no clerk.
WEBHOOK_CUSTOMERS = [("Hooli", "tok_hang", "88.00")]
# Braintree tells by webhook only a bank-account (ACH) sale's outcome: the sandbox's "bank_" token.
WEBHOOK_TOKEN_FORMAT = {"braintree": "bank_{}"}
TOKEN_FORMAT = {"authorize_net": "{}/1", "stripe": "cus_demo|{}", "adyen": "shopper_demo|{}"}


def _ensure_gateway(name: str, plugin: str, url: str) -> Gateway:
    """The demo's gateway, made (and kept pointed at this start's sandbox) by the same service a
    supervisor uses, so that it is checked and audited as theirs are."""
    gateway = db.session.scalar(select(Gateway).where(Gateway.name == name))
    if gateway is not None and gateway.base_url == url:
        return gateway
    return gateways.save_gateway(
        plugin=plugin, name=name, base_url=url,
        timeout=gateway.timeout_seconds if gateway else Decimal("3"),
        enabled=gateway.enabled if gateway else True,
        # Always given: a new sandbox address clears saved credentials (gateways.service).
        credentials=sandbox_credentials(plugin),
        actor=None, gateway=gateway,
    )  # fmt: skip


def _add_customer(number, name, gateway, token, invoices) -> None:
    today = clock.today()
    account = Account(number=number, name=name)
    db.session.add(account)
    db.session.flush()
    db.session.add(
        PaymentMethod(
            account_id=account.id,
            gateway_id=gateway.id,
            token=token,
            brand="Visa",
            last4=f"{4000 + account.id:04d}"[-4:],
            exp_month=12,
            exp_year=today.year + 3,
        )
    )
    for inv_number, currency, total, days, posted, paid in invoices:
        db.session.add(
            Invoice(
                number=inv_number,
                account_id=account.id,
                currency=currency,
                total=Decimal(total),
                balance=Decimal(0) if paid else Decimal(total),
                due_date=today + timedelta(days=days),
                posted=posted,
            )
        )


def load_providers(sandbox_url: str) -> None:
    """A gateway of every provider plugin, pointed at the sandbox, with its three customers.

    Run at every start: a provider added by a newer release gets its demo data, none twice.
    """
    for plugin in registry.names():
        if plugin == "sandbox":
            continue
        cls = registry.plugin_class(plugin)
        gateway = _ensure_gateway(
            f"{cls.display_name} (sandbox)", plugin, sandbox_url + mount_path(plugin)
        )
        db.session.flush()
        customers = PROVIDER_CUSTOMERS + WEBHOOK_CUSTOMERS * bool(cls.webhook_credential)
        for index, (company, token, total) in enumerate(customers, 1):
            number = f"ACC-{plugin.upper()}-{index}"
            if db.session.scalar(select(Account).where(Account.number == number)):
                continue
            stored = TOKEN_FORMAT.get(plugin, "{}").format(token)
            if (company, token, total) in WEBHOOK_CUSTOMERS:
                stored = WEBHOOK_TOKEN_FORMAT.get(plugin, "{}").format(stored)
            invoice = (f"INV-{plugin.upper()}-{index}", "USD", total, -index, True, False)
            _add_customer(number, f"{company} ({cls.display_name})", gateway, stored, [invoice])
    db.session.commit()


def register_webhooks(sandbox, portal_url: str) -> list[str]:
    """Point the sandbox's webhooks at this portal, for every demo gateway of a provider whose
    webhooks Settle reads (what a merchant does in the provider's dashboard)."""
    hooked = []
    for gateway in db.session.scalars(select(Gateway).order_by(Gateway.id)):
        plugin = registry.plugin_class(gateway.plugin)
        if plugin.webhook_credential and gateway.base_url.startswith(sandbox.url):
            sandbox.webhooks.register(gateway.plugin, f"{portal_url}/webhooks/{gateway.id}")
            hooked.append(gateway.name)
    return hooked


def load(sandbox_url: str) -> bool:
    """Load the demo accounts and invoices once. Returns False when they were there already."""
    ensure_gateways(sandbox_url)
    load_providers(sandbox_url)
    if db.session.scalar(select(Account).where(Account.number == DEMO_ACCOUNTS[0][0])):
        return False
    gateways = {g.name: g for g in db.session.scalars(select(Gateway))}
    for number, name, token, gateway_name, invoices in DEMO_ACCOUNTS:
        _add_customer(number, name, gateways[gateway_name], token, invoices)
    db.session.commit()
    return True
