"""User Data tokens and virtual paths on the server: pure functions, no I/O.

A User Data token is ``ry_ud_`` + base64url(JSON payload) + ``.`` + base64url(HMAC-SHA256 of
the payload under the server secret). The payload holds the scopes (operation, virtual path),
the expiry (Unix seconds) and who asked for it. A scope covers its path and, for a folder path,
everything below it, for its one operation.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from runyard.errors import Forbidden, InvalidInput, Unauthorized
from runyard.task.virtualpath import InvalidVirtualPath, check_path

OPERATIONS = ("list", "read", "write")
TOKEN_PREFIX = "ry_ud_"
TOKEN_SECONDS = 15 * 60
MAX_SCOPES = 100
MAX_TOKEN_CHARS = 6000  # it travels in a header; servers refuse headers over ~8 KB
_SIGNED = b"runyard userdata token v1\n"  # keeps these signatures apart from job tokens'


@dataclass(frozen=True, kw_only=True)
class Scope:
    """One thing a User Data token allows: ``operation`` on ``path`` (and below it, for a
    folder path)."""

    operation: str
    path: str

    def covers(self, operation: str, path: str) -> bool:
        if operation != self.operation:
            return False
        return path == self.path or (self.path.endswith("/") and path.startswith(self.path))


@dataclass(frozen=True, kw_only=True)
class UserDataToken:
    """A verified User Data token: what it allows, until when, and who asked for it."""

    scopes: tuple[Scope, ...]
    expires_at: datetime
    issued_to: str

    def require(self, operation: str, path: str) -> None:
        if not any(scope.covers(operation, path) for scope in self.scopes):
            allowed = ", ".join(f"{s.operation} {s.path}" for s in self.scopes)
            raise Forbidden(
                f"this User Data token does not allow {operation} on {path}; it allows: "
                f"{allowed}. Ask for a token with the scope ({operation!r}, {path!r}).",
                operation=operation,
                path=path,
            )


# -- tokens: pure functions ------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(body: str, secret: bytes) -> str:
    return _b64(hmac.new(secret, _SIGNED + body.encode("ascii"), hashlib.sha256).digest())


def encode_token(token: UserDataToken, secret: bytes) -> str:
    payload = {
        "scopes": [[s.operation, s.path] for s in token.scopes],
        "exp": int(token.expires_at.timestamp()),
        "by": token.issued_to,
    }
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{TOKEN_PREFIX}{body}.{_signature(body, secret)}"


def decode_token(text: str, secret: bytes, now: datetime) -> UserDataToken:
    """The token ``text`` if its signature is this server's and it has not expired; else
    ``Unauthorized`` saying which."""
    if not text.startswith(TOKEN_PREFIX):
        raise Forbidden(
            "the User Data endpoints accept only a User Data token (ry_ud_...); ask for one "
            "with POST /api/userdata/tokens (get_xf_userdata_token in task scripts)"
        )
    body, dot, signature = text.removeprefix(TOKEN_PREFIX).rpartition(".")
    if not dot or not body or not body.isascii():
        raise Unauthorized("the User Data token is malformed; ask for a new one")
    if not hmac.compare_digest(signature.encode(), _signature(body, secret).encode()):
        raise Unauthorized(
            "the User Data token's signature does not match: it was changed, or made by "
            "another server; ask for a new one"
        )
    try:
        payload = json.loads(_unb64(body))
        scopes = tuple(Scope(operation=op, path=path) for op, path in payload["scopes"])
        expires_at = datetime.fromtimestamp(payload["exp"], UTC)
        issued_to = str(payload["by"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise Unauthorized("the User Data token is malformed; ask for a new one") from None
    if now >= expires_at:
        raise Unauthorized(
            f"the User Data token expired at {expires_at.isoformat()} (tokens last "
            f"{TOKEN_SECONDS // 60} minutes); ask for a new one",
            expired_at=expires_at.isoformat(),
        )
    return UserDataToken(scopes=scopes, expires_at=expires_at, issued_to=issued_to)


def check_virtual_path(path: str, *, folder: bool | None = None) -> str:
    """``path`` if it is a valid virtual path (a folder's if ``folder``, a file's if
    ``folder`` is False); else ``InvalidInput`` saying what is wrong."""
    try:
        check_path(path)
    except InvalidVirtualPath as exc:
        raise InvalidInput(str(exc), path=path) from None
    if folder is True and not path.endswith("/"):
        raise InvalidInput(
            f"{path!r} is a file path; give a folder path, ending in '/' ({path + '/'!r})",
            path=path,
        )
    if folder is False and path.endswith("/"):
        raise InvalidInput(f"{path!r} is a folder path; give a file's path", path=path)
    return path


def parse_scopes(scopes: Sequence[Sequence[str]]) -> tuple[Scope, ...]:
    """Scopes from ``[(operation, virtual path), ...]``, each checked."""
    if not scopes:
        raise InvalidInput("give at least one scope, like ['list', '/Scans/']")
    if len(scopes) > MAX_SCOPES:
        raise InvalidInput(
            f"{len(scopes)} scopes are too many (at most {MAX_SCOPES}); ask for a common "
            "parent folder, or for several tokens"
        )
    parsed = []
    for item in scopes:
        if len(item) != 2 or not all(isinstance(part, str) for part in item):
            raise InvalidInput(f"a scope is a pair (operation, virtual path); got {item!r}")
        operation, path = item
        if operation not in OPERATIONS:
            raise InvalidInput(
                f"unknown User Data operation {operation!r}; use one of {', '.join(OPERATIONS)}"
            )
        check_virtual_path(path, folder=True if operation == "list" else None)
        parsed.append(Scope(operation=operation, path=path))
    return tuple(parsed)
