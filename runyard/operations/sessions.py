"""Web UI sessions: a token given once in exchange for a user's name and password (or a
personal token), kept by the browser in an HTTP-only cookie, and the CSRF token that every
state-changing request made with that cookie must carry.

A session is stored hashed, like the admin and worker tokens, with the principal it acts
for; logging out ends it at once (in other server processes within ``CACHE_SECONDS``). The
CSRF token is not stored: it is an HMAC of the session token under the server's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runyard.errors import Forbidden, Unauthorized
from runyard.operations.auth import AuthManager, Principal, token_hash
from runyard.operations.base import Operations
from runyard.operations.users import UserManager
from runyard.store import sessions as session_rows

PREFIX = "ry_session_"
LIFETIME = timedelta(hours=24)
CACHE_SECONDS = 5.0


@dataclass(frozen=True, kw_only=True)
class Session:
    principal: Principal
    expires_at: datetime


class SessionManager(Operations):
    def __init__(self, *args: Any, auth: AuthManager, users: UserManager, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth
        self.users = users
        self._known: dict[str, tuple[float, Session]] = {}  # session hash -> (until, session)
        auth.on_forget.append(self._forget)

    def _forget(self, key: str | None) -> None:
        if key is None:
            self._known.clear()
        else:
            self._known.pop(key, None)

    def login_with_password(self, name: str, password: str, address: str) -> tuple[str, Session]:
        """A new session for the user ``name`` (see ``UserManager.login``)."""
        return self._start(self.users.login(name, password, address))

    def login(self, credential: str) -> tuple[str, Session]:
        """A new session for the user of a personal token (the admin token is one): the
        session token, for the cookie, and the session."""
        principal = self.auth.authenticate(credential.strip())
        if principal.kind != "user":
            raise Forbidden(
                f"a {principal.kind} token cannot log in to the web UI; log in with your user "
                "name and password, or a personal token",
                caller=principal.kind,
            )
        return self._start(principal)

    def _start(self, principal: Principal) -> tuple[str, Session]:
        token = PREFIX + secrets.token_urlsafe(32)
        now = self.now()
        with self.store.write() as conn:
            session_rows.delete_sessions_before(conn, now - LIFETIME)
            session_rows.insert_session(
                conn,
                token_hash=token_hash(token),
                principal=f"{principal.kind}:{principal.name}",
                now=now,
            )
            self._log(conn, principal.name, "session.login", "logged in to the web UI")
        return token, Session(principal=principal, expires_at=now + LIFETIME)

    def authenticate(self, token: str) -> Session:
        """The session of a session token; Unauthorized if it ended or expired."""
        key = token_hash(token)
        cached = self._known.get(key)
        if cached is not None and cached[0] > time.monotonic():
            session = cached[1]
        else:
            with self.store.read() as conn:
                found = session_rows.find_session(conn, key) if token.startswith(PREFIX) else None
                if found is None:
                    raise Unauthorized("the web UI session has ended (logged out): log in again")
                principal_text, created_at = found
                kind, _, name = principal_text.partition(":")
                if kind != "user":
                    raise Unauthorized("the web UI session has ended: log in again")
                principal = self.auth.user(conn, name)
            session = Session(principal=principal, expires_at=created_at + LIFETIME)
            self._known[key] = (time.monotonic() + CACHE_SECONDS, session)
        if session.expires_at <= self.now():
            raise Unauthorized("the web UI session has expired: log in again")
        return session

    def csrf_token(self, token: str) -> str:
        """The CSRF token of a session: the page sends it back with every state change."""
        return hmac.new(self.auth.secret(), b"csrf:" + token.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, token: str, given: str) -> None:
        expected = self.csrf_token(token).encode()
        if not given or not hmac.compare_digest(given.encode(), expected):
            raise Forbidden(
                "this request changes something and came with the web UI's session cookie but "
                "without its CSRF token (header X-Runyard-CSRF), so it was refused; reload the "
                "page, or call the API with 'Authorization: Bearer TOKEN' instead"
            )

    def logout(self, token: str) -> None:
        """End the session (nothing happens if it has ended already)."""
        key = token_hash(token)
        self._known.pop(key, None)
        with self.store.write() as conn:
            found = session_rows.find_session(conn, key)
            if session_rows.end_session(conn, key, self.now()) and found is not None:
                actor = found[0].partition(":")[2]
                self._log(conn, actor, "session.logout", "logged out of the web UI")
