"""Record ids and page numbers read from a URL or a form: a number no database column can hold
(above 2^63 - 1) is "no such record", never an overflow deep in the driver (a 500)."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

LARGEST = 2**63 - 1


def record_id(text: str) -> int:
    """For `request.args.get(name, type=record_id)`: a ValueError (so: no value) when the text is
    not a positive id a column can hold."""
    value = int(text)
    if not 0 < value <= LARGEST:
        raise ValueError(f"{text!r} is not a record id")
    return value


class RecordIdConverter(IntegerConverter):
    """`<int:...>` in every route: at most 2^63 - 1, so a larger id is a 404 like any unknown one."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", LARGEST)
        super().__init__(map, *args, **kwargs)
