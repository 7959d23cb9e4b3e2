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
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def get_principal(request: Request) -> Principal:
    return get_runyard(request).auth.authenticate(bearer_token(request))


def get_userdata_token(request: Request) -> UserDataToken:
    return get_runyard(request).userdata.verify_token(bearer_token(request))


Ry = Annotated[Runyard, Depends(get_runyard)]
Caller = Annotated[Principal, Depends(get_principal)]
UserDataCaller = Annotated[UserDataToken, Depends(get_userdata_token)]


def require(caller: Principal, *kinds: str) -> None:
    if caller.kind not in kinds:
        raise Forbidden(
            f"a {caller.kind} token may not do this; it needs a token of kind {' or '.join(kinds)}",
            caller=caller.kind,
        )


def require_job_access(caller: Principal, serial: int) -> None:
    if caller.kind == "job" and caller.job_serial != serial:
        raise Forbidden(f"this job token is for job {caller.job_serial}, not job {serial}")
