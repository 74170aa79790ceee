"""The one family of domain errors; each message is fit to show a clerk."""


class DomainError(Exception):
    """A rule said no. The message says why, in words a clerk understands."""


class NotAllowed(DomainError):
    """The action is not possible in the record's present state (already done, not locked...)."""
