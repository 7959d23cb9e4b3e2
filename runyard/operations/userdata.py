"""User Data: the lab's own files under virtual roots (``/Scans/``) that an admin maps onto
real folders of the server, reached by task scripts with short-lived scoped tokens
(``runyard.operations.userdata_tokens``).

The rules (docs/userdata.md):

- A virtual path is checked by ``runyard.task.virtualpath`` (no ``.``/``..`` names, also
  percent-encoded any number of times, no backslashes, NUL or empty names), then matched to
  the one mapping whose root it starts with; the real path is resolved (symbolic links
  followed) and must stay inside the real root folder. Roots do not nest.
- The file calls take a verified ``UserDataToken`` and do only what its scopes allow.
- A write streams into a hidden temporary file in the target folder and is renamed over the
  target only once its size and SHA-256 are checked: a partial write never becomes visible.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from runyard.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from runyard.models import UserDataFile, UserDataListing, UserDataMapping
from runyard.operations.base import Clock, Notifier, Operations, utcnow
from runyard.operations.files import Upload, check_announced
from runyard.operations.userdata_listing import TEMP_PREFIX, read_listing
from runyard.operations.userdata_tokens import (
    MAX_TOKEN_CHARS,
    TOKEN_SECONDS,
    UserDataToken,
    check_virtual_path,
    decode_token,
    encode_token,
    parse_scopes,
)
from runyard.settings import Settings
from runyard.store import Store
from runyard.store import userdata as userdata_rows
from runyard.store import users as user_rows

MAX_ROOT_CHARS = 500
MAX_REAL_PATH_BYTES = 4096  # PATH_MAX of Linux: longer paths fail with ENAMETOOLONG
_CHUNK = 1024 * 1024


# -- the manager -------------------------------------------------------------------------------


@dataclass(kw_only=True)
class UserDataUpload(Upload):
    """A file being written to User Data: into ``path`` (hidden, in the target's folder),
    renamed to ``target`` by ``UserDataManager.commit_write``."""

    target: Path
    virtual_path: str
    issued_to: str


class UserDataManager(Operations):
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        secret: Callable[[], bytes],
        now: Clock = utcnow,
        changed: Notifier | None = None,
    ) -> None:
        super().__init__(store, settings, now=now, changed=changed)
        self._secret = secret

    # -- mappings (admins) ---------------------------------------------------------------------

    def mappings(self) -> list[UserDataMapping]:
        with self.store.read() as conn:
            return userdata_rows.list_mappings(conn)

    def map(
        self, root: str, folder: str, *, actor: str = "system", groups: Sequence[str] = ()
    ) -> UserDataMapping:
        """Map the virtual root ``root`` (``/Scans/``) to the server's folder ``folder``
        for the members of ``groups`` (none: every user), replacing an existing mapping of
        ``root``."""
        check_virtual_path(root, folder=True)
        if root == "/" or len(root) > MAX_ROOT_CHARS:
            raise InvalidInput(
                f"{root!r} cannot be a virtual root: give a named folder like '/Scans/' "
                f"(at most {MAX_ROOT_CHARS} characters)",
                root=root,
            )
        real = self._check_real_folder(folder)
        with self.store.write() as conn:
            unknown = [g for g in groups if user_rows.find_group(conn, g) is None]
            if unknown:
                raise NotFound(f"no group named {', '.join(map(repr, unknown))}", groups=unknown)
            for other in userdata_rows.list_mappings(conn):
                if other.root != root and (
                    root.startswith(other.root) or other.root.startswith(root)
                ):
                    raise Conflict(
                        f"virtual roots cannot nest: {root} and the mapped root {other.root} "
                        "lie one inside the other; unmap it first or choose another root",
                        root=root,
                        other=other.root,
                    )
            try:
                mapping = userdata_rows.put_mapping(
                    conn, root, str(real), now=self.now(), groups=tuple(groups)
                )
            except IntegrityError:
                raise Conflict(f"{root} was mapped at the same time; try again") from None
            only = f" for the groups {', '.join(groups)}" if groups else ""
            self._log(conn, actor, "userdata.map", f"User Data {root} -> {real}{only}")
        return mapping

    def unmap(self, root: str, *, actor: str = "system") -> None:
        with self.store.write() as conn:
            if not userdata_rows.delete_mapping(conn, root):
                mapped = [m.root for m in userdata_rows.list_mappings(conn)]
                raise NotFound(
                    f"{root!r} is not a mapped User Data root; mapped: "
                    f"{', '.join(mapped) or '(none)'} (see 'runyard userdata list')",
                    root=root,
                )
            self._log(conn, actor, "userdata.unmap", f"User Data {root} unmapped")

    def _check_real_folder(self, folder: str) -> Path:
        if not folder or "\0" in folder or not os.path.isabs(folder):
            raise InvalidInput(
                f"{folder!r} is not an absolute path; give the folder's full path on the "
                "server (like /data/scans)",
                folder=folder,
            )
        path = Path(os.path.normpath(folder))
        if not path.exists():
            raise InvalidInput(f"the folder {path} does not exist on the server", folder=folder)
        if not path.is_dir():
            raise InvalidInput(f"{path} is not a folder (it is a file)", folder=folder)
        real = Path(os.path.realpath(path))
        data = Path(os.path.realpath(self.settings.data_dir))
        if real.is_relative_to(data) or data.is_relative_to(real):
            raise InvalidInput(
                f"{path} holds or lies inside Runyard's data directory ({data}), with its "
                "database and tokens; map a folder of the users' files only",
                folder=folder,
            )
        return path

    # -- tokens --------------------------------------------------------------------------------

    def create_token(
        self,
        scopes: Sequence[Sequence[str]],
        *,
        issued_to: str,
        may_use: Callable[[UserDataMapping], bool] = lambda mapping: True,
    ) -> tuple[str, UserDataToken]:
        """A signed token for ``scopes`` that lasts ``TOKEN_SECONDS``, and what it holds.
        Every scope must lie under a mapped root that the caller ``may_use``."""
        parsed = parse_scopes(scopes)
        mappings = [m for m in self.mappings() if may_use(m)]
        for scope in parsed:
            if _mapping_of(mappings, scope.path) is None:
                raise NotFound(
                    f"no User Data root covers {scope.path}; mapped roots: "
                    f"{', '.join(m.root for m in mappings) or '(none)'} (an admin maps one "
                    "with 'runyard userdata map')",
                    path=scope.path,
                )
        expires = self.now().replace(microsecond=0) + timedelta(seconds=TOKEN_SECONDS)
        token = UserDataToken(scopes=parsed, expires_at=expires, issued_to=issued_to)
        text = encode_token(token, self._secret())
        if len(text) > MAX_TOKEN_CHARS:
            raise InvalidInput(
                f"these scopes make a token of {len(text)} characters (at most "
                f"{MAX_TOKEN_CHARS}); ask for a common parent folder, or for several tokens"
            )
        return text, token

    def verify_token(self, text: str) -> UserDataToken:
        if not text:
            raise Unauthorized(
                "no token given: send 'Authorization: Bearer TOKEN' with a User Data token "
                "(POST /api/userdata/tokens)"
            )
        return decode_token(text, self._secret(), self.now())

    # -- files ---------------------------------------------------------------------------------

    def list_folder(self, token: UserDataToken, path: str | None = None) -> UserDataListing:
        """The files and subfolders of the folder ``path`` (default: the token's one ``list``
        scope). Entries that cannot be named by a virtual path, symbolic links to folders or
        out of the root, and writes in progress are left out."""
        if path is None:
            listable = [s.path for s in token.scopes if s.operation == "list"]
            if len(listable) != 1:
                raise InvalidInput(
                    "say which folder to list (?path=/Scans/...): this token has "
                    f"{len(listable)} list scopes"
                )
            path = listable[0]
        check_virtual_path(path, folder=True)
        token.require("list", path)
        real_root, real = self._resolve(path)
        if not real.is_dir():
            raise (
                InvalidInput(f"{path} is a file, not a folder", path=path)
                if real.exists()
                else NotFound(f"no folder {path} in User Data", path=path)
            )
        return read_listing(path, real, real_root)

    def readable(self, token: UserDataToken, path: str) -> Path:
        """The real path of the file ``path``, which ``token`` may read."""
        check_virtual_path(path, folder=False)
        token.require("read", path)
        _, real = self._resolve(path)
        if not real.is_file():
            raise (
                InvalidInput(f"{path} is not a file", path=path)
                if real.exists()
                else NotFound(f"no file {path} in User Data", path=path)
            )
        return real

    def open_read(self, token: UserDataToken, path: str) -> tuple[Path, int, str]:
        """The real path of the file ``path``, its size and its SHA-256 (read once here, so
        that the reader can check what it receives)."""
        real = self.readable(token, path)
        digest = hashlib.sha256()
        size = 0
        with open(real, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return real, size, digest.hexdigest()

    def begin_write(
        self,
        token: UserDataToken,
        path: str,
        *,
        size: int | None = None,
        sha256: str | None = None,
    ) -> UserDataUpload:
        """Start writing the file ``path`` (its folders are created as needed)."""
        check_virtual_path(path, folder=False)
        token.require("write", path)
        check_announced(size, sha256)
        name = path.rsplit("/", 1)[1]
        if name.startswith(TEMP_PREFIX):
            raise InvalidInput(f"names starting with {TEMP_PREFIX!r} are reserved", path=path)
        real_root, target = self._locate(path)
        folder = self._make_folders(real_root, target.parent, path)
        if os.path.lexists(target):
            self._inside(real_root, target, path)
            if target.is_dir():
                raise Conflict(f"{path} is a folder; it cannot be replaced by a file", path=path)
        temp = folder / (TEMP_PREFIX + secrets.token_hex(8))
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode: umask applies
        return UserDataUpload(
            path=temp,
            filename=name,
            handle=os.fdopen(fd, "wb"),
            target=folder / name,
            virtual_path=path,
            issued_to=token.issued_to,
        )

    def commit_write(
        self,
        upload: UserDataUpload,
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> UserDataFile:
        """Check the received file and rename it over its target; on any problem the
        temporary file is removed and the target is left as it was."""
        try:
            upload.verify(
                expected_size,
                expected_sha256,
                what=f"write of {upload.virtual_path}",
                undone="nothing was written",
            )
            upload.move_to(upload.target)
        except BaseException:
            upload.discard()
            raise
        with self.store.write() as conn:
            self._log(
                conn,
                upload.issued_to,
                "userdata.write",
                f"wrote {upload.virtual_path} ({upload.size} bytes)",
            )
        stat = upload.target.stat()
        return UserDataFile(
            name=upload.filename,
            size=stat.st_size,
            mtime=datetime.fromtimestamp(stat.st_mtime, UTC),
        )

    # -- from virtual paths to real ones ---------------------------------------------------------

    def _locate(self, path: str) -> tuple[Path, Path]:
        """The real root folder of the mapping ``path`` lies in (symbolic links resolved)
        and the real path ``path`` names (not resolved)."""
        mapping = _mapping_of(self.mappings(), path)
        if mapping is None:
            raise NotFound(
                f"no User Data root covers {path} (an admin maps one with 'runyard userdata map')",
                path=path,
            )
        real_root = Path(os.path.realpath(mapping.folder))
        if not real_root.is_dir():
            raise NotFound(
                f"the folder of the User Data root {mapping.root} ({mapping.folder}) is "
                "missing on the server; ask an admin to check it",
                path=path,
            )
        names = [name for name in path[len(mapping.root) :].split("/") if name]
        target = real_root.joinpath(*names)
        if len(os.fsencode(target)) >= MAX_REAL_PATH_BYTES:
            raise InvalidInput(
                f"the path {path if len(path) <= 100 else path[:100] + '...'} is too long for "
                f"the server's file system (its real path would pass {MAX_REAL_PATH_BYTES} "
                "bytes); use shorter or fewer names",
                path=path,
            )
        return real_root, target

    def real_file(self, path: str) -> Path:
        """The real path of the User Data file ``path``, checked as every access is (for
        the server's own reads on an admin's behalf: no token is involved)."""
        check_virtual_path(path, folder=False)
        _, real = self._resolve(path)
        if not real.is_file():
            raise NotFound(f"no file {path} in User Data", path=path)
        return real

    def _resolve(self, path: str) -> tuple[Path, Path]:
        """The real root and the real path of ``path``, resolved and checked to lie inside
        the root."""
        real_root, target = self._locate(path)
        return real_root, self._inside(real_root, target, path)

    @staticmethod
    def _inside(real_root: Path, target: Path, path: str) -> Path:
        resolved = Path(os.path.realpath(target))
        if not resolved.is_relative_to(real_root):
            raise Forbidden(
                f"{path} leads out of its User Data root (through a symbolic link); refused",
                path=path,
            )
        return resolved

    def _make_folders(self, real_root: Path, folder: Path, path: str) -> Path:
        """Create ``folder`` and the missing folders above it, once the nearest existing one
        is known to lie inside the root; the folder, resolved."""
        existing = folder
        while not os.path.lexists(existing):
            existing = existing.parent
        self._inside(real_root, existing, path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Conflict(
                f"cannot create the folder of {path}: {exc.strerror}", path=path
            ) from None
        return self._inside(real_root, folder, path)


def _mapping_of(mappings: Sequence[UserDataMapping], path: str) -> UserDataMapping | None:
    return next((m for m in mappings if path.startswith(m.root)), None)
