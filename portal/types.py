"""Column types shared by the models: money amounts and JSON held as text."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import Numeric, Text
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


class JSONText(TypeDecorator):
    """JSON stored as text, identical on SQLite and PostgreSQL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else json.dumps(value, sort_keys=True, default=str)

    def process_result_value(self, value, dialect):
        return None if value is None else json.loads(value)
