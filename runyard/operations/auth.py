"""Tokens: users' personal tokens (the admin token is the user ``admin``'s), worker tokens
and job-scoped tokens for task scripts.

A caller is a ``Principal``: a user (an admin if a member of the group ``admins``), a
worker, or a job. User and worker tokens are random and stored hashed; a job token is an
HMAC of the job's serial and its current lease, so it dies with the lease, and a job acts
with the rights of its workflow (docs/users.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from runyard.errors import ConfigError, Unauthorized
from runyard.operations.base import Operations
from runyard.store import leases as lease_rows
from runyard.store import private
from runyard.store import users as user_rows
from runyard.store import workers as worker_rows

ADMINS = "admins"  # the group whose members administer the server
MAX_SERIAL = 2**31 - 1  # job serials are 32-bit integers in the database
LEGACY_SECRET = "secret"  # the settings row where older versions kept the secret
FINGERPRINT = "secret_fingerprint"  # the settings row of the secret's fingerprint
ADMIN_TOKEN_ID = "admin_token_id"  # the settings row naming the admin token (its id)


@dataclass(frozen=True, kw_only=True)
class Principal:
    kind: str  # user | worker | job
    name: str
    user_id: int | None = None  # a user's
    groups: frozenset[str] = frozenset()  # a user's
    job_serial: int | None = None  # a job's
    workflow_id: int | None = None  # a job's workflow

    @property
    def is_admin(self) -> bool:
        return self.kind == "user" and ADMINS in self.groups

    @property
    def role(self) -> str:
        """admin | user | worker | job: what the API's answers call the caller."""
        return "admin" if self.is_admin else self.kind


def token_hash(token: str) -> str:
    """How a token is stored and looked up: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


# How long a looked-up admin or worker token is trusted without asking the database again
# (a token revoked is forgotten at once, in every server process: within this time anyway).
TOKEN_CACHE_SECONDS = 5.0
# How often a server process writes down when tokens were used (it notes each use in
# memory): a token's "last used" is that late at most.
TOKEN_USE_SECONDS = 30.0


class AuthManager(Operations):
    _secret: bytes | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known: dict[str, tuple[float, Principal]] = {}  # token hash -> (until, who)
        self.cache_seconds = TOKEN_CACHE_SECONDS
        self._used: dict[str, datetime] = {}  # token hash -> last used, not yet written
        self._used_lock = threading.Lock()
        # Other caches of principals (the sessions'), told of each forget: a hash, or None.
        self.on_forget: list[Callable[[str | None], None]] = []
        # Another server process revoked tokens: forget every look-up here.
        self.changed.on_forget.append(self._forget_here)

    def secret(self) -> bytes:
        """The HMAC secret, from its owner-only file (``load_secret``)."""
        if self._secret is None:
            self._secret = self.load_secret()
        return self._secret

    def load_secret(self) -> bytes:
        """Read the secret file, or make it: from the secret an older version kept in the
        database (then deleted there), else new. The database keeps the secret's fingerprint
        only: a server process whose file holds another secret than the others' is refused."""
        path = self.settings.secret_path
        try:
            secret, shared = self._secret_and_fingerprint(path)
        except IntegrityError:  # another server process noted its fingerprint meanwhile
            secret, shared = self._secret_and_fingerprint(path)
        if shared != private.fingerprint(secret):
            raise ConfigError(
                f"the secret in {path} is not the one the other server processes of this "
                "database use: give every server process the same secret file (copy the "
                "first server's secret file here, or name a shared one with --secret-file / "
                "RUNYARD_SECRET_FILE)",
                key="RUNYARD_SECRET_FILE",
            )
        self._secret = secret
        return secret

    def _secret_and_fingerprint(self, path: Path) -> tuple[bytes, str]:
        """The secret of ``path`` (made, or moved there from the database, if missing) and
        the fingerprint that the database holds (this secret's, if it held none)."""
        secret = private.read_secret(path)
        with self.store.write() as conn:
            kept = worker_rows.take_setting(conn, LEGACY_SECRET)
            if secret is None:
                made = bytes.fromhex(kept) if kept else secrets.token_bytes(private.SECRET_BYTES)
                secret = private.write_secret(path, made)
            elif kept is not None and bytes.fromhex(kept) != secret:
                raise ConfigError(
                    f"the database holds a secret of an older version and {path} holds "
                    f"another one; keep the database's: delete {path} and start again",
                    key="RUNYARD_SECRET_FILE",
                )
            shared = worker_rows.put_setting_once(conn, FINGERPRINT, private.fingerprint(secret))
        return secret, shared

    def ensure_admin_token(self) -> str | None:
        """Create the admin token at first start: returned once and written, owner-only, to
        the data directory for local CLI use. None if one exists already."""
        with self.store.write() as conn:
            if worker_rows.get_setting(conn, "admin_token_created") is not None:
                return None
            token = self.new_admin_token(conn)
            worker_rows.put_setting_once(conn, "admin_token_created", self.now().isoformat())
        return token

    def new_admin_token(self, conn: Connection) -> str:
        """Make an admin token (the user admin's, labelled admin-token), note it as the admin
        token, and write it, owner-only, to the data directory's admin-token file."""
        token = "ry_admin_" + secrets.token_urlsafe(32)
        token_id = user_rows.insert_user_token(
            conn, token_hash=token_hash(token), user="admin", label="admin-token", now=self.now()
        )
        worker_rows.put_setting(conn, ADMIN_TOKEN_ID, str(token_id))
        private.write_private_file(self.settings.admin_token_file, token + "\n")
        return token

    def create_worker_token(self, name: str, *, actor: str = "system") -> str:
        token = "ry_worker_" + secrets.token_urlsafe(32)
        with self.store.write() as conn:
            worker_rows.insert_token(
                conn, token_hash=token_hash(token), kind="worker", name=name, now=self.now()
            )
            self._log(conn, actor, "token.create", f"worker token for {name}")
        return token

    def job_token(self, serial: int, lease_id: str) -> str:
        return f"ry_job_{serial}_{self._job_signature(serial, lease_id)}"

    def _job_signature(self, serial: int, lease_id: str) -> str:
        message = f"{serial}:{lease_id}".encode()
        return hmac.new(self.secret(), message, hashlib.sha256).hexdigest()

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized(
                "no token given: send 'Authorization: Bearer TOKEN' (runyard reads it from "
                "--token, RUNYARD_TOKEN, 'runyard login' or the data directory's admin-token)"
            )
        if token.startswith("ry_job_"):
            return self._authenticate_job(token)
        if token.startswith("ry_session_"):
            raise Unauthorized(
                "a web UI session token is valid only as the UI's cookie; use a personal token "
                "here (runyard token create, or the admin token)"
            )
        if token.startswith("ry_ud_"):
            raise Unauthorized(
                "a User Data token is valid only for the User Data file calls (/api/userdata/list,"
                " /file and /image-header); use the job or admin token here"
            )
        key = token_hash(token)
        cached = self._known.get(key)
        if cached is not None and cached[0] > time.monotonic():
            principal = cached[1]
        else:
            with self.store.read() as conn:
                found = worker_rows.find_token(conn, key)
                if found is None:
                    raise Unauthorized("the token is not valid (unknown or revoked)")
                kind, name = found
                principal = (
                    self.user(conn, name) if kind == "user" else Principal(kind=kind, name=name)
                )
            self._known[key] = (time.monotonic() + self.cache_seconds, principal)
        with self._used_lock:
            self._used[key] = self.now()
        return principal

    def write_token_use(self) -> None:
        """Write down when the tokens used since the last call were last used (the server
        calls it every ``TOKEN_USE_SECONDS`` and when it stops)."""
        with self._used_lock:
            used, self._used = self._used, {}
        if used:
            with self.store.write() as conn:
                worker_rows.note_token_use(conn, used)

    def user(self, conn: Connection, name: str) -> Principal:
        """The principal of the user ``name``; Unauthorized if there is none or it is
        disabled."""
        row = user_rows.find_user(conn, name)
        if row is None or row["disabled_at"] is not None:
            raise Unauthorized(f"the user {name!r} is disabled or does not exist")
        groups = frozenset(user_rows.user_groups(conn, row["id"]))
        return Principal(kind="user", name=name, user_id=row["id"], groups=groups)

    def forget(self, token_hashes: list[str]) -> None:
        """Stop trusting cached look-ups of these tokens (revoked): here, and in the other
        server processes of the database."""
        for key in token_hashes:
            self._known.pop(key, None)
            for listener in self.on_forget:
                listener(key)
        if token_hashes:
            self.changed.forget_elsewhere()

    def forget_all(self) -> None:
        """Look every token up again (a user's groups changed), here and in the other
        server processes."""
        self._forget_here()
        self.changed.forget_elsewhere()

    def _forget_here(self) -> None:
        self._known.clear()
        for listener in self.on_forget:
            listener(None)

    def _authenticate_job(self, token: str) -> Principal:
        try:
            _, _, serial_text, signature = token.split("_", 3)
            serial = int(serial_text)
        except ValueError:
            raise Unauthorized("the job token is malformed") from None
        if not 0 < serial <= MAX_SERIAL or not signature.isascii():
            raise Unauthorized("the job token is malformed")
        with self.store.read() as conn:
            found = lease_rows.current_lease_and_workflow(conn, serial)
        lease, workflow_id = found or (None, None)
        if lease is None or not hmac.compare_digest(signature, self._job_signature(serial, lease)):
            raise Unauthorized(
                f"the job token of job {serial} has expired (the job is no "
                "longer running under that lease)"
            )
        return Principal(
            kind="job", name=f"job {serial}", job_serial=serial, workflow_id=workflow_id
        )
