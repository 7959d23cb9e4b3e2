"""Users, groups and personal tokens (docs/users.md).

Users are made by admins; their passwords are hashed with argon2 (``argon2-cffi``). A user
logs in to the web UI with name and password (a session, operations/sessions.py) and calls
the API with personal tokens, stored hashed and shown once. Members of the group ``admins``
administer the server. Failed log ins are counted per account and per network address in
the database, so every server process refuses the same guesser.
"""

from __future__ import annotations

import functools
import re
import secrets
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection

from runyard.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from runyard.operations.auth import ADMINS, AuthManager, Principal, token_hash
from runyard.operations.base import Operations
from runyard.store import sessions as session_rows
from runyard.store import users as user_rows

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
TOKEN_PREFIX = "ry_user_"

# Failed log ins: at most this many in LOGIN_WINDOW per account, and per address.
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20

_hasher = PasswordHasher()


@functools.cache
def _no_user_hash() -> str:
    """Verified against when the account does not exist, so that a wrong name takes as long
    as a wrong password. Made at the first log in (hashing takes a tenth of a second, which
    every process that imports this module paid at start before)."""
    return _hasher.hash(secrets.token_hex(16))


def check_name(name: str, what: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidInput(
            f"{what} name {name!r} is not valid: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            name=name,
        )
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters "
            f"(this one has {len(password)})"
        )
    return password


class UserManager(Operations):
    def __init__(self, *args: Any, auth: AuthManager, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth

    # -- users ----------------------------------------------------------------------------

    def add(self, name: str, password: str | None, *, admin: bool, actor: str) -> dict[str, Any]:
        """A new user (an admin if ``admin``); without a password it logs in by token only."""
        check_name(name, "a user")
        password_hash = _hasher.hash(check_password(password)) if password is not None else None
        with self.store.write() as conn:
            if user_rows.find_user(conn, name) is not None:
                raise Conflict(f"a user named {name!r} exists already", user=name)
            user_id = user_rows.insert_user(conn, name, password_hash, self.now())
            if admin:
                group_id = user_rows.find_group(conn, ADMINS)
                assert group_id is not None  # made by migration 0012
                user_rows.add_member(conn, group_id, user_id)
            self._log(conn, actor, "user.add", f"added user {name}" + (" (admin)" if admin else ""))
            return self._user_json(conn, name)

    def list_all(self) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            groups = user_rows.groups_of_users(conn)
            return [
                {
                    "name": u["name"],
                    "admin": ADMINS in groups.get(u["id"], []),
                    "groups": groups.get(u["id"], []),
                    "has_password": u["password_hash"] is not None,
                    "disabled": u["disabled_at"] is not None,
                    "created_at": u["created_at"],
                }
                for u in user_rows.list_users(conn)
            ]

    def get(self, name: str) -> dict[str, Any]:
        with self.store.read() as conn:
            return self._user_json(conn, name)

    def _user_json(self, conn: Connection, name: str) -> dict[str, Any]:
        row = self._user(conn, name)
        groups = user_rows.user_groups(conn, row["id"])
        return {
            "name": name,
            "admin": ADMINS in groups,
            "groups": groups,
            "has_password": row["password_hash"] is not None,
            "disabled": row["disabled_at"] is not None,
            "created_at": row["created_at"],
        }

    @staticmethod
    def _user(conn: Connection, name: str) -> dict[str, Any]:
        row = user_rows.find_user(conn, name)
        if row is None:
            raise NotFound(f"no user named {name!r}", user=name)
        return row

    def set_password(
        self, caller: Principal, name: str, password: str, *, current: str | None = None
    ) -> None:
        """Set ``name``'s password: an admin for anyone, a user for itself with its current
        password. Ends the user's web sessions."""
        check_password(password)
        if not caller.is_admin:
            if caller.kind != "user" or caller.name != name:
                raise Forbidden("only an admin may set another user's password")
            if current is None or not self._verify(name, current):
                raise Forbidden("the current password is wrong")
        new_hash = _hasher.hash(password)
        with self.store.write() as conn:
            row = self._user(conn, name)
            user_rows.set_password_hash(conn, row["id"], new_hash)
            self._end_sessions(conn, name)
            self._log(conn, caller.name, "user.password", f"set the password of {name}")

    def _end_sessions(self, conn: Connection, name: str) -> None:
        self.auth.forget(session_rows.end_sessions_of(conn, f"user:{name}", self.now()))

    def set_disabled(self, name: str, disabled: bool, *, actor: str) -> dict[str, Any]:
        """Disable a user (its tokens and sessions stop working; its workflows stay) or
        enable it again."""
        with self.store.write() as conn:
            row = self._user(conn, name)
            if disabled:
                self._keep_an_admin(conn, row["id"])
                self.auth.forget(user_rows.revoke_all(conn, name, self.now()))
            user_rows.set_disabled(conn, row["id"], self.now() if disabled else None)
            verb = "disabled" if disabled else "enabled"
            self._log(conn, actor, f"user.{verb[:-1]}", f"{verb} user {name}")
            return self._user_json(conn, name)

    def _keep_an_admin(self, conn: Connection, user_id: int) -> None:
        admins = user_rows.find_group(conn, ADMINS)
        assert admins is not None
        if ADMINS in user_rows.user_groups(conn, user_id) and (
            user_rows.count_members(conn, admins, enabled_only=True) <= 1
        ):
            raise Conflict("this is the last enabled admin; make another admin first")

    # -- logging in -------------------------------------------------------------------------

    def login(self, name: str, password: str, address: str) -> Principal:
        """The user whose name and password these are. Refused with the same message for a
        wrong name or password, and for a while after too many failures."""
        now = self.now()
        with self.store.read() as conn:
            since = now - LOGIN_WINDOW
            by_account = user_rows.count_login_failures(conn, since=since, account=name)
            by_address = user_rows.count_login_failures(conn, since=since, address=address)
        if by_account >= MAX_FAILURES_PER_ACCOUNT or by_address >= MAX_FAILURES_PER_ADDRESS:
            which = "this account" if by_account >= MAX_FAILURES_PER_ACCOUNT else "your address"
            minutes = int(LOGIN_WINDOW.total_seconds() // 60)
            raise TooManyRequests(
                f"too many failed log ins for {which} in the last {minutes} minutes; wait "
                f"{minutes} minutes and try again, or ask an admin to set a new password"
            )
        if not self._verify(name, password):
            with self.store.write() as conn:
                user_rows.forget_login_failures(conn, before=now - LOGIN_WINDOW)
                user_rows.record_login_failure(conn, name, address, now)
                self._log(conn, name[:100], "session.refused", "a log in was refused")
            raise Forbidden("the user name or the password is wrong")
        with self.store.write() as conn:
            user_rows.forget_login_failures(conn, before=now, account=name)
            return self.auth.user(conn, name)

    def _verify(self, name: str, password: str) -> bool:
        with self.store.read() as conn:
            row = user_rows.find_user(conn, name)
        stored = row["password_hash"] if row and row["disabled_at"] is None else None
        try:
            _hasher.verify(stored or _no_user_hash(), password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return False
        return stored is not None

    # -- personal tokens ----------------------------------------------------------------------

    def create_token(self, caller: Principal, label: str, *, user: str | None = None) -> str:
        """A new personal token of ``user`` (default: the caller; only an admin may make one
        for another user). Returned once; stored hashed."""
        return self.issue_token(caller, label, user=user)[1]

    def issue_token(
        self, caller: Principal, label: str, *, user: str | None = None
    ) -> tuple[int, str]:
        """As ``create_token``: the new token's id (to revoke it by) and the token."""
        owner = user or caller.name
        if caller.kind != "user" or (owner != caller.name and not caller.is_admin):
            raise Forbidden("a user makes its own tokens; an admin may make one for any user")
        label = label.strip()[:200] or "token"
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store.write() as conn:
            self._user(conn, owner)
            token_id = user_rows.insert_user_token(
                conn, token_hash=token_hash(token), user=owner, label=label, now=self.now()
            )
            self._log(conn, caller.name, "token.create", f"personal token {label!r} of {owner}")
        return token_id, token

    # -- groups ---------------------------------------------------------------------------------

    def list_groups(self) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            return user_rows.list_groups(conn)

    def add_group(self, name: str, *, actor: str) -> None:
        check_name(name, "a group")
        with self.store.write() as conn:
            if user_rows.find_group(conn, name) is not None:
                raise Conflict(f"a group named {name!r} exists already", group=name)
            user_rows.insert_group(conn, name, self.now())
            self._log(conn, actor, "group.add", f"added group {name}")

    def delete_group(self, name: str, *, actor: str) -> None:
        if name == ADMINS:
            raise Conflict(f"the group {ADMINS!r} cannot be deleted")
        with self.store.write() as conn:
            user_rows.delete_group(conn, self._group(conn, name))
            self._log(conn, actor, "group.delete", f"deleted group {name}")

    def set_member(self, group: str, user: str, member: bool, *, actor: str) -> None:
        with self.store.write() as conn:
            group_id = self._group(conn, group)
            user_id = self._user(conn, user)["id"]
            if member:
                user_rows.add_member(conn, group_id, user_id)
            else:
                if group == ADMINS:
                    self._keep_an_admin(conn, user_id)
                user_rows.remove_member(conn, group_id, user_id)
            verb = "added" if member else "removed"
            self._log(
                conn,
                actor,
                f"group.{verb}",
                f"{verb} {user} {'to' if member else 'from'} group {group}",
            )
        self.auth.forget_all()  # its rights changed (sessions see it within their cache time)

    @staticmethod
    def _group(conn: Connection, name: str) -> int:
        group_id = user_rows.find_group(conn, name)
        if group_id is None:
            raise NotFound(f"no group named {name!r}", group=name)
        return group_id
