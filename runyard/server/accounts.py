"""HTTP handlers of accounts: users, groups, personal tokens, workflow sharing, and who the
caller is (docs/users.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from pydantic import Field

from runyard.server.deps import Caller, Ry, require
from runyard.server.schemas import Body, Int32


class NewUser(Body):
    name: str = Field(max_length=64, description="Letters, digits, '.', '_' or '-'.")
    password: str | None = Field(
        default=None, max_length=1024, description="At least 8 characters; none: tokens only."
    )
    admin: bool = Field(default=False, description="A member of the group admins.")


class UserChange(Body):
    disabled: bool = Field(description="A disabled user can neither log in nor use a token.")


class NewPassword(Body):
    password: str = Field(max_length=1024)
    current: str | None = Field(
        default=None, max_length=1024, description="Your current password (not for admins)."
    )


class NewGroup(Body):
    name: str = Field(max_length=64)


class NewToken(Body):
    label: str = Field(default="", max_length=200, description="What the token is for.")
    user: str | None = Field(
        default=None, max_length=64, description="Another user's (admins only)."
    )


class Share(Body):
    user: str | None = Field(default=None, max_length=64)
    group: str | None = Field(default=None, max_length=64)
    level: str | None = Field(
        description="view, operate or edit; null stops sharing with that user or group."
    )


class CliLogin(Body):
    name: str = Field(max_length=100)
    password: str = Field(max_length=1024)
    label: str = Field(default="runyard login", max_length=200)


def whoami(caller: Caller) -> dict[str, Any]:
    """The caller: its kind (admin, user, worker, job), name and groups."""
    return {
        "kind": caller.role,
        "name": caller.name,
        "admin": caller.is_admin,
        "groups": sorted(caller.groups),
    }


def login_for_token(body: CliLogin, request: Request, ry: Ry) -> dict[str, Any]:
    """Exchange a user's name and password for a new personal token (``runyard login``);
    failed attempts are limited as for the web UI."""
    address = request.client.host if request.client else "unknown"
    principal = ry.users.login(body.name, body.password, address)
    token_id, token = ry.users.issue_token(principal, body.label)
    return {"name": principal.name, "admin": principal.is_admin, "token": token, "id": token_id}


# -- users (admins) -------------------------------------------------------------------------------


def list_users(ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """Every user with its groups (any user may list them, to share with them)."""
    require(caller, "user")
    return [_dates(u) for u in ry.users.list_all()]


def add_user(body: NewUser, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Add a user (admins only)."""
    require(caller, "admin")
    return _dates(ry.users.add(body.name, body.password, admin=body.admin, actor=caller.name))


def change_user(name: str, body: UserChange, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Disable a user (its tokens and sessions end; its workflows stay) or enable it."""
    require(caller, "admin")
    return _dates(ry.users.set_disabled(name, body.disabled, actor=caller.name))


def set_password(name: str, body: NewPassword, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Set a user's password: an admin for anyone, a user its own with its current one."""
    require(caller, "user")
    ry.users.set_password(caller, name, body.password, current=body.current)
    return {"name": name, "password_set": True}


# -- groups ---------------------------------------------------------------------------------------


def list_groups(ry: Ry, caller: Caller) -> list[dict[str, Any]]:
    """Every group with its members."""
    require(caller, "user")
    return ry.users.list_groups()


def add_group(body: NewGroup, ry: Ry, caller: Caller) -> dict[str, Any]:
    require(caller, "admin")
    ry.users.add_group(body.name, actor=caller.name)
    return {"name": body.name, "members": []}


def delete_group(name: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Delete a group (not admins); its shares go with it."""
    require(caller, "admin")
    ry.users.delete_group(name, actor=caller.name)
    return {"name": name, "deleted": True}


def add_member(name: str, user: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    require(caller, "admin")
    ry.users.set_member(name, user, True, actor=caller.name)
    return {"group": name, "user": user, "member": True}


def remove_member(name: str, user: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    require(caller, "admin")
    ry.users.set_member(name, user, False, actor=caller.name)
    return {"group": name, "user": user, "member": False}


# -- personal tokens ----------------------------------------------------------------------------


def list_tokens(
    ry: Ry, caller: Caller, everyone: bool = False, workers: bool = False
) -> list[dict[str, Any]]:
    """Your personal tokens (``everyone=true``: every user's; ``workers=true``: the worker
    tokens and the admin token too; admins only); never the tokens themselves, which are
    shown once. ``kind``: personal, admin or worker."""
    require(caller, "user")
    return [_dates(t) for t in ry.tokens.list_all(caller, everyone=everyone, workers=workers)]


def create_token(body: NewToken, ry: Ry, caller: Caller) -> dict[str, Any]:
    """A new personal token, shown this once (stored hashed)."""
    require(caller, "user")
    token_id, token = ry.users.issue_token(caller, body.label, user=body.user)
    return {"id": token_id, "user": body.user or caller.name, "label": body.label, "token": token}


def revoke_token(token_id: Int32, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Revoke one of your personal tokens (an admin: anyone's, or a worker token; the admin
    token is rotated instead)."""
    require(caller, "user")
    ry.tokens.revoke(caller, token_id)
    return {"id": token_id, "revoked": True}


def revoke_worker_tokens(name: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Revoke every token of a worker (admins): it stops at once."""
    require(caller, "admin")
    return {"name": name, "revoked": ry.tokens.revoke_worker(name, actor=caller.name)}


def rotate_worker_token(name: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    """A new token for a worker, shown this once; its old tokens stop at once (admins)."""
    require(caller, "admin")
    return {"name": name, "token": ry.tokens.rotate_worker(name, actor=caller.name)}


def rotate_admin_token(ry: Ry, caller: Caller) -> dict[str, Any]:
    """A new admin token, shown this once and written to the server's admin-token file; the
    old one stops at once (admins)."""
    require(caller, "admin")
    return {"name": "admin", "token": ry.tokens.rotate_admin(actor=caller.name)}


# -- sharing --------------------------------------------------------------------------------------


def workflow_shares(name: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    """A workflow's owner, the caller's level on it, and with whom it is shared."""
    return _dates(ry.access.shares(caller, name))


def share_workflow(name: str, body: Share, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Share a workflow with a user or a group as view, operate or edit (owner and admins)."""
    require(caller, "user")
    found = ry.access.share(caller, name, user=body.user, group=body.group, level=body.level)
    return _dates(found)


def _dates(value: dict[str, Any]) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if isinstance(v, list):
            return [plain(i) for i in v]
        if isinstance(v, dict):
            return {k: plain(i) for k, i in v.items()}
        return v.isoformat() if hasattr(v, "isoformat") else v

    result: dict[str, Any] = plain(value)
    return result


ROUTES: list[tuple[str, str, Callable[..., Any]]] = [
    ("GET", "/api/me", whoami),
    ("POST", "/api/login", login_for_token),
    ("GET", "/api/users", list_users),
    ("POST", "/api/users", add_user),
    ("PATCH", "/api/users/{name}", change_user),
    ("PUT", "/api/users/{name}/password", set_password),
    ("GET", "/api/groups", list_groups),
    ("POST", "/api/groups", add_group),
    ("DELETE", "/api/groups/{name}", delete_group),
    ("PUT", "/api/groups/{name}/members/{user}", add_member),
    ("DELETE", "/api/groups/{name}/members/{user}", remove_member),
    ("GET", "/api/tokens", list_tokens),
    ("POST", "/api/tokens", create_token),
    ("DELETE", "/api/tokens/{token_id}", revoke_token),
    ("DELETE", "/api/tokens/worker/{name}", revoke_worker_tokens),
    ("POST", "/api/tokens/worker/{name}/rotate", rotate_worker_token),
    ("POST", "/api/tokens/admin/rotate", rotate_admin_token),
    ("GET", "/api/workflows/{name}/shares", workflow_shares),
    ("PUT", "/api/workflows/{name}/shares", share_workflow),
]
