"""Who may do what to a workflow, its runs, jobs and files (docs/users.md).

A workflow belongs to the user who made it (``own``) and is shared with users or groups at a
level: ``view`` (see it, its runs, jobs, logs, files and live changes), ``operate`` (also
start runs, answer forms, rename, copy, obsolete and restore runs, restart and abort jobs)
or ``edit`` (also change tasks, start and stop it). Admins may do everything. A job acts with
the rights of its workflow: ``operate`` there, nothing elsewhere. Workers reach jobs only
through the worker protocol.

A caller that may not even view a workflow is told it does not exist (404), so that names
of other users' workflows do not leak; one that may view it but not more is refused (403).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Forbidden, InvalidInput, NotFound
from runyard.models import Workflow
from runyard.operations.auth import Principal
from runyard.operations.base import Operations
from runyard.operations.userdata_tokens import check_virtual_path
from runyard.store import files as file_rows
from runyard.store import jobs as job_rows
from runyard.store import runs as run_rows
from runyard.store import userdata as userdata_rows
from runyard.store import users as user_rows
from runyard.store import workers as worker_rows
from runyard.store import workflows as workflow_rows

LEVELS = ("view", "operate", "edit", "own")
SHARE_LEVELS = LEVELS[:3]


def at_least(level: str | None, need: str) -> bool:
    return level is not None and LEVELS.index(level) >= LEVELS.index(need)


class AccessManager(Operations):
    # -- levels -------------------------------------------------------------------------------

    def level(self, conn: Connection, caller: Principal, workflow_id: int) -> str | None:
        """The caller's level on a workflow; None: it may not even see it."""
        if caller.is_admin:
            return "own"
        if caller.kind == "job":
            return "operate" if caller.workflow_id == workflow_id else None
        if caller.kind != "user" or caller.user_id is None:
            return None
        if user_rows.workflow_owner(conn, workflow_id) == caller.user_id:
            return "own"
        groups = user_rows.group_ids(conn, sorted(caller.groups))
        levels = user_rows.share_levels(conn, caller.user_id, groups, workflow_id)
        return max(levels.get(workflow_id, []), key=LEVELS.index, default=None)

    def visible(self, caller: Principal) -> dict[int, str] | None:
        """workflow id -> the caller's level, for every workflow it may see; None: all
        (an admin)."""
        if caller.is_admin:
            return None
        if caller.kind == "job":
            return {caller.workflow_id: "operate"} if caller.workflow_id is not None else {}
        if caller.kind != "user" or caller.user_id is None:
            return {}
        with self.store.read() as conn:
            groups = user_rows.group_ids(conn, sorted(caller.groups))
            shared = user_rows.share_levels(conn, caller.user_id, groups)
            found = {wid: max(levels, key=LEVELS.index) for wid, levels in shared.items()}
            return found | dict.fromkeys(user_rows.owned_workflows(conn, caller.user_id), "own")

    def owners(self) -> dict[int, str]:
        """workflow id -> its owner's name."""
        with self.store.read() as conn:
            return user_rows.workflow_owners(conn)

    def _check(
        self, conn: Connection, caller: Principal, workflow: Workflow | None, need: str, what: str
    ) -> Workflow:
        level = self.level(conn, caller, workflow.id) if workflow is not None else None
        if workflow is None or level is None:
            raise NotFound(f"no {what}", caller=caller.role)
        if not at_least(level, need):
            raise Forbidden(
                f"you may {level} workflow {workflow.name!r}; this needs {need} "
                "(ask its owner or an admin to share it with you at that level)",
                workflow=workflow.name,
                level=level,
                needs=need,
            )
        return workflow

    # -- checks by what a request names ----------------------------------------------------------

    def workflow(self, caller: Principal, name: str, need: str = "view") -> Workflow:
        """The workflow ``name`` if the caller has ``need`` on it."""
        with self.store.read() as conn:
            workflow = workflow_rows.get_workflow(conn, name=name)
            return self._check(conn, caller, workflow, need, f"workflow named {name!r}")

    def run(self, caller: Principal, run_id: int, need: str = "view") -> Workflow:
        with self.store.read() as conn:
            run = run_rows.get_run(conn, run_id)
            workflow = workflow_rows.get_workflow(conn, id=run.workflow_id) if run else None
            return self._check(conn, caller, workflow, need, f"run {run_id}")

    def job(self, caller: Principal, serial: int, need: str = "view") -> Workflow:
        with self.store.read() as conn:
            job = job_rows.get_job(conn, serial)
            workflow = workflow_rows.get_workflow(conn, id=job.workflow_id) if job else None
            return self._check(conn, caller, workflow, need, f"job {serial}")

    def file(self, caller: Principal, file_id: str) -> None:
        """May the caller read this file of the file store? A job's file: with view on its
        workflow. A file a user uploaded: that user, admins and jobs (which get its id from
        their inputs). Workers do not read files."""
        if caller.is_admin:
            return
        with self.store.read() as conn:
            stored = file_rows.get_file(conn, file_id)
            if stored is None:
                raise NotFound(f"no file {file_id} in the file store", file_id=file_id)
            if stored.job_serial is not None:
                job = job_rows.get_job(conn, stored.job_serial)
                workflow = workflow_rows.get_workflow(conn, id=job.workflow_id) if job else None
                self._check(conn, caller, workflow, "view", f"file {file_id} in the file store")
                return
            uploader = file_rows.uploader(conn, file_id)
        if caller.kind == "job" or (caller.kind == "user" and caller.name == uploader):
            return
        raise NotFound(f"no file {file_id} in the file store", file_id=file_id)

    def userdata_mapping(self, caller: Principal, groups: Sequence[str]) -> bool:
        """May the caller use a User Data mapping for ``groups`` (empty: for every user)?
        A job uses it with the rights of its workflow's owner."""
        if not groups or caller.is_admin:
            return True
        if caller.kind == "user":
            return bool(caller.groups & set(groups))
        if caller.kind == "job" and caller.workflow_id is not None:
            with self.store.read() as conn:
                owner = user_rows.workflow_owner(conn, caller.workflow_id)
                member_of = user_rows.user_groups(conn, owner) if owner is not None else []
            return bool(set(member_of) & set(groups))
        return False

    def userdata_path(self, caller: Principal, path: str) -> None:
        """Refuse a User Data path under no mapping that the caller may use."""
        check_virtual_path(path)
        with self.store.read() as conn:
            mappings = userdata_rows.list_mappings(conn)
        for mapping in mappings:
            if path.startswith(mapping.root) and self.userdata_mapping(caller, mapping.groups):
                return
        raise NotFound(f"no User Data root that you may use covers {path}", path=path)

    # -- owners and shares ------------------------------------------------------------------------

    def shares(self, caller: Principal, name: str) -> dict[str, Any]:
        """Who owns a workflow and with whom it is shared (anyone who may view it may see)."""
        workflow = self.workflow(caller, name, "view")
        with self.store.read() as conn:
            owner = user_rows.workflow_owner(conn, workflow.id)
            return {
                "workflow": workflow.name,
                "owner": user_rows.user_name(conn, owner) if owner is not None else None,
                "your_level": self.level(conn, caller, workflow.id),
                "shares": user_rows.list_shares(conn, workflow.id),
            }

    def share(
        self,
        caller: Principal,
        name: str,
        *,
        user: str | None = None,
        group: str | None = None,
        level: str | None,
    ) -> dict[str, Any]:
        """Share a workflow with a user or a group at ``level`` (None: stop sharing). Only
        its owner and admins may."""
        if (user is None) == (group is None):
            raise InvalidInput("name either a user or a group to share with")
        if level is not None and level not in SHARE_LEVELS:
            raise InvalidInput(f"level {level!r} is not one of {', '.join(SHARE_LEVELS)}")
        workflow = self.workflow(caller, name, "own")
        kind, grantee = ("user", user) if user is not None else ("group", group)
        assert grantee is not None
        with self.store.write() as conn:
            if kind == "user":
                found = user_rows.find_user(conn, grantee)
                grantee_id = found["id"] if found else None
            else:
                grantee_id = user_rows.find_group(conn, grantee)
            if grantee_id is None:
                raise NotFound(f"no {kind} named {grantee!r}", **{kind: grantee})
            if level is None:
                user_rows.delete_share(conn, workflow.id, kind, grantee_id)
                message = f"stopped sharing workflow {workflow.name} with {kind} {grantee}"
            else:
                user_rows.put_share(conn, workflow.id, kind, grantee_id, level, self.now())
                message = f"shared workflow {workflow.name} with {kind} {grantee} to {level}"
            self._log(conn, caller.name, "workflow.share", message, workflow_id=workflow.id)
        return self.shares(caller, name)

    def activity(
        self,
        caller: Principal,
        *,
        limit: int = 100,
        actor: str | None = None,
        action: str | None = None,
        workflow: str | None = None,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """The activity log, newest first, filtered: an admin sees every entry, a user its
        own actions and those on workflows it may see."""
        visible = self.visible(caller)
        workflow_id = self.workflow(caller, workflow).id if workflow else None
        with self.store.read() as conn:
            return worker_rows.find_activity(
                conn,
                limit=limit,
                actor=actor,
                action=action,
                workflow_id=workflow_id,
                before_id=before_id,
                visible_to=None if visible is None else (caller.name, sorted(visible)),
            )
