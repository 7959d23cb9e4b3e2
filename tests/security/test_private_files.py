"""The server's private files: the data directory (0700), the SQLite database (0600) and the
HMAC secret, in a 0600 file of its own rather than in the database (docs/security.md)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from runyard.errors import ConfigError
from runyard.operations import Runyard
from runyard.settings import Settings
from runyard.store.schema import settings as settings_table


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def stored_settings(ry: Runyard) -> dict[str, str]:
    with ry.store.read() as conn:
        return {r.key: r.value for r in conn.execute(sa.select(settings_table))}


def test_a_new_data_directory_is_0700_and_its_sqlite_database_0600(tmp_path: Path) -> None:
    ry = Runyard(Settings(data_dir=tmp_path / "data")).open()
    try:
        ry.auth.create_worker_token("w1")  # a write: the -wal and -shm files exist now
        data = tmp_path / "data"
        assert mode(data) == 0o700
        for name in ("runyard.db", "runyard.db-wal", "runyard.db-shm"):
            assert mode(data / name) == 0o600, name
    finally:
        ry.close()


def test_loose_permissions_of_an_existing_data_directory_are_tightened_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    Runyard(Settings(data_dir=data)).open().close()
    data.chmod(0o755)
    (data / "runyard.db").chmod(0o644)
    with caplog.at_level(logging.WARNING):
        ry = Runyard(Settings(data_dir=data)).open()
    ry.close()
    assert (mode(data), mode(data / "runyard.db")) == (0o700, 0o600)
    said = caplog.text
    assert f"{data}" in said and "0755" in said and "0700" in said
    assert "runyard.db" in said and "0644" in said and "0600" in said


def test_the_secret_is_an_owner_only_file_and_not_in_the_database(ry: Runyard) -> None:
    secret_file = ry.settings.data_dir / "secret"
    assert ry.settings.secret_path == secret_file
    assert mode(secret_file) == 0o600
    assert bytes.fromhex(secret_file.read_text().strip()) == ry.auth.secret()
    assert "secret" not in stored_settings(ry)
    assert ry.auth.secret().hex() not in repr(stored_settings(ry))


def test_a_secret_kept_in_the_database_by_an_older_version_moves_to_the_file(
    settings: Settings,
) -> None:
    ry = Runyard(settings).open()
    old = "ab" * 32
    with ry.store.write() as conn:  # as an older version left it: no fingerprint, no file
        conn.execute(sa.delete(settings_table).where(settings_table.c.key.like("secret%")))
        conn.execute(sa.insert(settings_table).values(key="secret", value=old))
    ry.close()
    settings.secret_path.unlink()
    ry = Runyard(settings).open()
    try:
        assert settings.secret_path.read_text().strip() == old
        assert mode(settings.secret_path) == 0o600
        assert "secret" not in stored_settings(ry)
        # Tokens signed before still hold: the signature is the one made with the old secret.
        expected = hmac.new(bytes.fromhex(old), b"7:lease", hashlib.sha256).hexdigest()
        assert ry.auth.job_token(7, "lease") == f"ry_job_7_{expected}"
    finally:
        ry.close()


def test_a_secret_file_that_is_not_a_secret_is_refused_naming_it(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    settings.secret_path.write_text("not hex\n")
    ry = Runyard(settings)
    with pytest.raises(ConfigError, match=str(settings.secret_path)):
        ry.open()
    ry.close()


def test_servers_on_one_postgresql_must_share_their_secret_file(
    tmp_path: Path, postgres_url: str
) -> None:
    first = Runyard(Settings(data_dir=tmp_path / "a", database_url=postgres_url)).open()
    try:
        other = Runyard(Settings(data_dir=tmp_path / "b", database_url=postgres_url))
        with pytest.raises(ConfigError, match="--secret-file") as refused:
            other.open()
        other.close()
        assert str(tmp_path / "b" / "secret") in refused.value.message
        shared = Settings(
            data_dir=tmp_path / "c",
            database_url=postgres_url,
            secret_file=tmp_path / "a" / "secret",
        )
        second = Runyard(shared).open()
        assert second.auth.secret() == first.auth.secret()
        second.close()
    finally:
        first.close()
