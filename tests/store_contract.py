"""What every ``PendingStore`` must do: the contract tests, run against each store.

A test module defines a ``make_store`` fixture (``(clock, **options) -> PendingStore``;
the options are the store's own: ``keep_created``)
and imports these tests with ``from store_contract import *``. The clock is
a ``ManualClock`` the store must read its time from, so leases and pauses
run out when a test says so, without waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from mediax_async import Job, NotFoundError, PendingStore, State, converter
from mediax_async.stores import (
    News,
    Reschedule,
    Settle,
    Settlement,
    Submission,
    TagDone,
    TicketStatus,
    Watch,
)

__all__ = [
    "ManualClock",
    "clock",
    "store",
    "test_a_claim_is_a_lease_and_a_dead_workers_job_comes_due_again",
    "test_a_dead_listers_tag_comes_due_again_whole_and_a_let_go_job_does_not",
    "test_a_due_job_is_claimed_with_what_its_policy_needs",
    "test_a_job_settles_once_with_one_result_entry",
    "test_a_late_write_after_the_lease_is_refused",
    "test_a_member_watched_while_its_tag_is_listed_is_claimed_alone",
    "test_a_pause_holds_every_claim",
    "test_a_settled_job_handed_back_gives_its_outcome",
    "test_a_submission_is_recorded_leased_and_attributed_once",
    "test_a_submission_whose_job_still_runs_is_never_forgotten",
    "test_a_tag_is_claimed_whole_and_listed_by_one_worker",
    "test_an_orphaned_submission_is_taken_over_after_its_lease",
    "test_early_news_is_kept_and_handed_back_on_watch",
    "test_followers_see_what_settles_after_they_start",
    "test_group_readers_share_entries_and_unacked_ones_come_back",
    "test_news_for_a_watched_job_makes_it_due_alone",
    "test_reschedule_learns_tag_and_kind_and_can_ask_alone",
    "test_trusted_news_of_an_ended_job_leaves_it_to_be_settled_not_polled",
    "test_unwatched_jobs_are_listed_but_not_claimed",
]

pytestmark = pytest.mark.anyio

MakeStore = Callable[..., Awaitable[PendingStore]]


class ManualClock:
    """A clock that moves only when told (seconds, from an arbitrary start)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def job(job_id: str, state: State = State.PROCESSING, custom_id: str | None = None) -> Job:
    data: dict[str, Any] = {"id": job_id, "state": int(state)}
    if custom_id is not None:
        data["customId"] = custom_id
    return converter.structure(data, Job)


@pytest.fixture
def clock() -> ManualClock:
    """The store's clock."""
    return ManualClock()


@pytest.fixture
async def store(make_store: MakeStore, clock: ManualClock) -> AsyncIterator[PendingStore]:
    """A fresh, empty store on ``clock``."""
    made = await make_store(clock)
    try:
        yield made
    finally:
        await made.aclose()


async def test_a_due_job_is_claimed_with_what_its_policy_needs(
    store: PendingStore, clock: ManualClock
) -> None:
    """A watched job is not handed out before its delay, then once, with its state and kind."""
    assert await store.watch([Watch("j1", 5.0, None, "musicSeperate", State.SUBMITTED)]) == [None]
    early = await store.claim(10, 60.0)
    assert list(early.claims) == []
    assert early.next_due == pytest.approx(5.0)
    clock.advance(5.0)
    (claim,) = (await store.claim(10, 60.0)).claims
    assert claim.tag is None
    (claimed,) = claim.jobs
    assert (claimed.job_id, claimed.polls, claimed.failures) == ("j1", 0, 0)
    assert (claimed.state, claimed.kind, claimed.notified) == (
        State.SUBMITTED,
        "musicSeperate",
        False,
    )
    assert claimed.elapsed == pytest.approx(5.0)
    assert list((await store.claim(10, 60.0)).claims) == []


async def test_a_claim_is_a_lease_and_a_dead_workers_job_comes_due_again(
    store: PendingStore, clock: ManualClock
) -> None:
    """A claimed job nobody writes back comes due at the end of its lease, with a new fence."""
    await store.watch([Watch("j1", 0.0)])
    (first,) = (await store.claim(10, 30.0)).claims
    clock.advance(29.0)
    assert list((await store.claim(10, 30.0)).claims) == []
    clock.advance(1.0)
    (second,) = (await store.claim(10, 30.0)).claims
    assert second.jobs[0].job_id == "j1"
    assert second.jobs[0].fence != first.jobs[0].fence
    stale = Reschedule("j1", first.jobs[0].fence, 10.0, State.PROCESSING, 1, 0)
    fresh = Reschedule("j1", second.jobs[0].fence, 10.0, State.PROCESSING, 1, 0)
    assert await store.apply([stale, fresh]) == [False, True]


async def test_a_dead_listers_tag_comes_due_again_whole_and_a_let_go_job_does_not(
    store: PendingStore, clock: ManualClock
) -> None:
    """Leases that end unanswered: the next due time says when, and each job comes back once.

    A tag's members queued for later are leased with it and come back with
    it; a job let go (unwatched) while claimed stays let go; a shorter lease
    taken after a longer one still ends first.
    """
    await store.watch([Watch("m0", 0.0, "batch-1"), Watch("m1", 50.0, "batch-1")])
    await store.watch([Watch("gone", 0.0)])
    first = await store.claim(10, 30.0)
    assert sorted(len(c.jobs) for c in first.claims) == [1, 2]
    assert first.next_due == pytest.approx(30.0)  # nothing queued: the leases' end
    await store.unwatch(["gone"])
    await store.watch([Watch("short", 1.0)])
    clock.advance(1.0)
    (short,) = (await store.claim(10, 5.0)).claims
    assert short.jobs[0].job_id == "short"
    clock.advance(5.0)
    (again,) = (await store.claim(10, 60.0)).claims
    assert [c.job_id for c in again.jobs] == ["short"]  # its 5 s lease ended first
    clock.advance(24.0)
    batch = await store.claim(10, 60.0)
    (tag,) = batch.claims
    assert (tag.tag, sorted(c.job_id for c in tag.jobs)) == ("batch-1", ["m0", "m1"])
    clock.advance(1_000.0)  # every lease ran out again
    found = sorted(c.job_id for claim in (await store.claim(10, 60.0)).claims for c in claim.jobs)
    assert found == ["m0", "m1", "short"]


async def test_a_late_write_after_the_lease_is_refused(
    store: PendingStore, clock: ManualClock
) -> None:
    """A worker whose lease ran out cannot write, even if no one claimed the job since."""
    await store.watch([Watch("j1", 0.0), Watch("j2", 0.0)])
    claims = (await store.claim(10, 30.0)).claims
    fences = {c.jobs[0].job_id: c.jobs[0].fence for c in claims}
    clock.advance(31.0)
    late = [
        Reschedule("j1", fences["j1"], 5.0, State.PROCESSING, 1, 0),
        Settle("j2", fences["j2"], job("j2", State.COMPLETED)),
    ]
    assert await store.apply(late) == [False, False]
    assert await store.outcomes(["j2"]) == {}
    assert sorted(p.job_id for p in await store.pending()) == ["j1", "j2"]


async def test_a_job_settles_once_with_one_result_entry(
    store: PendingStore, clock: ManualClock
) -> None:
    """One settlement per job: a second is refused; one outcome, one stream entry."""
    await store.watch([Watch("j1", 0.0, key="line-1")])
    (claim,) = (await store.claim(10, 30.0)).claims
    fence = claim.jobs[0].fence
    done = job("j1", State.COMPLETED)
    assert await store.apply([Settle("j1", fence, done), Settle("j1", fence, done)]) == [
        True,
        False,
    ]
    assert await store.apply([Settle("j1", None, done)]) == [False]
    outcome = (await store.outcomes(["j1", "other"]))["j1"]
    assert (outcome.job_id, outcome.job, outcome.key) == ("j1", done, "line-1")
    entries = await store.read_results("g", "c1", 10, 0.0)
    assert [e.settlement.job_id for e in entries] == ["j1"]
    assert await store.pending() == []
    assert list((await store.claim(10, 30.0)).claims) == []


async def test_a_settled_job_handed_back_gives_its_outcome(store: PendingStore) -> None:
    """Watching a job that settled recently gives its outcome at once and watches nothing."""
    error = NotFoundError("no such job", status_code=404)
    assert await store.apply([Settle("gone", None, error=error)]) == [True]
    (found,) = await store.watch([Watch("gone", 0.0)])
    assert isinstance(found, Settlement)
    assert isinstance(found.error, NotFoundError)
    assert found.outcome is found.error
    assert await store.pending() == []


async def test_a_tag_is_claimed_whole_and_listed_by_one_worker(
    store: PendingStore, clock: ManualClock
) -> None:
    """Members of a batch tag come as one claim; no one else gets them until it is done."""
    await store.watch([Watch(f"m{n}", float(n), "batch-1") for n in range(3)])
    await store.watch([Watch("solo", 0.0)])
    batch = await store.claim(10, 30.0)
    by_tag = {c.tag: c for c in batch.claims}
    assert sorted(c.job_id for c in by_tag["batch-1"].jobs) == ["m0", "m1", "m2"]
    assert [c.job_id for c in by_tag[None].jobs] == ["solo"]
    clock.advance(5.0)
    assert list((await store.claim(10, 30.0)).claims) == []  # being listed
    tag = by_tag["batch-1"]
    updates: list[Any] = [
        Reschedule(c.job_id, c.fence, 10.0, State.PROCESSING, 1, 0) for c in tag.jobs
    ]
    updates.append(TagDone("batch-1", tag.fence, 3))
    assert await store.apply(updates) == [True] * 4
    clock.advance(10.0)
    (again,) = [c for c in (await store.claim(10, 30.0)).claims if c.tag == "batch-1"]
    assert len(again.jobs) == 3
    assert {c.polls for c in again.jobs} == {1}  # each observed once per round


async def test_a_member_watched_while_its_tag_is_listed_is_claimed_alone(
    store: PendingStore, clock: ManualClock
) -> None:
    """A job that joins a tag being listed is not left for that listing (it leaves the job out).

    It comes due alone, by id, at once: it is not put off until the listing's
    lease runs out (two minutes by default).
    """
    await store.watch([Watch(f"m{n}", 0.0, "batch-1") for n in range(3)])
    (listing,) = (await store.claim(10, 120.0)).claims
    assert listing.tag == "batch-1"
    await store.watch([Watch("late", 0.0, "batch-1")])
    (alone,) = (await store.claim(10, 120.0)).claims
    assert alone.tag is None
    assert [c.job_id for c in alone.jobs] == ["late"]


async def test_reschedule_learns_tag_and_kind_and_can_ask_alone(
    store: PendingStore, clock: ManualClock
) -> None:
    """A job watched by bare id joins its tag once an answer tells it; ``alone`` asks by id."""
    await store.watch([Watch("a", 0.0), Watch("b", 0.0, "t", "musicSeperate")])
    claims = (await store.claim(10, 30.0)).claims
    fences = {c.jobs[0].job_id: c.jobs[0].fence for c in claims}
    await store.apply(
        [
            Reschedule("a", fences["a"], 1.0, State.PROCESSING, 1, 0, None, "musicSeperate", "t"),
            Reschedule("b", fences["b"], 1.0, State.PROCESSING, 1, 0),
        ]
    )
    clock.advance(1.0)
    (claim,) = (await store.claim(10, 30.0)).claims
    assert claim.tag == "t"
    assert {c.job_id: c.kind for c in claim.jobs} == {"a": "musicSeperate", "b": "musicSeperate"}
    updates: list[Any] = [
        Reschedule(c.job_id, c.fence, 0.0, State.PROCESSING, 1, 0, alone=True) for c in claim.jobs
    ]
    updates.append(TagDone("t", claim.fence, 2))
    await store.apply(updates)
    singles = (await store.claim(10, 30.0)).claims
    assert sorted(c.jobs[0].job_id for c in singles) == ["a", "b"]
    assert all(c.tag is None and len(c.jobs) == 1 for c in singles)


async def test_news_for_a_watched_job_makes_it_due_alone(
    store: PendingStore, clock: ManualClock
) -> None:
    """News makes a job due at once, alone (by id), even in a tag; news during a poll repeats."""
    await store.watch([Watch("a", 100.0, "t"), Watch("b", 100.0, "t")])
    assert await store.notify([News("a")]) == [True]
    (claim,) = (await store.claim(10, 30.0)).claims
    assert claim.tag is None
    (claimed,) = claim.jobs
    assert (claimed.job_id, claimed.notified) == ("a", True)
    assert await store.notify([News("a")]) == [True]  # while it is being polled
    assert await store.apply([Reschedule("a", claimed.fence, 50.0, State.PROCESSING, 1, 0)]) == [
        True
    ]
    (again,) = (await store.claim(10, 30.0)).claims
    assert again.jobs[0].job_id == "a"


async def test_early_news_is_kept_and_handed_back_on_watch(
    store: PendingStore, clock: ManualClock
) -> None:
    """News for a job not watched yet is kept (15 minutes) and applied when it is watched."""
    running = job("early", State.PROCESSING)
    assert await store.notify([News("early", running, True), News("stale")]) == [False, False]
    (found,) = await store.watch([Watch("early", 500.0)])
    assert isinstance(found, News)
    assert (found.job, found.trusted) == (running, True)
    (claim,) = (await store.claim(10, 30.0)).claims  # due at once, not in 500 s
    assert claim.jobs[0].notified
    clock.advance(901.0)
    assert await store.watch([Watch("stale", 10.0)]) == [None]  # too old: forgotten


async def test_trusted_news_of_an_ended_job_leaves_it_to_be_settled_not_polled(
    store: PendingStore, clock: ManualClock
) -> None:
    """Trusted news of an ended job does not make it due: the caller settles it, nobody polls it.

    Were it due at once, another worker could claim and poll the job in the
    moment between the news and the caller's ``Settle`` (a GetJob for a job a
    callback had already settled).
    """
    await store.watch([Watch("a", 100.0)])
    assert await store.notify([News("a", job("a", State.COMPLETED), True)]) == [True]
    assert await store.notify([News("early", job("early", State.ERROR), True)]) == [False]
    (found,) = await store.watch([Watch("early", 100.0)])
    assert isinstance(found, News)
    assert (await store.claim(10, 30.0)).claims == []
    assert await store.apply([Settle("a", None, job("a", State.COMPLETED))]) == [True]
    assert await store.apply([Settle("early", None, job("early", State.ERROR))]) == [True]
    clock.advance(101.0)
    assert (await store.claim(10, 30.0)).claims == []


async def test_unwatched_jobs_are_listed_but_not_claimed(
    store: PendingStore, clock: ManualClock
) -> None:
    """A job nobody waits for is not polled, still pending, and polled again once re-watched."""
    await store.watch([Watch("a", 0.0), Watch("b", 0.0)])
    await store.unwatch(["a"])
    (claim,) = (await store.claim(10, 30.0)).claims
    assert claim.jobs[0].job_id == "b"
    pending = {p.job_id: p.polled for p in await store.pending()}
    assert pending == {"a": False, "b": True}
    await store.watch([Watch("a", 0.0)])
    (claim,) = (await store.claim(10, 30.0)).claims
    assert claim.jobs[0].job_id == "a"


async def test_a_pause_holds_every_claim(store: PendingStore, clock: ManualClock) -> None:
    """After ``pause`` nothing is claimed until it runs out; a shorter pause does not shorten it."""
    await store.watch([Watch("a", 0.0)])
    await store.pause(12.0)
    await store.pause(3.0)
    held = await store.claim(10, 30.0)
    assert list(held.claims) == []
    assert held.paused == pytest.approx(12.0)
    clock.advance(12.0)
    assert len((await store.claim(10, 30.0)).claims) == 1


async def test_a_submission_is_recorded_leased_and_attributed_once(
    store: PendingStore, clock: ManualClock
) -> None:
    """Begin, busy while held, created once; a job id goes to one submission of a custom id."""
    first = Submission("k1", "tag", {"inputs": []})
    second = Submission("k2", "tag", {"inputs": []})
    ticket = await store.begin_submission(first, 60.0)
    assert ticket.status == TicketStatus.SEND
    assert (await store.begin_submission(first, 60.0)).status == TicketStatus.BUSY
    other = await store.begin_submission(second, 60.0)
    assert await store.finish_submission("k1", ticket.fence, Watch("job-1", 5.0, key="k1"))
    assert not await store.finish_submission("k2", other.fence, Watch("job-1", 5.0, key="k2"))
    assert await store.attributed("tag") == {"job-1"}
    again = await store.begin_submission(first, 60.0)
    assert (again.status, again.job_id) == (TicketStatus.CREATED, "job-1")
    assert await store.submissions() == {"k1": "job-1", "k2": None}
    assert [p.job_id for p in await store.pending()] == ["job-1"]  # watched in the same step
    assert (await store.pending())[0].key == "k1"
    assert await store.drop_submission("k2", other.fence)
    assert await store.submissions() == {"k1": "job-1"}


async def test_an_orphaned_submission_is_taken_over_after_its_lease(
    store: PendingStore, clock: ManualClock
) -> None:
    """A sender that died leaves its submission to whoever claims it after the lease."""
    submission = Submission("k1", "cid", {"inputs": [{"url": "https://x"}]})
    ticket = await store.begin_submission(submission, 60.0)
    assert await store.claim_submissions(10, 60.0) == []
    clock.advance(61.0)
    (orphan,) = await store.claim_submissions(10, 60.0)
    assert orphan.status == TicketStatus.RECONCILE
    assert orphan.submission == submission
    assert orphan.attempts == 1
    assert not await store.finish_submission("k1", ticket.fence, Watch("j", 0.0))  # stale
    assert await store.release_submission("k1", orphan.fence, 30.0)
    assert await store.claim_submissions(10, 60.0) == []
    clock.advance(30.0)
    (later,) = await store.claim_submissions(10, 60.0)
    assert await store.finish_submission("k1", later.fence, Watch("j", 0.0))
    clock.advance(1_000.0)
    assert await store.claim_submissions(10, 60.0) == []


async def test_group_readers_share_entries_and_unacked_ones_come_back(
    store: PendingStore, clock: ManualClock
) -> None:
    """A group delivers each entry to one reader; one not acknowledged in time goes to another."""
    for n in range(4):
        await store.apply([Settle(f"j{n}", None, job(f"j{n}", State.COMPLETED))])
    one = await store.read_results("g", "c1", 2, 0.0)
    two = await store.read_results("g", "c2", 10, 0.0)
    assert [e.settlement.job_id for e in one] == ["j0", "j1"]
    assert [e.settlement.job_id for e in two] == ["j2", "j3"]
    await store.ack_results("g", [e.entry_id for e in two])
    assert await store.read_results("g", "c2", 10, 0.0) == []
    clock.advance(61.0)  # c1 died holding j0 and j1
    back = await store.read_results("g", "c3", 10, 0.0)
    assert [e.settlement.job_id for e in back] == ["j0", "j1"]
    other_group = await store.read_results("h", "c1", 10, 0.0)
    assert len(other_group) == 4  # each group sees every entry


async def test_followers_see_what_settles_after_they_start(store: PendingStore) -> None:
    """``follow_results(None)`` starts at the end; the cursor goes on from there, for any reader."""
    await store.apply([Settle("before", None, job("before", State.COMPLETED))])
    entries, cursor = await store.follow_results(None, 10, 0.0)
    assert entries == []
    await store.apply([Settle("after", None, job("after", State.ERROR))])
    entries, cursor = await store.follow_results(cursor, 10, 0.0)
    assert [e.settlement.job_id for e in entries] == ["after"]

    async def settle_soon() -> None:
        await anyio.lowlevel.checkpoint()
        await store.apply([Settle("later", None, job("later", State.CANCELED))])

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(settle_soon)
        with anyio.fail_after(5):  # a bound on a blocking read, not a wait for time
            entries, _ = await store.follow_results(cursor, 10, 5.0)
    assert [e.settlement.job_id for e in entries] == ["later"]


async def test_a_submission_whose_job_still_runs_is_never_forgotten(
    make_store: MakeStore, clock: ManualClock
) -> None:
    """Past ``keep_created``, only submissions whose job settled are forgotten, oldest first.

    One whose job still runs is remembered however many were created since:
    forgotten, it would be sent again (a second job) by whoever begins it again.
    """
    store = await make_store(clock, keep_created=2)
    try:
        for n in range(3):
            ticket = await store.begin_submission(Submission(f"run{n}", "cid", {}), 60.0)
            assert await store.finish_submission(
                f"run{n}", ticket.fence, Watch(f"job-run{n}", 500.0, key=f"run{n}")
            )
        for n in range(3):
            ticket = await store.begin_submission(Submission(f"done{n}", "cid", {}), 60.0)
            watch = Watch(f"job-done{n}", 500.0, key=f"done{n}")
            assert await store.finish_submission(f"done{n}", ticket.fence, watch)
            ended = job(f"job-done{n}", State.COMPLETED)
            assert await store.apply([Settle(f"job-done{n}", None, ended)]) == [True]
            clock.advance(1.0)
        for n in range(3):
            again = await store.begin_submission(Submission(f"run{n}", "cid", {}), 60.0)
            assert (again.status, again.job_id) == (TicketStatus.CREATED, f"job-run{n}")
        assert await store.submissions() == {
            "run0": "job-run0",
            "run1": "job-run1",
            "run2": "job-run2",
            "done1": "job-done1",
            "done2": "job-done2",
        }
        assert await store.attributed("cid") == {
            "job-run0",
            "job-run1",
            "job-run2",
            "job-done1",
            "job-done2",
        }
    finally:
        await store.aclose()
