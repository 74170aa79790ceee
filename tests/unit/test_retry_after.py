"""Retry-After, as a 429 gives it: seconds, or an HTTP date; anything else is no advice."""

from datetime import UTC, datetime

import pytest

from portal.gateways.transport import retry_after

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "header, seconds",
    [("3", 3.0), (" 120 ", 120.0), ("Fri, 04 Dec 2026 12:00:30 GMT", 30.0),
     ("Fri, 04 Dec 2026 11:59:00 GMT", 0.0), (None, None), ("", None), ("soon", None),
     ("-5", None), ("1.5", None)],
)  # fmt: skip
def test_retry_after(header, seconds):
    assert retry_after(header, now=NOW) == seconds
