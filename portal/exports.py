"""CSV exports of the lists: streamed row by row from the database, so that a million rows never
sit in memory; amounts as plain decimals beside their currency, times in UTC ISO 8601."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

from flask import Response, stream_with_context

from portal.extensions import db
from portal.money import Money

# Rows fetched from the database at a time: the stream holds one batch, never the whole list.
BATCH = 1000

# A cell a spreadsheet would run as a formula (=, +, -, @, a tab or return first) is written with a
# leading apostrophe, so that a provider's message or an account's name cannot become code.
_FORMULA = re.compile(r"^[=+\-@\t\r]")


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | int):
        return f"{value:f}" if isinstance(value, Decimal) else str(value)
    text = str(value)
    return "'" + text if _FORMULA.match(text) else text


def money_cell(amount: Decimal | None, currency: str | None) -> str:
    """An amount as the plain decimal its currency has: 1999.99 (USD), 1500 (JPY)."""
    if amount is None or currency is None:
        return ""
    return Money(amount, currency).plain()


def rows_of(query) -> Iterator:
    """The query's rows, BATCH at a time, on a connection of their own for the whole stream."""
    with db.engine.connect() as connection:
        result = connection.execution_options(yield_per=BATCH).execute(query)
        yield from result


def csv_response(filename: str, header: list[str], rows: Iterable[list]) -> Response:
    def generate():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for n, row in enumerate(rows, 1):
            writer.writerow(row)
            if n % 200 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
