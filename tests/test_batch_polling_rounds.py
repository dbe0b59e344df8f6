"""Batch polling in virtual time: one ListJobs per batch tag per round, each member seen once.

The fake answers through a transport that suspends for a network round trip
(in virtual time, trio's MockClock), as a real transport does: while one
worker waits for a tag's ListJobs, the other workers run and find the tag's
other members due. They must not list the tag again, and the one answer
must count as one poll of each member.
"""

from __future__ import annotations

import collections
import itertools
import json
from typing import Any

import anyio
import httpx
import pytest
import trio.testing

from mediax_async import PollPolicy, separation_request
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule

pytestmark = pytest.mark.anyio

LATENCY = 0.05
"""Seconds each request takes on the wire."""
INTERVAL = 10.0
ROUNDS = 6
TAGS = ("mxb-rounds-a", "mxb-rounds-b", "mxb-rounds-c")
MEMBERS = 40
EVERY_INTERVAL = PollPolicy(
    first_delay=INTERVAL,
    initial_interval=INTERVAL,
    multiplier=1.0,
    max_interval=INTERVAL,
    submitted_factor=1.0,
    jitter="none",
)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Trio with a clock that jumps whenever all tasks sleep."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


class RoundTrip(httpx.AsyncBaseTransport):
    """The fake's in-process transport, answering after a round trip; counts ListJobs in flight.

    A round trip takes ``LATENCY`` s; a ListJobs, ``list_latency`` s.
    """

    def __init__(self, fake: FakeMediaX, list_latency: float = LATENCY) -> None:
        self._inner = fake.transport
        self._list_latency = list_latency
        self.listing: collections.Counter[str] = collections.Counter()
        self.most_listing: collections.Counter[str] = collections.Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Suspend for the round trip, then answer from the fake."""
        body = json.loads(await request.aread())
        tag = (
            body.get("listJobsRequest", {}).get("customId")
            if body["action"] == "ListJobs"
            else None
        )
        if tag is not None:
            self.listing[tag] += 1
            self.most_listing[tag] = max(self.most_listing[tag], self.listing[tag])
        try:
            await anyio.sleep(LATENCY if tag is None else self._list_latency)
            return await self._inner.handle_async_request(request)
        finally:
            if tag is not None:
                self.listing[tag] -= 1


@pytest.mark.parametrize("concurrency", [1, 16, 64])
async def test_each_batch_tag_is_listed_once_per_round_and_each_member_observed_once(
    concurrency: int,
) -> None:
    """Members come due one by one; each round is one ListJobs per tag, one poll per member."""
    never_ending = Profile(queue=FixedDuration(0), processing=FixedDuration(1e6))
    fake = FakeMediaX(seed=3, schedule=Schedule(default=never_ending))
    wire = RoundTrip(fake)
    async with (
        httpx.AsyncClient(transport=wire, base_url=fake.base_url) as http,
        fake.client(http_client=http) as client,
    ):
        jobs = [
            await client.create_job(
                separation_request(
                    f"https://songs.test/{tag}/{n}.mp3", content_id="r", custom_id=tag
                )
            )
            for tag in TAGS
            for n in range(MEMBERS)
        ]
        start = anyio.current_time()
        async with client.waiter(policy=EVERY_INTERVAL, max_concurrency=concurrency) as waiter:
            for job in jobs:
                await waiter.add(job)
                await anyio.sleep(0.01)  # handed over one by one: due one by one
            # Past the sixth round (each takes INTERVAL plus a round trip), before the seventh.
            await anyio.sleep(
                start + ROUNDS * (INTERVAL + LATENCY) + INTERVAL / 2 - anyio.current_time()
            )
        pending = await waiter.pending()

    listed = [r for r in fake.requests if r.at > start and r.action == "ListJobs"]
    by_tag = {
        tag: [r.at for r in listed if r.body["listJobsRequest"]["customId"] == tag] for tag in TAGS
    }
    assert [r for r in fake.requests if r.at > start and r.action != "ListJobs"] == []
    assert {tag: len(times) for tag, times in by_tag.items()} == dict.fromkeys(TAGS, ROUNDS)
    for times in by_tag.values():
        assert all(later - earlier >= INTERVAL for earlier, later in itertools.pairwise(times))
    assert dict(wire.most_listing) == dict.fromkeys(TAGS, 1)
    # Each answer is one poll of every member: the backoff sees the rounds as they were.
    assert sorted(job["polls"] for job in pending) == [ROUNDS] * len(jobs)
    assert waiter.stats.list_polls == len(TAGS) * ROUNDS
    assert waiter.stats.polls == 0


async def test_a_member_handed_over_while_its_tag_is_listed_is_polled_on_time() -> None:
    """A job that comes due while its batch's ListJobs (which leaves it out) is in flight.

    It is asked for by id then, once, and joins its tag's rounds after that: it
    does not wait for the listing's lease to run out.
    """
    never_ending = Profile(queue=FixedDuration(0), processing=FixedDuration(1e6))
    fake = FakeMediaX(seed=4, schedule=Schedule(default=never_ending))
    wire = RoundTrip(fake, list_latency=5.0)  # a slow ListJobs: a big batch, a busy service
    policy = PollPolicy(
        first_delay=2.0, initial_interval=INTERVAL, multiplier=1.0, max_interval=INTERVAL
    )
    tag = "mxb-late"
    async with (
        httpx.AsyncClient(transport=wire, base_url=fake.base_url) as http,
        fake.client(http_client=http) as client,
    ):
        jobs = [
            await client.create_job(
                separation_request(f"https://songs.test/{n}.mp3", content_id="r", custom_id=tag)
            )
            for n in range(5)
        ]
        *early, late = jobs
        start = anyio.current_time()
        async with client.waiter(policy=policy, lease=120.0) as waiter:
            for job in early:
                await waiter.add(job)  # listed from 2 s to 7 s
            await anyio.sleep(start + 3.0 - anyio.current_time())
            await waiter.add(late)  # due at 5 s, while that listing runs
            await anyio.sleep(start + 6.0 - anyio.current_time())
            polls = {job["id"]: job["polls"] for job in await waiter.pending()}
            assert polls[late.id] == 1
            # Rounds end at 7 s, 20 s and 35 s (a round: 10 s, then a 5 s listing).
            await anyio.sleep(start + 40.0 - anyio.current_time())
        polls = {job["id"]: job["polls"] for job in await waiter.pending()}
    actions = [r.action for r in fake.requests if r.at > start]
    assert actions.count("GetJob") == 1  # the late job, once, while its tag was listed
    assert actions.count("ListJobs") == 3
    assert polls == dict.fromkeys((job.id for job in jobs), 3)
