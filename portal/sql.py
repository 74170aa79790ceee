"""Small SQL helpers the services share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

# Values per IN list: short enough for every database's limit on bound parameters.
IN_LIMIT = 500


def in_chunks(values: Iterable) -> Iterator[list]:
    """The values, sorted and IN_LIMIT at a time, for `column.in_(chunk)` queries."""
    ordered = sorted(values)
    for start in range(0, len(ordered), IN_LIMIT):
        yield ordered[start : start + IN_LIMIT]
