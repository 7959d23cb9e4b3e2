"""The key of a spawned job: what makes spawning idempotent (SPEC section 4).

A job spawned by a job is identified among the jobs of that spawning job by a SHA-256 of what
was spawned: its task, outputs, inputs, metadata (without the entity's uuid, which scripts
make afresh on every attempt) and the run it joins (the serial of ``source_job_serial``); not
its sort order (a retried search computes new ones) nor its state. The server keys every
spawned job so; the task library computes the same key to recognise, in a retried spawning
job, the jobs of the earlier attempt before sending anything (``runyard.task.spawn``).
Pure: no I/O, only the standard library.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["spawn_key"]

# Canonical JSON: sorted keys, no spaces (json.dumps with these arguments makes an encoder
# per call, a third of the time of a key).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def spawn_key(
    task_id: int,
    outputs: Mapping[str, Any],
    inputs: Mapping[str, Any],
    metadata: Mapping[str, Any],
    source_job_serial: int | None,
) -> str:
    """The key (64 hex digits) of a job spawned with these values."""
    entity = metadata.get("run_entity")
    if isinstance(entity, dict):
        metadata = {**metadata, "run_entity": {k: v for k, v in entity.items() if k != "uuid"}}
    identity = {
        "task": task_id,
        "outputs": outputs,
        "inputs": inputs,
        "metadata": metadata,
        "run": source_job_serial,
    }
    return hashlib.sha256(_CANONICAL.encode(identity).encode()).hexdigest()
