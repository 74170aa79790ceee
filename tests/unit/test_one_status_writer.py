"""A transaction's status is written in one function (transactions/calls.py: write_answer), so that
no writer can bypass the status's action: this reads the product's code and finds every other."""

import ast
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[2] / "portal"
# A list's filter value, not a transaction's status.
NOT_A_TRANSACTION = {("listings/transactions.py", "f")}


def _status_writes():
    for path in PORTAL.rglob("*.py"):
        where = path.relative_to(PORTAL).as_posix()
        if where.startswith(("sandbox/", "migrations/")):
            continue  # the test double's own ledger, and the schema's history
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "status":
                    owner = target.value.id if isinstance(target.value, ast.Name) else "?"
                    if (where, owner) not in NOT_A_TRANSACTION:
                        yield where, owner, node.lineno
            if isinstance(node, ast.Call) and any(k.arg == "status" for k in node.keywords):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("values", "PaymentTransaction"):  # an UPDATE, or a new row
                    yield where, name, node.lineno


def test_only_write_answer_writes_a_transactions_status():
    writes = {(where, owner) for where, owner, _ in _status_writes()}
    assert writes == {("transactions/calls.py", "txn")}
