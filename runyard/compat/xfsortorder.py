"""``xfsortorder``: sort orders for new runs (``runyard.sortorder`` under XamFlow's name)."""

from __future__ import annotations

from collections.abc import Iterable

from runyard import sortorder


def get_new_source_job_sort_orders(existing: Iterable[str | None], n: int) -> list[str]:
    """``n`` increasing sort orders, all after every one in ``existing`` (``None`` entries, of
    runs without a sort order, are skipped). A malformed key raises ``InvalidInput``."""
    if n < 0:
        raise ValueError(f"cannot make {n} sort orders; n must be 0 or more")
    return sortorder.new_keys((key for key in existing if key is not None), n)


__all__ = ["get_new_source_job_sort_orders"]
