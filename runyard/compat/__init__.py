"""Compatibility modules for task scripts written for XamFlow's API (SPEC section 9).

The worker puts this folder on every script's path, so that ``import xfworkerutil``,
``import network``, ``import xfsortorder`` and ``import omni`` work unmodified. Each module is
a thin facade over Runyard's own API (``runyard.task``), which new scripts should use.

Every name of those modules exists from the start; the ones whose feature Runyard does not
have yet raise ``NotAvailable`` (a ``runyard.task.TaskError``) when called, naming what is
missing. See docs/compat.md.
"""

from __future__ import annotations

from typing import NoReturn

from runyard.task import TaskError


class NotAvailable(TaskError):
    """A compatibility function whose feature this Runyard version does not have yet."""


def not_available(name: str, reason: str) -> NoReturn:
    """Refuse a call to ``name`` (like ``xfworkerutil.spawn_xf_job_basic``) with ``reason``."""
    raise NotAvailable(
        f"{name} is not available in this Runyard version: {reason} (see docs/compat.md)"
    )
