"""Crash soak: SIGKILL a running payment run at random moments, recover after each kill, and
count against the sandbox's own ledger what no crash may cause. Goal: kills as asked, and 0
double charges, 0 lost transactions, 0 ledger mismatches.

.venv/bin/python benchmarks/crash_soak.py [--kills 200] [--minutes 40] [--seed 1]

Each round starts `flask settle run --wait` as a process of its own and kills it with SIGKILL
after a random 0.3 to 4 s (so while it starts, while it charges and as it ends), then runs `flask settle
recover --alone` (Pending calls sorted by asking the sandbox, the orphaned run finished) and
seeds the next round's invoices. At the end:
- double charges: invoices the sandbox holds two or more approved, not given back charges for;
- lost transactions: sandbox charges whose idempotency key Settle has no transaction for, and
  transactions still Pending after the last recovery;
- ledger mismatches: a Settle Success the sandbox does not hold as approved for the same amount,
  an approved sandbox charge Settle does not call a Success, or an invoice Settle calls paid that
  the sandbox holds no money for (and the other way round).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._processes import FLASK, ROOT, Stack  # noqa: E402

BATCH = 100  # invoices seeded before each round: more than a run charges before its kill


@dataclass
class Soak:
    kills: int = 0
    rounds: int = 0
    charges: int = 0
    double_charges: int = 0
    lost: int = 0
    mismatches: int = 0
    details: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.double_charges == self.lost == self.mismatches == 0


def _amount(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def compare(settle_db: str, ledger_db: str, soak: Soak) -> None:
    settle = sqlite3.connect(settle_db)
    ledger = sqlite3.connect(ledger_db)
    txns = settle.execute(
        "SELECT t.idempotency_key, t.status, i.number, t.amount FROM payment_transactions t"
        " JOIN invoices i ON i.id = t.invoice_id WHERE t.operation = 'charge'"
    ).fetchall()
    by_key = {key: (status, number, _amount(amount)) for key, status, number, amount in txns}
    soak.charges = len(txns)
    held = ledger.execute(
        "SELECT idempotency_key, order_id, amount, approved, voided, refunded FROM charges"
        " WHERE provider = 'sandbox'"
    ).fetchall()
    keeps = Counter()
    for key, order_id, amount, approved, voided, refunded in held:
        kept = approved and not voided and not refunded
        keeps[order_id] += bool(kept)
        mine = by_key.get(key)
        if mine is None:
            soak.lost += 1
            soak.details.append(f"lost: the sandbox holds {key} ({order_id}), Settle has no row")
            continue
        status, number, settle_amount = mine
        if bool(approved) != (status == "Success") or (
            approved and settle_amount != _amount(amount)
        ):
            soak.mismatches += 1
            soak.details.append(f"mismatch: {number} {key}: Settle {status} {settle_amount},"
                                f" sandbox approved={approved} {amount}")  # fmt: skip
    soak.double_charges = sum(1 for n in keeps.values() if n > 1)
    soak.details += [f"double charge: {order}" for order, n in keeps.items() if n > 1]
    held_keys = {row[0] for row in held}
    for key, (status, number, _) in by_key.items():
        if status == "Pending":
            soak.lost += 1
            soak.details.append(f"lost: {number} {key} still Pending after recovery")
        elif status == "Success" and key not in held_keys:
            soak.mismatches += 1
            soak.details.append(f"mismatch: {number} {key} is a Success the sandbox never saw")
    paid = {n for (n,) in settle.execute(
        "SELECT i.number FROM payments p JOIN payment_transactions t ON t.id = p.transaction_id"
        " JOIN invoices i ON i.id = t.invoice_id"
    )}  # fmt: skip
    money = {order for order, n in keeps.items() if n}
    for number in paid ^ money:
        soak.mismatches += 1
        soak.details.append(f"mismatch: {number}: paid in Settle {number in paid},"
                            f" money at the sandbox {number in money}")  # fmt: skip


def soak(kills: int, minutes: float, seed: int, out=print) -> Soak:
    rng = random.Random(seed)
    stack = Stack()
    result = Soak()
    try:
        stack.prepare(BATCH)
        deadline = time.monotonic() + minutes * 60
        while result.kills < kills and time.monotonic() < deadline:
            result.rounds += 1
            run = subprocess.Popen([*FLASK, *stack.run_args()], cwd=ROOT, env=stack.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            try:
                run.wait(timeout=rng.uniform(0.3, 4.0))
            except subprocess.TimeoutExpired:
                run.send_signal(signal.SIGKILL)
                run.wait()
                result.kills += 1
            stack.command("recover", "--alone")  # finishes the killed run's remaining invoices
            stack.command("seed", "--invoices", str(BATCH), "--gateway", "Bench")
            if result.rounds % 10 == 0:
                out(f"  round {result.rounds}: {result.kills} kills")
        stack.command("recover", "--alone")
        compare(f"{stack.folder}/settle.db", f"{stack.sandbox.folder}/sandbox-ledger.db", result)
    finally:
        stack.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    result = soak(args.kills, args.minutes, args.seed)
    for line in result.details[:20]:
        print(line)
    print(f"rounds: {result.rounds}, charges recorded: {result.charges},"
          f" {time.monotonic() - started:.0f} s")  # fmt: skip
    print(f"kills: {result.kills}, double charges: {result.double_charges},"
          f" lost transactions: {result.lost}, ledger mismatches: {result.mismatches}")  # fmt: skip
    sys.exit(0 if result.clean and result.kills == args.kills else 1)


if __name__ == "__main__":
    main()
