"""Reading a list's filters from the URL: a value that cannot be read is said, and left out."""

from __future__ import annotations

from datetime import date


def day(text: str, label: str, problems: list[str]) -> date | None:
    """A YYYY-MM-DD filter value; None when empty, or unreadable (with why, in problems)."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"{label}: {text!r} is not a date (YYYY-MM-DD); left out")
        return None
