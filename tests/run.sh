#!/usr/bin/env bash
# The whole test suite from a clean clone: virtual environment, packages, lint, then pytest on
# SQLite and once more on PostgreSQL (SETTLE_TEST_DATABASE_URL, default: the local "test" database).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== pytest on SQLite"
env -u SETTLE_TEST_DATABASE_URL .venv/bin/pytest "$@"

echo "== pytest on PostgreSQL"
SETTLE_TEST_DATABASE_URL="${SETTLE_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}" \
    .venv/bin/pytest "$@"
