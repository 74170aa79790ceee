"""Reading a list's filters from the URL: a value that cannot be read is said, and left out."""

from __future__ import annotations

from datetime import date

from flask import flash, redirect, request, url_for

from portal.money import MINOR_UNITS


def choice(text: str, allowed, default: str = "") -> str:
    """One of a list's fixed values (a state, a sort, a kind); anything else is the default."""
    return text if text in allowed else default


def day(text: str, label: str, problems: list[str]) -> date | None:
    """A YYYY-MM-DD filter value; None when empty, or unreadable (with why, in problems)."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(f"{label}: {text!r} is not a date (YYYY-MM-DD); left out")
        return None


def currency(text: str, problems: list[str]) -> str:
    """An ISO 4217 filter value, upper-cased; "" when empty or unknown (with why)."""
    code = text.strip().upper()
    if code and code not in MINOR_UNITS:
        problems.append(f"Currency: {code!r} is not one Settle knows; left out")
        return ""
    return code


def said(problems: list[str]) -> None:
    """Show each filter value the list could not read."""
    for problem in problems:
        flash(problem, "error")


def back_to_list(endpoint: str, problems: list[str]):
    """An export must hold what was asked for, or nothing: back to the list, saying why."""
    said(problems)
    return redirect(url_for(endpoint, **request.args))
