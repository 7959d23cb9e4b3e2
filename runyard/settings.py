"""One settings object, read once from ``RUNYARD_*`` variables and CLI flags.

Nothing else in Runyard reads ``os.environ`` (the task-script library reads the job's own
variables, which the worker sets, in ``runyard.task``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from runyard.errors import ConfigError


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "runyard"


def default_config_dir() -> Path:
    """Where ``runyard login`` keeps its credentials: $XDG_CONFIG_HOME/runyard, else
    ~/.config/runyard."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "runyard"


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path
    database_url: str = ""  # empty: SQLite in data_dir
    host: str = "127.0.0.1"
    port: int = 8765
    processes: int = 1  # server processes on the one port (PostgreSQL only)
    # Addresses of reverse proxies whose X-Forwarded-For/-Proto headers are believed ("*": any)
    forwarded_allow_ips: str = "127.0.0.1"
    server: str = ""  # client commands: the server's URL
    token: str = ""  # client commands: the token to use
    lease_seconds: float = 30.0
    max_attempts: int = 3
    max_jobs: int = 2
    config_dir: Path = field(default_factory=default_config_dir)  # client commands' credentials
    # The file of the HMAC secret (default: the data directory's ``secret``); server processes
    # on one PostgreSQL database, on several machines, must name one with the same secret.
    secret_file: Path | None = None

    def __post_init__(self) -> None:
        # Resolved once, here: a relative folder (--data-dir ./lab) must name the same folder
        # for every process and every working folder (jobs run in their own).
        for name in ("data_dir", "config_dir"):
            object.__setattr__(self, name, Path(getattr(self, name)).expanduser().absolute())
        if self.secret_file is not None:
            object.__setattr__(self, "secret_file", Path(self.secret_file).expanduser().absolute())

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'runyard.db'}"

    @property
    def server_file(self) -> Path:
        """Written by a running server: its URL, so that local clients find it."""
        return self.data_dir / "server.json"

    @property
    def secret_path(self) -> Path:
        """The file of the HMAC secret that signs job, User Data and CSRF tokens."""
        return self.secret_file or self.data_dir / "secret"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file; None on PostgreSQL."""
        url = self.effective_database_url
        if not url.startswith("sqlite:///"):
            return None
        path = url.removeprefix("sqlite:///").partition("?")[0]
        return None if path in ("", ":memory:") else Path(path)

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    @property
    def credentials_file(self) -> Path:
        """The tokens of ``runyard login``, by server URL."""
        return self.config_dir / "credentials.json"

    @property
    def task_types_dir(self) -> Path:
        return self.data_dir / "task-types"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    def with_overrides(self, **values: Any) -> Settings:
        """These settings with the non-None values given (CLI flags win over variables)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = "RUNYARD_" + f.name.upper()
            if name not in environ:
                continue
            raw = environ[name]
            try:
                values[f.name] = _convert(f.type, raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a valid {f.type}", key=name) from None
        values.setdefault("data_dir", default_data_dir())
        return cls(**values)


def _convert(kind: object, raw: str) -> Any:
    if kind in ("Path", Path, "Path | None"):
        return Path(raw).expanduser()
    if kind in ("int", int):
        return int(raw)
    if kind in ("float", float):
        value = float(raw)
        if value <= 0:
            raise ValueError(raw)
        return value
    return raw
