"""The typed errors every connector raises, so the job layer can act on the kind of failure.

DESIGN.md "Connectors": a remote call fails in one of four ways, and each maps to one
reaction: ``RateLimited`` → wait ``retry_after`` seconds, ``AuthExpired`` → renew the
credentials (or tell the owner), ``TemporaryFailure`` → retry with back-off,
``PermanentFailure`` → dead-letter, a retry would fail the same way.
"""

from __future__ import annotations

from koudai_flask.errors import KoudaiError


class ConnectorError(KoudaiError):
    """A remote system (marketplace, ERP, logistics provider) refused or failed a call."""

    http_status = 502


class RateLimited(ConnectorError):
    """The remote side throttled us; try again after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthExpired(ConnectorError):
    """The credentials (session, token, key quota) are expired or revoked."""


class TemporaryFailure(ConnectorError):
    """A network error or a remote fault that may pass: retry later."""

    http_status = 503


class PermanentFailure(ConnectorError):
    """The remote side refused the request itself (bad parameters, bad signature)."""


__all__ = [
    "AuthExpired",
    "ConnectorError",
    "PermanentFailure",
    "RateLimited",
    "TemporaryFailure",
]
