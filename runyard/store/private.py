"""The server's private files: its data directory (0700), the SQLite database with its
``-wal`` and ``-shm`` files (0600), and the HMAC secret (0600), which signs job tokens, User
Data tokens and the web UI's CSRF tokens (docs/security.md).

Made owner-only when they are created; files of an older version, made with the umask's
permissions, are tightened when the server starts, saying so in the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from pathlib import Path

from runyard.errors import ConfigError

log = logging.getLogger("runyard.store")

DIR_MODE = 0o700
FILE_MODE = 0o600
SECRET_BYTES = 32


def private_dir(path: Path) -> None:
    """Make the folder ``path`` (and its parents) if missing; owner-only either way."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path, DIR_MODE)


def private_database(path: Path) -> None:
    """The SQLite database file ``path``: created empty and owner-only if missing (SQLite
    gives its ``-wal`` and ``-shm`` files the database's permissions), else tightened, with
    those files."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    for suffix in ("", "-wal", "-shm", "-journal"):
        tighten(path.with_name(path.name + suffix), FILE_MODE)


def tighten(path: Path, most: int) -> None:
    """Take away the permissions of ``path`` beyond ``most`` (none if it is missing)."""
    try:
        now = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not now & ~most:
        return
    try:
        path.chmod(now & most)
    except PermissionError:  # not the owner: say so, and go on
        log.warning("cannot make %s owner-only (%04o): it is not this user's", path, now)
        return
    log.warning(
        "made %s owner-only: its permissions were %04o, now %04o (it holds the "
        "server's private data)",
        path,
        now,
        now & most,
    )


def read_secret(path: Path) -> bytes | None:
    """The secret kept in ``path`` (tightened to 0600 if looser); None if there is none."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the secret file {path}: {exc.strerror}", key="RUNYARD_SECRET_FILE"
        ) from None
    tighten(path, FILE_MODE)
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < SECRET_BYTES:
        raise ConfigError(
            f"the secret file {path} does not hold a secret ({2 * SECRET_BYTES} or more hex "
            "digits); restore it from a backup, or delete it to make a new secret (tokens "
            "signed with the old one stop working)",
            key="RUNYARD_SECRET_FILE",
        )
    return secret


def write_secret(path: Path, secret: bytes) -> bytes:
    """Keep ``secret`` in ``path``, owner-only, unless another process has written one
    there meanwhile; the secret the file holds."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(secret.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(staging, path)  # never replaces a file that exists: the first one stays
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links
        if not path.exists():
            os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    found = read_secret(path)
    assert found is not None
    return found


def write_private_file(path: Path, text: str) -> None:
    """Write ``path`` whole and owner-only: a reader sees the old text or the new one."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def fingerprint(secret: bytes) -> str:
    """What the database keeps to tell whether server processes share one secret: its
    SHA-256 (the secret cannot be computed from it)."""
    return hashlib.sha256(b"runyard secret fingerprint:" + secret).hexdigest()
