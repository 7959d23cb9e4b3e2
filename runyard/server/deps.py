"""What every HTTP handler depends on: the installation, the caller, and the checks of what
a caller may do."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from runyard.errors import Forbidden
from runyard.operations import Principal, Runyard
from runyard.operations.userdata_tokens import UserDataToken


def get_runyard(request: Request) -> Runyard:
    runyard: Runyard = request.app.state.runyard
    return runyard


def bearer_token(request: Request) -> str:
    """The token of the ``Authorization: Bearer TOKEN`` header; empty if there is none."""
    return bearer(request.headers.get("authorization", ""))


def bearer(authorization: str) -> str:
    """The token of an ``Authorization`` header's value ``Bearer TOKEN``; else empty."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


# The web UI's session cookie, and the header that must carry the session's CSRF token
# on every request made with the cookie that may change something.
SESSION_COOKIE = "runyard_session"
CSRF_HEADER = "x-runyard-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_principal(request: Request) -> Principal:
    """The caller: by its bearer token, else by the web UI's session cookie (with the CSRF
    header for anything but a read)."""
    ry = get_runyard(request)
    token = bearer_token(request)
    session = request.cookies.get(SESSION_COOKIE)
    if token or not session:
        return ry.auth.authenticate(token)
    principal = ry.sessions.authenticate(session).principal
    if request.method not in SAFE_METHODS:
        ry.sessions.check_csrf(session, request.headers.get(CSRF_HEADER, ""))
    return principal


def get_userdata_token(request: Request) -> UserDataToken:
    return get_runyard(request).userdata.verify_token(bearer_token(request))


Ry = Annotated[Runyard, Depends(get_runyard)]
Caller = Annotated[Principal, Depends(get_principal)]
UserDataCaller = Annotated[UserDataToken, Depends(get_userdata_token)]


def require(caller: Principal, *kinds: str) -> None:
    """Refuse a caller that is none of ``kinds``: admin (a member of the group admins), user
    (any user, admins too), worker, job."""
    if caller.role in kinds or (caller.kind == "user" and "user" in kinds):
        return
    if kinds == ("admin",) and caller.kind == "user":
        raise Forbidden("only an admin (a member of the group admins) may do this", caller="user")
    raise Forbidden(
        f"a {caller.role} token may not do this; it needs a token of kind {' or '.join(kinds)}",
        caller=caller.role,
    )


def require_job_access(caller: Principal, serial: int) -> None:
    if caller.kind == "job" and caller.job_serial != serial:
        raise Forbidden(f"this job token is for job {caller.job_serial}, not job {serial}")
