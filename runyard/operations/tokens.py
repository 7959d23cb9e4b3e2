"""Listing, revoking and rotating tokens of every kind but sessions: personal tokens, worker
tokens and the admin token (docs/users.md, docs/security.md). Only their hashes are stored,
so a list never shows a token; a revoked token is refused at once, in every server process
(``AuthManager.forget``)."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Forbidden, InvalidInput, NotFound
from runyard.operations.auth import ADMIN_TOKEN_ID, AuthManager, Principal, token_hash
from runyard.operations.base import Operations
from runyard.store import users as user_rows
from runyard.store import workers as worker_rows

WORKER_PREFIX = "ry_worker_"


class TokenManager(Operations):
    def __init__(self, *args: Any, auth: AuthManager, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth

    def list_all(
        self, caller: Principal, *, everyone: bool = False, workers: bool = False
    ) -> list[dict[str, Any]]:
        """The caller's personal tokens (``everyone``: every user's); ``workers``: the worker
        tokens and the admin token too. Each: id, kind (personal, admin, worker), name (the
        user or worker), user, label, created_at, last_used_at (null: not used since Runyard
        recorded it; to within ``TOKEN_USE_SECONDS``)."""
        if (everyone or workers) and not caller.is_admin:
            raise Forbidden("only an admin may list every user's tokens or the worker tokens")
        with self.store.read() as conn:
            admin_id = admin_token_id(conn)
            found = [
                _personal(t, admin_id)
                for t in user_rows.list_user_tokens(conn, None if everyone else caller.name)
            ]
            if workers:
                if admin_id not in {t["id"] for t in found}:
                    found += [
                        _personal(t, admin_id)
                        for t in user_rows.list_user_tokens(conn, "admin")
                        if t["id"] == admin_id
                    ]
                found += [_worker(t) for t in worker_rows.list_worker_tokens(conn)]
        return found

    def revoke(self, caller: Principal, token_id: int) -> None:
        """Revoke a personal token of the caller's, or (an admin) anyone's or a worker's;
        never the admin token, which is rotated."""
        with self.store.write() as conn:
            found = worker_rows.find_token_by_id(conn, token_id)
            mine = found is not None and found["kind"] == "user" and found["name"] == caller.name
            if found is None or not (mine or caller.is_admin):
                raise NotFound(f"no personal token {token_id} of yours", token=token_id)
            if found["id"] == admin_token_id(conn):
                raise InvalidInput(
                    f"token {token_id} is the admin token: revoking it would leave the server's "
                    "own admin-token file invalid; replace it with 'runyard token rotate "
                    "--admin'",
                    token=token_id,
                )
            hashes = worker_rows.revoke_tokens(conn, self.now(), ids=[token_id])
            what = "personal" if found["kind"] == "user" else "worker"
            self._log(
                conn,
                caller.name,
                "token.revoke",
                f"revoked {what} token {token_id} of {found['name']}",
            )
        self.auth.forget(hashes)

    def revoke_worker(self, name: str, *, actor: str) -> int:
        """Revoke every token of worker ``name``; how many."""
        with self.store.write() as conn:
            hashes = self._revoke_worker(conn, name)
            self._log(conn, actor, "token.revoke", f"revoked the worker tokens of {name}")
        self.auth.forget(hashes)
        return len(hashes)

    def rotate_worker(self, name: str, *, actor: str) -> str:
        """A new token for worker ``name`` (shown this once); its old ones stop at once."""
        token = WORKER_PREFIX + secrets.token_urlsafe(32)
        with self.store.write() as conn:
            hashes = self._revoke_worker(conn, name)
            worker_rows.insert_token(
                conn, token_hash=token_hash(token), kind="worker", name=name, now=self.now()
            )
            self._log(conn, actor, "token.rotate", f"rotated the worker token of {name}")
        self.auth.forget(hashes)
        return token

    def rotate_admin(self, *, actor: str) -> str:
        """A new admin token, written to the data directory's admin-token file (and shown
        this once); the old one stops at once."""
        with self.store.write() as conn:
            old = admin_token_id(conn)
            hashes = worker_rows.revoke_tokens(conn, self.now(), ids=[old] if old else [])
            token = self.auth.new_admin_token(conn)
            self._log(conn, actor, "token.rotate", "rotated the admin token")
        self.auth.forget(hashes)
        return token

    def _revoke_worker(self, conn: Connection, name: str) -> list[str]:
        hashes = worker_rows.revoke_tokens(conn, self.now(), worker=name)
        if not hashes:
            raise NotFound(
                f"worker {name!r} has no token (runyard token list shows the worker tokens); "
                f"make one with 'runyard token create-worker {name}'",
                worker=name,
            )
        return hashes


def admin_token_id(conn: Connection) -> int | None:
    """The id of the admin token, as noted when it was made; for an installation made before
    that was noted: the user admin's oldest token labelled admin-token that is not revoked."""
    noted = worker_rows.get_setting(conn, ADMIN_TOKEN_ID)
    if noted is not None:
        return int(noted)
    mine = user_rows.list_user_tokens(conn, "admin")
    found = [t["id"] for t in mine if t["label"] == "admin-token"]
    return min(found) if found else None


def _personal(token: dict[str, Any], admin_id: int | None) -> dict[str, Any]:
    kind = "admin" if token["id"] == admin_id else "personal"
    return {"kind": kind, "name": token["user"], **token}


def _worker(token: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "worker", **token, "user": None, "label": ""}
