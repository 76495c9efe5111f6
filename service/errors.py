"""Errors of the service layer; the HTTP layer maps each class to a status in one place."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of use-case errors. `code` is stable and English; the message is for people."""

    code = "error"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


class BadRequest(ServiceError):
    code = "bad_request"


class Unauthorized(ServiceError):
    code = "unauthorized"


class Forbidden(ServiceError):
    code = "forbidden"


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"


class WrittenMeanwhile(Conflict):
    """A constraint refused a write because another transaction made the same one at the same moment (a unique
    key taken, a referenced row gone): the unit of work's 409; callers for whom that race is expected catch it."""


class TooLarge(ServiceError):
    """An upload over its size limit."""

    code = "too_large"


class Unavailable(ServiceError):
    """Something the service depends on (the attachment store) cannot be reached now; nothing was saved."""

    code = "unavailable"


class Invalid(ServiceError):
    """Data fails a form or start schema; `fields` maps each bad field to its message."""

    code = "invalid"


class DeploymentRejected(Invalid):
    """An uploaded process does not validate; `errors` lists every problem."""

    code = "invalid_process"

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


class CaseIncident(Conflict):
    """An automatic step of the case failed; nothing was saved."""

    code = "incident"

    def __init__(self, message: str, element_id: str | None, line: int | None) -> None:
        super().__init__(message)
        self.element_id = element_id
        self.line = line


class TooManyAttempts(ServiceError):
    """Too many failed attempts lately; `retry_after` says in how many seconds to try again."""

    code = "too_many_attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
