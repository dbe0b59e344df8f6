"""Batches under heavy faults, in virtual time: every line ends with one record, no job twice."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio.testing

from mediax_async._batch import BatchRunner
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule
from mediax_async.testing import Fault as F

pytestmark = pytest.mark.anyio

LINE = '{"kind": "separation", "song": "https://x/same.mp3", "content_id": "repo"}'


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Trio with a clock that jumps whenever all tasks sleep: late answers cost nothing."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_identical_lines_under_dropped_and_late_answers_end_once_each(
    tmp_path: Path, seed: int
) -> None:
    """40% of answers lost after processing, 40% late: every line one record, never two jobs."""
    schedule = Schedule(default=Profile(queue=FixedDuration(1), processing=FixedDuration(20)))
    fake = FakeMediaX(seed=seed, schedule=schedule, record_requests=False)
    fake.faults.slow_delay = 120.0  # later than the client's 30 s deadline
    for action in ("CreateJob", "GetJob", "ListJobs"):
        fake.faults.set_rate(F.ANSWER_LOST, 0.4, action=action)
        fake.faults.set_rate(F.SLOW, 0.4, action=action)
    source = tmp_path / "same.jsonl"
    source.write_text((LINE + "\n") * 30, encoding="utf-8")
    async with fake.client() as client:
        with anyio.fail_after(24 * 3600):  # virtual time: a bound that turns a hang into a failure
            first = await BatchRunner(client, source, concurrency=8).run()
        written = records(first.results_path)
        assert sorted(r["line"] for r in written) == list(range(1, 31))  # one record per line
        ids = [r["job_id"] for r in written if r["job_id"]]
        assert len(ids) == len(set(ids))  # no job given to two lines
        assert len(fake.jobs) <= 30  # at most one job per line: nothing made twice
        unresolved = [r for r in written if r["state"] is None]
        assert all(r["error"]["retryable"] for r in unresolved)
        for action in ("CreateJob", "GetJob", "ListJobs"):
            fake.faults.set_rate(F.ANSWER_LOST, 0.0, action=action)
            fake.faults.set_rate(F.SLOW, 0.0, action=action)
        with anyio.fail_after(24 * 3600):
            again = await BatchRunner(client, source, concurrency=8).run()
    assert again.all_completed
    assert Counter(r["line"] for r in records(again.results_path)) == Counter(range(1, 31))
    assert len(fake.jobs) == 30  # the rerun found every job again


async def test_a_slow_disk_costs_no_virtual_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records written slowly (a thread that takes real time) do not let virtual time run away.

    While the write thread works, every task sleeps; a clock that jumped then
    would fire hours of deadlines in milliseconds (this batch hung past its
    24 h bound on a busy machine, the write taking a few real milliseconds).
    """
    from mediax_async._batch._results import ResultsFile

    real_write = ResultsFile.write

    def slow_disk(self: ResultsFile, result: Any) -> None:
        time.sleep(0.02)  # the disk's own time, real: what virtual time must not skip over
        real_write(self, result)

    monkeypatch.setattr(ResultsFile, "write", slow_disk)
    schedule = Schedule(default=Profile(queue=FixedDuration(1), processing=FixedDuration(20)))
    fake = FakeMediaX(seed=7, schedule=schedule, record_requests=False)
    for action in ("CreateJob", "GetJob", "ListJobs"):
        fake.faults.set_rate(F.ANSWER_LOST, 0.2, action=action)
    source = tmp_path / "same.jsonl"
    source.write_text((LINE + "\n") * 20, encoding="utf-8")
    started = anyio.current_time()
    async with fake.client() as client:
        with anyio.fail_after(24 * 3600):
            summary = await BatchRunner(client, source, concurrency=8).run()
    assert Counter(r["line"] for r in records(summary.results_path)) == Counter(range(1, 21))
    assert anyio.current_time() - started < 3600  # jobs of 21 s, not a day of jumps


async def test_a_busy_service_rate_limiting_most_creates_still_gets_every_line(
    tmp_path: Path,
) -> None:
    """429 on 80% of CreateJobs: a line out of the client's retries is sent again later.

    A 429 says nothing was created, so sending again is safe; a batch gives up
    on a line only after several rounds of that (it gave up after the client's
    own retries: 14 lines of 40 here).
    """
    schedule = Schedule(default=Profile(queue=FixedDuration(1), processing=FixedDuration(20)))
    fake = FakeMediaX(seed=5, schedule=schedule, record_requests=False)
    fake.faults.set_rate(F.RATE_LIMITED, 0.8, action="CreateJob")
    source = tmp_path / "busy.jsonl"
    lines = [
        json.dumps({"kind": "separation", "song": f"https://x/{n}.mp3", "content_id": "r"})
        for n in range(40)
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    async with fake.client() as client:
        with anyio.fail_after(24 * 3600):
            summary = await BatchRunner(client, source, concurrency=8).run()
    written = records(summary.results_path)
    assert [r["error"] for r in written if r["error"]] == []
    assert summary.all_completed
    assert len(fake.jobs) == 40
