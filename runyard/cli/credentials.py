"""The credentials file of ``runyard login``: a personal token per server URL.

``$XDG_CONFIG_HOME/runyard/credentials.json`` (else ``~/.config/runyard/``), readable by its
owner only (file mode 0600, folder 0700)::

    {"servers": {"http://lab-server:8765": {"user": "alice", "token": "ry_user_...",
                                             "token_id": 7}}}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runyard.errors import ConfigError

FILE_MODE = 0o600
FOLDER_MODE = 0o700


@dataclass(frozen=True, kw_only=True)
class Login:
    """What ``runyard login`` stored for one server."""

    user: str
    token: str
    token_id: int | None = None


def server_key(url: str) -> str:
    """The key of a server URL in the file (without a trailing slash)."""
    return url.strip().rstrip("/")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"servers": {}}
    except ValueError as exc:
        raise ConfigError(
            f"the credentials file {path} is not valid JSON ({exc}); remove it and run "
            "'runyard login' again",
            key=str(path),
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
        raise ConfigError(
            f"the credentials file {path} has no 'servers' object; remove it and run "
            "'runyard login' again",
            key=str(path),
        )
    return data


def find(path: Path, url: str) -> Login | None:
    """The login stored for the server at ``url``, if any."""
    entry = _read(path)["servers"].get(server_key(url))
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        return None
    token_id = entry.get("token_id")
    return Login(
        user=str(entry.get("user", "")),
        token=entry["token"],
        token_id=token_id if isinstance(token_id, int) else None,
    )


def store(path: Path, url: str, login: Login) -> None:
    """Keep ``login`` for the server at ``url`` (replacing an earlier one)."""
    data = _read(path)
    data["servers"][server_key(url)] = asdict(login)
    _write(path, data)


def remove(path: Path, url: str) -> Login | None:
    """Forget the login for the server at ``url``; what was stored, if anything."""
    found = find(path, url)
    data = _read(path)
    if data["servers"].pop(server_key(url), None) is not None:
        _write(path, data)
    return found


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write the file whole (a temporary file renamed over it), owner-only from the start."""
    path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    os.chmod(path.parent, FOLDER_MODE)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
