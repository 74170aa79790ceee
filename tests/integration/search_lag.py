"""The sandbox's search falling behind its ledger, for the money model: a charge the gateway
holds that its search (by idempotency key or order id: what a lookup without the provider's
reference asks, and every lookup of the Sandbox plugin) does not return yet.

Providers' searches are eventually consistent (Stripe's search documentation: data is searchable
"in less than a minute" under normal conditions, so not for read-after-write): a lookup made too
early hears "not found" while the money is held. A search index is late, never forgetful: a
charge a search has returned once is not hidden again.

It wraps one SandboxServer's ledger object (what every emulation of that server reads) for one
example of the model, and leaves the ledger's rows alone, so that the model's invariants, which
read the whole ledger, still see every charge. Settle's database is never touched."""

from __future__ import annotations

import threading

from portal.sandbox.ledger import Ledger

WRAPPED = ("find", "add_charge")


class SearchLag:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self._lock = threading.Lock()
        self.hidden: set[str] = set()  # ids of charges the search does not return yet
        self.seen: set[str] = set()  # ids of charges a search has returned: never hidden again
        self.behind = False  # every charge made while behind is hidden until it catches up

    def install(self) -> SearchLag:
        self.uninstall()
        self._find, self._add_charge = self.ledger.find, self.ledger.add_charge
        self.ledger.find, self.ledger.add_charge = self.find, self.add_charge
        return self

    def uninstall(self) -> None:
        for name in WRAPPED:
            vars(self.ledger).pop(name, None)

    # What the emulations call ------------------------------------------------------------------

    def find(self, provider: str, **by) -> list:
        found = self._find(provider, **by)
        with self._lock:
            shown = [c for c in found if c["id"] not in self.hidden]
            self.seen.update(c["id"] for c in shown)
        return shown

    def add_charge(self, *args, **kwargs) -> dict:
        charge = self._add_charge(*args, **kwargs)
        with self._lock:
            if self.behind:
                self.hidden.add(charge["id"])
        return charge

    # What the model's rules do -----------------------------------------------------------------

    def unseen(self) -> list[dict]:
        """Charges of the ledger that no search has returned and that are not hidden yet, in the
        order they were made."""
        with self._lock:
            left_out = self.seen | self.hidden
        return [c for c in self.ledger.all() if c["id"] not in left_out]

    def hide(self, charge_id: str) -> None:
        with self._lock:
            self.hidden.add(charge_id)

    def fall_behind(self) -> None:
        with self._lock:
            self.behind = True

    def waiting(self) -> list[str]:
        """The hidden charges, in the order they were made."""
        with self._lock:
            hidden = set(self.hidden)
        return [c["id"] for c in self.ledger.all() if c["id"] in hidden]

    def catch_up(self, charge_id: str | None = None) -> None:
        """One charge becomes searchable; or (None) every one, and the search is not behind."""
        with self._lock:
            if charge_id is None:
                self.hidden.clear()
                self.behind = False
            else:
                self.hidden.discard(charge_id)
