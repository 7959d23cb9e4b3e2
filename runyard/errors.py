"""One exception base class; every error maps to one JSON shape.

The shape, pinned by ``tests/integration/test_error_shape.py``::

    {"error": {"code": "not_found", "message": "...", "details": {...}}}
"""

from __future__ import annotations

from typing import Any, ClassVar


class RunyardError(Exception):
    """Base class of every error Runyard reports to a user."""

    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(RunyardError):
    """A request, parameter or value that is malformed."""

    code = "invalid_input"
    status = 422


class InvalidPackage(RunyardError):
    """A package that fails validation; names the file, the field and the problem."""

    code = "invalid_package"
    status = 422

    def __init__(self, message: str, *, file: str, field: str = "") -> None:
        where = f"{file}: {field}: " if field else f"{file}: "
        super().__init__(where + message, file=file, field=field)


class NotFound(RunyardError):
    code = "not_found"
    status = 404


class Conflict(RunyardError):
    """The thing exists already, or the state changed under the caller."""

    code = "conflict"
    status = 409


class IllegalTransition(Conflict):
    code = "illegal_transition"


class StaleLease(Conflict):
    """A worker call with a lease that is no longer the job's current one."""

    code = "stale_lease"


class Unauthorized(RunyardError):
    code = "unauthorized"
    status = 401


class Forbidden(RunyardError):
    code = "forbidden"
    status = 403


class TooManyRequests(RunyardError):
    """Too many attempts (failed log ins) in a short time: wait and try again."""

    code = "too_many_requests"
    status = 429


class ConfigError(RunyardError):
    code = "config_error"
    status = 500
