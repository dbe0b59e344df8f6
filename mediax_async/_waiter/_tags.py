"""Batch tags: when one ListJobs is worth more than one GetJob per job. Pure.

Jobs that share a custom id (a batch tag, as ``mediax batch`` gives its
jobs) can be refreshed with one ListJobs instead of one GetJob each. ListJobs
returns every job with the tag, finished ones too, and a request costs about
as much as decoding 20-30 jobs, so once fewer than one listed job in 20 is
still watched, asking for those one by one is cheaper.
"""

from __future__ import annotations

from .._constants import CUSTOM_ID_PREFIX

__all__ = ["LIST_WORTH_JOBS", "batch_tag", "list_is_worth_it"]

LIST_WORTH_JOBS = 20
"""Listed jobs one watched member of a tag pays for."""


def batch_tag(custom_id: str | None, enabled: bool = True) -> str | None:
    """The batch tag a job with ``custom_id`` is refreshed through, or None.

    The client's own custom ids (``mxa-...``) are unique: no batch to share.
    """
    if not enabled or not custom_id or custom_id.startswith(CUSTOM_ID_PREFIX):
        return None
    return custom_id


def list_is_worth_it(members: int, listed: int) -> bool:
    """Whether one ListJobs beats a GetJob per job for ``members`` watched jobs of a tag.

    ``listed`` is how many jobs the tag's last ListJobs answer held.
    """
    return members >= 2 and members * LIST_WORTH_JOBS >= listed
