"""A charge's lock, unlock, reopening and finalization are written in one module
(transactions/effects.py, the lifecycle's applier), so that no path (a webhook, an import, the
API, autovoid) can forget a rule: this reads the product's code and finds every other writer."""

import ast
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[2] / "portal"
LIFECYCLE_COLUMNS = {"finalization", "finalized_at", "finalized_by_id", "locked_invoice",
                     "corrective_action", "locked_at"}  # fmt: skip


def _writes():
    for path in PORTAL.rglob("*.py"):
        where = path.relative_to(PORTAL).as_posix()
        if where.startswith(("sandbox/", "migrations/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                for part in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(part, ast.Attribute) and part.attr in LIFECYCLE_COLUMNS:
                        yield where, part.attr
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in ("values", "update", "insert"):
                    for keyword in node.keywords:
                        if keyword.arg in LIFECYCLE_COLUMNS:
                            yield where, keyword.arg


def test_only_the_lifecycles_applier_writes_locks_unlocks_and_finalizations():
    writers = {where for where, _ in _writes()}
    # seed.py writes years of made-up history in bulk, not a live charge's life.
    assert writers - {"seed.py"} == {"transactions/effects.py"}


def test_webhooks_and_sweeps_reach_no_charge_rule_of_the_runs():
    for folder, allowed in (("webhooks", set()), ("sweeps", {"dispatch", "lease", "models"})):
        for path in (PORTAL / folder).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module:
                    if node.module == "portal.runs":
                        names = {alias.name for alias in node.names}
                    elif node.module.startswith("portal.runs."):
                        names = {node.module.split(".")[2]}
                    else:
                        continue
                    assert names <= allowed, (path.name, node.module, names)
