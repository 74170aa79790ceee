"""Column types shared by the models: money amounts and JSON values; the text search index."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import JSON, Index, Numeric
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

# 18 digits with 4 decimals covers every ISO 4217 minor unit (at most 3) with room to spare.
AMOUNT = Numeric(18, 4, asdecimal=True)


class Amount(TypeDecorator):
    """A Numeric column that only ever hands Decimal in and out (never float)."""

    impl = AMOUNT
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money columns refuse float values")
        return Decimal(value)


def json_text(value) -> str:
    """How a JSON column's value is written (the engine's json_serializer)."""
    return json.dumps(value, sort_keys=True, default=str)


# SQLAlchemy's JSON type: JSONB on PostgreSQL, JSON text on SQLite. Python None is SQL NULL (not
# the JSON null), so that "IS NULL" keeps meaning "nothing stored". Values are written by the
# engine's json_serializer (json_text: sorted keys, dates and Decimals as text).
JSONValue = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def trigram_index(name: str, column: str) -> Index:
    """An index that serves `ILIKE '%text%'` (the lists' search boxes) on PostgreSQL: GIN over
    pg_trgm's trigrams, where a b-tree cannot help. Elsewhere a plain index of the column."""
    return Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
