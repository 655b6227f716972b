"""Domain errors. Each carries the Hub's ``X-Error-Code`` value (where the Hub has one) and the
HTTP status it maps to; ``api/errors.py`` turns them into responses in exactly one place."""

from __future__ import annotations


class HubError(Exception):
    status = 500
    code: str | None = None

    def __init__(self, message: str, *, status: int | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = headers or {}


class BadRequest(HubError):
    status = 400
    code = "BadRequest"


class InvalidPath(HubError):
    """A file path that may not exist in a repo (the Hub answers 422 for these)."""

    status = 422
    code = "InvalidPath"


class Unauthorized(HubError):
    status = 401
    code = "Unauthorized"


class Forbidden(HubError):
    status = 403
    code = "Forbidden"


class NotFound(HubError):
    status = 404
    code = "NotFound"


class RepoNotFound(NotFound):
    """Missing repo, or a private one the caller may not see: the two must be indistinguishable."""

    code = "RepoNotFound"


class RevisionNotFound(NotFound):
    code = "RevisionNotFound"


class EntryNotFound(NotFound):
    code = "EntryNotFound"


class GatedRepo(HubError):
    status = 403
    code = "GatedRepo"


class Conflict(HubError):
    status = 409
    code = "Conflict"


class PreconditionFailed(HubError):
    status = 412
    code = "PreconditionFailed"


class PayloadTooLarge(HubError):
    status = 413
    code = "PayloadTooLarge"


class RangeNotSatisfiable(HubError):
    status = 416
    code = "RangeNotSatisfiable"


class TooManyRequests(HubError):
    status = 429
    code = "TooManyRequests"


class InsufficientStorage(HubError):
    status = 507
    code = "InsufficientStorage"
