"""User Data tokens and scopes: pure functions, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runyard.errors import Forbidden, InvalidInput, Unauthorized
from runyard.operations.userdata_tokens import (
    Scope,
    UserDataToken,
    decode_token,
    encode_token,
    parse_scopes,
)

SECRET = b"s" * 32
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def make(*scopes: tuple[str, str], minutes: int = 15) -> UserDataToken:
    return UserDataToken(
        scopes=tuple(Scope(operation=op, path=path) for op, path in scopes),
        expires_at=NOW + timedelta(minutes=minutes),
        issued_to="job 7",
    )


def test_a_token_decodes_to_what_was_encoded() -> None:
    token = make(("list", "/Scans/"), ("read", "/Scans/s1/a.aim"), ("write", "/Résultats/"))
    text = encode_token(token, SECRET)
    assert text.startswith("ry_ud_") and " " not in text
    assert decode_token(text, SECRET, NOW) == token


def test_a_token_is_valid_until_its_expiry_and_not_at_it() -> None:
    text = encode_token(make(("list", "/Scans/")), SECRET)
    decode_token(text, SECRET, NOW + timedelta(minutes=15) - timedelta(seconds=1))
    with pytest.raises(Unauthorized, match="expired at 2026-11-27T10:15:00"):
        decode_token(text, SECRET, NOW + timedelta(minutes=15))


def test_another_secret_or_a_changed_token_does_not_verify() -> None:
    text = encode_token(make(("list", "/Scans/")), SECRET)
    with pytest.raises(Unauthorized, match="signature does not match"):
        decode_token(text, b"t" * 32, NOW)
    with pytest.raises(Unauthorized, match="signature does not match"):
        decode_token(text[:8] + ("A" if text[8] != "A" else "B") + text[9:], SECRET, NOW)


def test_other_tokens_are_refused_as_not_user_data_tokens() -> None:
    for text in ("ry_admin_abc", "ry_job_1_abc", "garbage"):
        with pytest.raises(Forbidden, match="accept only a User Data token"):
            decode_token(text, SECRET, NOW)


@pytest.mark.parametrize(
    ("scope", "operation", "path", "covered"),
    [
        (("read", "/Scans/"), "read", "/Scans/", True),
        (("read", "/Scans/"), "read", "/Scans/s1/deep/a.aim", True),
        (("read", "/Scans/"), "list", "/Scans/", False),
        (("read", "/Scans/s1/"), "read", "/Scans/s10/a.aim", False),
        (("read", "/Scans/s1/a.aim"), "read", "/Scans/s1/a.aim", True),
        (("read", "/Scans/s1/a.aim"), "read", "/Scans/s1/a.aim2", False),
        (("read", "/Scans/s1/a.aim"), "read", "/Scans/s1/a.aim/x", False),
        (("list", "/Scans/s1/"), "list", "/Scans/", False),
    ],
)
def test_a_scope_covers_its_path_and_what_lies_below_a_folder(
    scope: tuple[str, str], operation: str, path: str, covered: bool
) -> None:
    assert Scope(operation=scope[0], path=scope[1]).covers(operation, path) is covered


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ([], "at least one scope"),
        ([("copy", "/Scans/")], "unknown User Data operation"),
        ([("list", "/Scans/a.aim")], "is a file path"),
        ([("read", "Scans/")], "does not start with '/'"),
        ([("read", "/Scans/%252e%252e/")], "'.' or '..'"),
        ([("read",)], "a scope is a pair"),
    ],
)
def test_scopes_are_checked(scopes: list[tuple[str, ...]], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_scopes(scopes)
