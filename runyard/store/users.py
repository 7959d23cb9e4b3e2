"""Statements on users, groups, their members, workflow shares, personal tokens and failed
log ins (docs/users.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, or_, select, update

from runyard.store.schema import (
    group_members,
    groups,
    login_failures,
    tokens,
    users,
    workflow_shares,
    workflows,
)

ADMINS = "admins"


# -- users ----------------------------------------------------------------------------------


def insert_user(conn: Connection, name: str, password_hash: str | None, now: datetime) -> int:
    result = conn.execute(
        insert(users).values(name=name, password_hash=password_hash, created_at=now)
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def find_user(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    return dict(row._mapping) if row else None


def user_name(conn: Connection, user_id: int) -> str | None:
    return conn.execute(select(users.c.name).where(users.c.id == user_id)).scalar()


def list_users(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(users).order_by(users.c.name))
    return [dict(r._mapping) for r in rows]


def set_password_hash(conn: Connection, user_id: int, password_hash: str | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


def set_disabled(conn: Connection, user_id: int, at: datetime | None) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(disabled_at=at))


def user_groups(conn: Connection, user_id: int) -> list[str]:
    query = (
        select(groups.c.name)
        .join(group_members, group_members.c.group_id == groups.c.id)
        .where(group_members.c.user_id == user_id)
        .order_by(groups.c.name)
    )
    return list(conn.execute(query).scalars())


def groups_of_users(conn: Connection) -> dict[int, list[str]]:
    query = (
        select(group_members.c.user_id, groups.c.name)
        .join(groups, group_members.c.group_id == groups.c.id)
        .order_by(groups.c.name)
    )
    found: dict[int, list[str]] = {}
    for user_id, name in conn.execute(query):
        found.setdefault(int(user_id), []).append(name)
    return found


# -- groups -----------------------------------------------------------------------------------


def insert_group(conn: Connection, name: str, now: datetime) -> int:
    result = conn.execute(insert(groups).values(name=name, created_at=now))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def find_group(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(groups.c.id).where(groups.c.name == name)).scalar()
    return int(found) if found is not None else None


def delete_group(conn: Connection, group_id: int) -> None:
    conn.execute(delete(group_members).where(group_members.c.group_id == group_id))
    conn.execute(
        delete(workflow_shares).where(
            workflow_shares.c.grantee_kind == "group", workflow_shares.c.grantee_id == group_id
        )
    )
    conn.execute(delete(groups).where(groups.c.id == group_id))


def list_groups(conn: Connection) -> list[dict[str, Any]]:
    members: dict[int, list[str]] = {}
    query = (
        select(group_members.c.group_id, users.c.name)
        .join(users, group_members.c.user_id == users.c.id)
        .order_by(users.c.name)
    )
    for group_id, user in conn.execute(query):
        members.setdefault(int(group_id), []).append(user)
    rows = conn.execute(select(groups).order_by(groups.c.name))
    return [{"name": r.name, "members": members.get(r.id, [])} for r in rows]


def add_member(conn: Connection, group_id: int, user_id: int) -> bool:
    exists = conn.execute(
        select(func.count()).where(
            group_members.c.group_id == group_id, group_members.c.user_id == user_id
        )
    ).scalar()
    if exists:
        return False
    conn.execute(insert(group_members).values(group_id=group_id, user_id=user_id))
    return True


def remove_member(conn: Connection, group_id: int, user_id: int) -> bool:
    result = conn.execute(
        delete(group_members).where(
            group_members.c.group_id == group_id, group_members.c.user_id == user_id
        )
    )
    return result.rowcount == 1


def count_members(conn: Connection, group_id: int, *, enabled_only: bool = False) -> int:
    query = select(func.count()).select_from(
        group_members.join(users, group_members.c.user_id == users.c.id)
    )
    query = query.where(group_members.c.group_id == group_id)
    if enabled_only:
        query = query.where(users.c.disabled_at.is_(None))
    return int(conn.execute(query).scalar_one())


# -- workflows: owners and shares ---------------------------------------------------------------


def workflow_owner(conn: Connection, workflow_id: int) -> int | None:
    owner = conn.execute(select(workflows.c.owner_id).where(workflows.c.id == workflow_id)).scalar()
    return int(owner) if owner is not None else None


def set_workflow_owner(conn: Connection, workflow_id: int, user_id: int) -> None:
    conn.execute(update(workflows).where(workflows.c.id == workflow_id).values(owner_id=user_id))


def _grantee(user_id: int, group_ids: list[int]) -> Any:
    return or_(
        and_(workflow_shares.c.grantee_kind == "user", workflow_shares.c.grantee_id == user_id),
        and_(
            workflow_shares.c.grantee_kind == "group",
            workflow_shares.c.grantee_id.in_(group_ids or [-1]),
        ),
    )


def share_levels(
    conn: Connection, user_id: int, group_ids: list[int], workflow_id: int | None = None
) -> dict[int, list[str]]:
    """workflow id -> the levels shared with the user or one of its groups."""
    query = select(workflow_shares.c.workflow_id, workflow_shares.c.level).where(
        _grantee(user_id, group_ids)
    )
    if workflow_id is not None:
        query = query.where(workflow_shares.c.workflow_id == workflow_id)
    found: dict[int, list[str]] = {}
    for wid, level in conn.execute(query):
        found.setdefault(int(wid), []).append(level)
    return found


def workflow_owners(conn: Connection) -> dict[int, str]:
    """workflow id -> the name of its owner, for every workflow that has one."""
    query = select(workflows.c.id, users.c.name).join(users, workflows.c.owner_id == users.c.id)
    return {int(wid): name for wid, name in conn.execute(query)}


def owned_workflows(conn: Connection, user_id: int) -> list[int]:
    return list(
        conn.execute(select(workflows.c.id).where(workflows.c.owner_id == user_id)).scalars()
    )


def group_ids(conn: Connection, names: list[str]) -> list[int]:
    if not names:
        return []
    return list(conn.execute(select(groups.c.id).where(groups.c.name.in_(names))).scalars())


def list_shares(conn: Connection, workflow_id: int) -> list[dict[str, Any]]:
    user_names = select(users.c.id, users.c.name).subquery()
    group_names = select(groups.c.id, groups.c.name).subquery()
    found = []
    rows = conn.execute(
        select(workflow_shares).where(workflow_shares.c.workflow_id == workflow_id)
    ).all()
    names = {("user", int(i)): n for i, n in conn.execute(select(user_names))} | {
        ("group", int(i)): n for i, n in conn.execute(select(group_names))
    }
    for r in rows:
        found.append(
            {
                r.grantee_kind: names.get((r.grantee_kind, r.grantee_id), "?"),
                "level": r.level,
                "created_at": r.created_at,
            }
        )
    return sorted(found, key=lambda s: (s.get("group", ""), s.get("user", "")))


def put_share(
    conn: Connection, workflow_id: int, kind: str, grantee_id: int, level: str, now: datetime
) -> None:
    where = (
        workflow_shares.c.workflow_id == workflow_id,
        workflow_shares.c.grantee_kind == kind,
        workflow_shares.c.grantee_id == grantee_id,
    )
    if conn.execute(update(workflow_shares).where(*where).values(level=level)).rowcount == 0:
        conn.execute(
            insert(workflow_shares).values(
                workflow_id=workflow_id,
                grantee_kind=kind,
                grantee_id=grantee_id,
                level=level,
                created_at=now,
            )
        )


def delete_share(conn: Connection, workflow_id: int, kind: str, grantee_id: int) -> bool:
    result = conn.execute(
        delete(workflow_shares).where(
            workflow_shares.c.workflow_id == workflow_id,
            workflow_shares.c.grantee_kind == kind,
            workflow_shares.c.grantee_id == grantee_id,
        )
    )
    return result.rowcount == 1


# -- personal tokens ----------------------------------------------------------------------------


def insert_user_token(
    conn: Connection, *, token_hash: str, user: str, label: str, now: datetime
) -> int:
    result = conn.execute(
        insert(tokens).values(
            token_hash=token_hash, kind="user", name=user, label=label, created_at=now
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def list_user_tokens(conn: Connection, user: str | None) -> list[dict[str, Any]]:
    """The personal tokens of ``user`` (None: of everyone), not revoked, newest first."""
    query = select(
        tokens.c.id, tokens.c.name, tokens.c.label, tokens.c.created_at, tokens.c.last_used_at
    ).where(tokens.c.kind == "user", tokens.c.revoked_at.is_(None))
    if user is not None:
        query = query.where(tokens.c.name == user)
    rows = conn.execute(query.order_by(tokens.c.id.desc()))
    return [
        {
            "id": r.id,
            "user": r.name,
            "label": r.label or "",
            "created_at": r.created_at,
            "last_used_at": r.last_used_at,
        }
        for r in rows
    ]


def revoke_all(conn: Connection, user: str, now: datetime) -> list[str]:
    """Revoke every token and session of ``user``: the hashes revoked."""
    where = (
        or_(
            and_(tokens.c.kind == "user", tokens.c.name == user),
            and_(tokens.c.kind == "session", tokens.c.name == f"user:{user}"),
        ),
        tokens.c.revoked_at.is_(None),
    )
    hashes = list(conn.execute(select(tokens.c.token_hash).where(*where)).scalars())
    conn.execute(update(tokens).where(*where).values(revoked_at=now))
    return hashes


# -- failed log ins -------------------------------------------------------------------------------


def record_login_failure(conn: Connection, account: str, address: str, now: datetime) -> None:
    conn.execute(insert(login_failures).values(account=account[:100], address=address, at=now))


def count_login_failures(
    conn: Connection, *, since: datetime, account: str | None = None, address: str | None = None
) -> int:
    query = select(func.count()).select_from(login_failures).where(login_failures.c.at >= since)
    if account is not None:
        query = query.where(login_failures.c.account == account[:100])
    if address is not None:
        query = query.where(login_failures.c.address == address)
    return int(conn.execute(query).scalar_one())


def forget_login_failures(
    conn: Connection, *, before: datetime, account: str | None = None
) -> None:
    query = delete(login_failures).where(login_failures.c.at < before)
    if account is not None:
        query = delete(login_failures).where(login_failures.c.account == account[:100])
    conn.execute(query)
