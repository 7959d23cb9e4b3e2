"""Tokens: the admin token, worker tokens and job-scoped tokens for task scripts.

A caller is a ``Principal``. Admin and worker tokens are random and stored hashed; a job
token is an HMAC of the job's serial and its current lease, so it dies with the lease.
User accounts slot in as another principal kind.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from runyard.errors import Unauthorized
from runyard.operations.base import Operations
from runyard.store import jobs as job_rows
from runyard.store import workers as worker_rows


@dataclass(frozen=True, kw_only=True)
class Principal:
    kind: str  # admin | worker | job
    name: str
    job_serial: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# How long a looked-up admin or worker token is trusted without asking the database again
# (a revoked token stops working within this time).
TOKEN_CACHE_SECONDS = 5.0


class AuthManager(Operations):
    _secret: bytes | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known: dict[str, tuple[float, Principal]] = {}  # token hash -> (until, who)

    def secret(self) -> bytes:
        if self._secret is None:
            with self.store.write() as conn:
                value = worker_rows.put_setting_once(conn, "secret", secrets.token_hex(32))
            self._secret = bytes.fromhex(value)
        return self._secret

    def ensure_admin_token(self) -> str | None:
        """Create the admin token at first start: returned once and written, owner-only, to
        the data directory for local CLI use. None if one exists already."""
        token_file = self.settings.admin_token_file
        with self.store.write() as conn:
            if worker_rows.get_setting(conn, "admin_token_created") is not None:
                return None
            token = "ry_admin_" + secrets.token_urlsafe(32)
            worker_rows.insert_token(
                conn, token_hash=_hash(token), kind="admin", name="admin", now=self.now()
            )
            worker_rows.put_setting_once(conn, "admin_token_created", self.now().isoformat())
            token_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
        return token

    def create_worker_token(self, name: str, *, actor: str = "system") -> str:
        token = "ry_worker_" + secrets.token_urlsafe(32)
        with self.store.write() as conn:
            worker_rows.insert_token(
                conn, token_hash=_hash(token), kind="worker", name=name, now=self.now()
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
                "--token, RUNYARD_TOKEN or the data directory's admin-token)"
            )
        if token.startswith("ry_job_"):
            return self._authenticate_job(token)
        if token.startswith("ry_session_"):
            raise Unauthorized(
                "a web UI session token is valid only as the UI's cookie; use the admin token here"
            )
        if token.startswith("ry_ud_"):
            raise Unauthorized(
                "a User Data token is valid only for the User Data file calls (/api/userdata/list,"
                " /file and /image-header); use the job or admin token here"
            )
        key = _hash(token)
        cached = self._known.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        with self.store.read() as conn:
            found = worker_rows.find_token(conn, key)
        if found is None:
            raise Unauthorized("the token is not valid (unknown or revoked)")
        kind, name = found
        principal = Principal(kind=kind, name=name)
        self._known[key] = (time.monotonic() + TOKEN_CACHE_SECONDS, principal)
        return principal

    def _authenticate_job(self, token: str) -> Principal:
        try:
            _, _, serial_text, signature = token.split("_", 3)
            serial = int(serial_text)
        except ValueError:
            raise Unauthorized("the job token is malformed") from None
        with self.store.read() as conn:
            lease = job_rows.current_lease(conn, serial)
        if lease is None or not hmac.compare_digest(signature, self._job_signature(serial, lease)):
            raise Unauthorized(
                f"the job token of job {serial} has expired (the job is no "
                "longer running under that lease)"
            )
        return Principal(kind="job", name=f"job {serial}", job_serial=serial)
