"""The store contract (``store_contract.py``) on ``MemoryStore``, and its save and load."""

from __future__ import annotations

import json
from typing import Any

import pytest
from store_contract import *  # noqa: F403 - the contract's tests run here
from store_contract import ManualClock, job

from mediax_async import MemoryStore, PendingStore, State
from mediax_async.stores import Submission, TicketStatus, Watch

pytestmark = pytest.mark.anyio  # the contract's tests are async


@pytest.fixture
def make_store():  # type: ignore[no-untyped-def]  # a factory fixture for the contract
    """MemoryStore on the contract's clock."""

    async def make(clock: ManualClock, **options: Any) -> PendingStore:
        return MemoryStore(clock=clock, **options)

    return make


async def test_a_dumped_store_loads_with_its_jobs_and_unresolved_submissions() -> None:
    """dump() survives JSON; the loaded store polls the jobs at once and looks submissions up."""
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    await store.watch(
        [Watch("j1", 50.0, "tag", "musicSeperate", State.PROCESSING, None, job("j1"))]
    )
    ticket = await store.begin_submission(Submission("k1", "tag", {"inputs": []}), 60.0)
    done = await store.begin_submission(Submission("k2", "tag", {"inputs": []}), 60.0)
    await store.finish_submission("k2", done.fence, Watch("j2", 50.0, key="k2"))
    assert ticket.status == TicketStatus.SEND
    loaded = MemoryStore.load(json.loads(json.dumps(store.dump())), clock=clock)
    claims = (await loaded.claim(10, 60.0)).claims
    assert sorted(c.job_id for claim in claims for c in claim.jobs) == ["j1", "j2"]
    (orphan,) = await loaded.claim_submissions(10, 60.0)
    assert (orphan.submission.key, orphan.status) == ("k1", TicketStatus.RECONCILE)
    assert await loaded.attributed("tag") == {"j2"}
    assert (await loaded.begin_submission(Submission("k2", "tag", {}), 60.0)).job_id == "j2"


def test_a_saved_state_that_is_not_one_is_refused() -> None:
    """load() of anything but dump()'s data is a ValueError naming the problem."""
    with pytest.raises(ValueError, match="not a saved waiter state"):
        MemoryStore.load({"jobs": []})
    with pytest.raises(ValueError, match="cannot be read"):
        MemoryStore.load({"version": 1, "jobs": [{"id": ""}]})
