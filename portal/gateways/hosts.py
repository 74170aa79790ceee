"""Where a gateway may send: the provider's published hosts, and the sandbox's only when allowed.

With `SETTLE_PRODUCTION` on, a gateway's base URL must be https:// and name one of its
provider's published live hosts (`Gateway.live_hosts`); `SETTLE_GATEWAY_TEST_HOSTS` also admits
the provider's published test hosts (`Gateway.test_hosts`) and this machine (Settle's sandbox).
Off (the embedded default), any http(s) host is accepted. An entry starting with "." admits
every host below that domain (Adyen's live hosts carry the merchant's own prefix).

The rule is asked twice: by the gateway form, and by every call (a gateway saved before
production mode was turned on sends nothing to a host it would no longer accept).
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: what credentials entered for a URL belong to."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme)


def _listed(host: str, entries: tuple[str, ...]) -> bool:
    return any(host.endswith(e) if e.startswith(".") else host == e for e in entries)


def refusal(cls, url: str, *, production: bool, test_hosts: bool) -> str | None:
    """Why `cls` may not send to `url`, in words for a supervisor; None when it may."""
    allowed = allowed_hosts(cls, production=production, test_hosts=test_hosts)
    if allowed is None:
        return None
    scheme, host, _ = origin(url)
    if _listed(host, allowed) and (scheme == "https" or host in LOOPBACK):
        return None
    shown = ", ".join(allowed) or "none (its hosts are test hosts)"
    return (
        f"In production, {cls.display_name} sends only over https:// to its provider's published"
        f" hosts ({shown}); {host or 'this URL'} is not one of them"
        + ("" if test_hosts else " (test hosts need SETTLE_GATEWAY_TEST_HOSTS)")
    )


def allowed_hosts(cls, *, production: bool, test_hosts: bool) -> tuple[str, ...] | None:
    """The hosts the form names, or None where any host is accepted."""
    if not production:
        return None
    return cls.live_hosts + ((*cls.test_hosts, *LOOPBACK) if test_hosts else ())
