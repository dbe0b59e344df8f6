"""Batches: parsing lines, running them, the results file, and resuming without duplicates."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from mediax_async import (
    ImageBgmGeneration,
    MediaXClient,
    MusicComposerHumming,
    MusicSeparate,
    MusicSeparateMethod,
    PollPolicy,
    RetryPolicy,
    SingingCloning,
    SongEmotion,
    Source,
    State,
    SwitchOption,
)
from mediax_async._batch import (
    BATCH_KIND_SPECS,
    BatchLine,
    BatchLineError,
    BatchObserver,
    BatchRunner,
    LineResult,
    default_results_path,
    parse_batch_line,
    read_batch_file,
)
from mediax_async._models import Job
from mediax_async.cli import ClientSettings, Runtime, main
from mediax_async.testing import FakeMediaX, Fault, FixedDuration, Profile, Schedule

SPEED = 1000.0
FAST_POLLS = PollPolicy(first_delay=0.002, initial_interval=0.004, max_interval=0.01, jitter="none")
SEP = '{"kind": "separation", "song": "https://x/%s.mp3", "content_id": "repo"}'
HUM = '{"kind": "humming", "humming": "https://x/%s.wav", "content_id": "repo"}'


@pytest.fixture
def fake() -> FakeMediaX:
    """Separations end within 2 fake seconds, hummings take 300 (0.3 s real)."""
    quick = Profile(queue=FixedDuration(0.5), processing=FixedDuration(1.0))
    slow = Profile(queue=FixedDuration(0.5), processing=FixedDuration(300.0))
    schedule = Schedule(
        default=Profile(queue=FixedDuration(1.0), processing=FixedDuration(20.0)),
        by_capability={"musicSeperate": quick, "musicComposerHumming": slow},
    )
    return FakeMediaX(seed=0, speed=SPEED, schedule=schedule)


def client(fake: FakeMediaX) -> MediaXClient:
    result: MediaXClient = fake.client(
        retry_policy=RetryPolicy(initial_delay=0.001, max_delay=0.01)
    )
    return result


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read_results(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header, *records = (json.loads(line) for line in path.read_text().splitlines())
    return header, records


def run_cli(fake: FakeMediaX, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    runtime = Runtime(
        client_factory=lambda settings: client(fake),
        poll_policy=FAST_POLLS,
        stdout=out,
        stderr=err,
        terminal=False,
    )
    return main(list(argv), runtime=runtime), out.getvalue(), err.getvalue()


# -- parsing ----------------------------------------------------------------------


def test_line_takes_builder_arguments_and_enum_names() -> None:
    """A line's keys are the builder's arguments; enums by name in any case, or by number."""
    line = (
        '{"kind": "separation", "song": "https://x/a.mp3", "content_id": "repo", '
        '"method": "Four_Stems", "destination": "/out", "output_prefix": "p", "timeout": 60}'
    )
    request = parse_batch_line(line, custom_id="tag")
    assert request.custom_id == "tag"
    assert request.timeout == 60
    output = request.outputs[0]
    assert output.content_id == "repo"
    assert output.destination == "/out"
    assert isinstance(output.capability, MusicSeparate)
    assert output.capability.method == MusicSeparateMethod.FOUR_STEMS
    image = parse_batch_line(
        '{"kind": "image_to_music", "image": {"content_id": "r", "path": "/a.png"}, '
        '"content_id": "r", "emotion": 1, "song_quantity": 3}'
    )
    assert image.inputs[0].source == Source(content_id="r", path="/a.png")
    bgm = image.outputs[0].capability
    assert isinstance(bgm, ImageBgmGeneration)
    assert bgm.emotion == SongEmotion.HAPPY


def test_training_line_takes_several_recordings_and_switches() -> None:
    """singing_training takes a list of recordings; switches take true/false or on/off."""
    request = parse_batch_line(
        '{"kind": "singing_training", "recordings": ["https://x/1.wav", {"url": "https://x/2.wav"}],'
        ' "model_name": "alto", "use_separate": true}'
    )
    assert len(request.inputs) == 2
    training = request.outputs[0].capability
    assert isinstance(training, SingingCloning)
    assert training.use_separate == SwitchOption.ON
    hum = parse_batch_line(
        '{"kind": "humming", "humming": "https://x/h.wav", "content_id": "r", "use_sieve": "off"}'
    )
    humming = hum.outputs[0].capability
    assert isinstance(humming, MusicComposerHumming)
    assert humming.use_sieve == SwitchOption.OFF


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"kind": "karaoke", "song": "u"}', "unknown kind 'karaoke'"),
        ('{"kind": "separation", "content_id": "r"}', "needs 'song'"),
        ('{"kind": "separation", "song": "u", "content_id": "r", "stems": 4}', "stems"),
        ('{"kind": "separation", "song": "u", "content_id": "r", "method": "six"}', "six"),
        ('{"kind": "humming", "humming": "u", "content_id": "r", "song_quantity": 0}', "1 to 100"),
        ('{"kind": "separation", "song": "u"}', "content_id"),
        ('{"kind": "separation", "song": "u", "content_id": "r", "custom_id": "x"}', "custom_id"),
        ('{"kind": "separation", "song": 42, "content_id": "r"}', "URL"),
    ],
)
def test_bad_lines_say_what_is_wrong(text: str, message: str) -> None:
    """A bad line raises BatchLineError naming the problem."""
    with pytest.raises(BatchLineError, match=message.replace("(", r"\(")):
        parse_batch_line(text)


@pytest.mark.parametrize(
    ("text", "kind", "problem"),
    [
        (
            '{"kind": "singing", "song": {"source_data": "%s"}, "content_id": "r"}' % ("x" * 600),
            "singing",
            "invalid value",
        ),
        (
            '{"kind": "separation", "song": "u", "content_id": "r", "method": 9}',
            "separation",
            "invalid value",
        ),
        (
            '{"kind": "humming", "humming": "u", "content_id": "r", "song_quantity": "x"}',
            "humming",
            "invalid value",
        ),
        ('{"kind": "separation", "song": "u"}', "separation", "missing key"),
        (
            '{"kind": "separation", "song": "u", "content_id": "r", "stems": 4}',
            "separation",
            "unknown key",
        ),
        ('{"kind": "karaoke"}', None, "unknown kind"),
        ("{not json", None, "invalid JSON"),
    ],
)
def test_a_bad_line_says_what_kind_of_problem_it_has(
    text: str, kind: str | None, problem: str, tmp_path: Path
) -> None:
    """Valid JSON with a bad value is an invalid value of its kind, never "invalid JSON"."""
    (line,) = read_batch_file(write_lines(tmp_path / "b.jsonl", text), custom_id=None)
    assert line.error is not None
    assert (line.kind, line.error.problem, line.error.kind) == (kind, problem, kind)
    assert str(line.error).startswith("invalid value: ") == (problem == "invalid value")
    assert ("invalid JSON" in str(line.error)) == (problem == "invalid JSON")


def test_cli_names_a_bad_line_with_its_kind(fake: FakeMediaX, tmp_path: Path) -> None:
    """The error line for a bad value names the line, its kind, and the value's problem."""
    source = write_lines(
        tmp_path / "b.jsonl",
        '{"kind": "singing", "song": {"source_data": "%s"}, "content_id": "r"}' % ("x" * 600),
    )
    code, _, err = run_cli(fake, "batch", str(source))
    assert code == 1
    assert err.splitlines() == [
        "mediax: error: line 1 (singing): invalid value: "
        "song.source_data: must be at most 512 characters, got 600"
    ]


def test_check_reports_every_bad_line_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`batch --check` names every bad line (number and kind), exits 2, needs no credentials."""
    monkeypatch.delenv("MEDIAX_SECRET_ID", raising=False)
    monkeypatch.delenv("MEDIAX_SECRET_KEY", raising=False)
    bad = [
        f'{{"kind": "separation", "song": "u", "content_id": "r", "method": {n}}}'
        for n in range(4, 14)
    ]
    source = write_lines(tmp_path / "b.jsonl", SEP % "ok", *bad)
    out, err = io.StringIO(), io.StringIO()
    code = main(["batch", "--check", str(source)], runtime=Runtime(stdout=out, stderr=err))
    assert code == 2
    reported = err.getvalue().splitlines()
    assert len(reported) == 10
    for n, line in zip(range(2, 12), reported, strict=True):
        assert line.startswith(f"mediax: error: line {n} (separation): invalid value: method")
    assert f"{source}: 11 line(s), 10 bad" in out.getvalue()
    assert not (tmp_path / "b.results.jsonl").exists()
    out = io.StringIO()
    code = main(["--json", "batch", "--check", str(source)], runtime=Runtime(stdout=out))
    data = json.loads(out.getvalue())
    assert code == 2
    assert [(p["line"], p["kind"], p["problem"]) for p in data["bad"]] == [
        (n, "separation", "invalid value") for n in range(2, 12)
    ]
    good = write_lines(tmp_path / "good.jsonl", SEP % 1, HUM % 2)
    out = io.StringIO()
    assert main(["batch", "--check", str(good)], runtime=Runtime(stdout=out)) == 0
    assert "2 line(s), 0 bad" in out.getvalue()


def test_batch_help_lists_every_kind_and_its_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """`batch --help` lists each kind with its keys and names the real default results path."""
    assert main(["batch", "--help"]) == 0
    text = capsys.readouterr().out
    for kind, spec in BATCH_KIND_SPECS.items():
        found = re.search(rf"^  {kind} +(.*(?:\n {{20}}.*)*)", text, re.MULTILINE)
        assert found is not None, kind
        keys = " ".join(found.group(1).split())
        for key in (spec.input_key, *spec.keywords):
            assert key in keys, (kind, key)
    assert "four_stems" in text
    assert str(default_results_path(Path("jobs.jsonl"))) in text


def test_batch_json_lists_every_record(fake: FakeMediaX, tmp_path: Path) -> None:
    """`batch --json` carries one record per line, for jq."""
    source = write_lines(tmp_path / "b.jsonl", SEP % "a", "{bad")
    code, out, _ = run_cli(fake, "--json", "batch", str(source))
    summary = json.loads(out)
    assert code == 1
    assert [(r["line"], r["state"]) for r in summary["records"]] == [(1, "COMPLETED"), (2, None)]


# -- running ------------------------------------------------------------------------


def test_batch_with_failures_records_every_line(fake: FakeMediaX, tmp_path: Path) -> None:
    """Good, failing and bad lines each get one result line; bad ones are named on stderr."""
    source = write_lines(
        tmp_path / "jobs.jsonl",
        SEP % "a",
        '{"kind": "separation", "song": "https://x/b.mp3", "content_id": "r", "timeout": 1}',
        '{"kind": "nope"}',
        "",
        "{broken",
        '{"kind": "image_to_music", "image": "https://x/i.png", "content_id": "r", '
        '"emotion": "happy"}',
        '{"kind": "singing", "song": "https://x/s.mp3", "content_id": "r"}',
        '{"kind": "singing_training", "recordings": "https://x/t.wav", "model_name": "v1"}',
    )
    code, out, err = run_cli(fake, "batch", str(source))
    assert code == 1
    header, records = read_results(tmp_path / "jobs.results.jsonl")
    assert header["source"] == "jobs.jsonl"
    assert header["batch"].startswith("mxb-")
    by_line = {r["line"]: r for r in records}
    assert sorted(by_line) == [1, 2, 3, 5, 6, 7, 8]
    assert by_line[1]["state"] == "COMPLETED"
    assert by_line[1]["error"] is None
    assert {"content_id": "repo", "path": by_line[1]["files"][0]["path"]} in by_line[1]["files"]
    assert by_line[2]["state"] == "ERROR"
    assert by_line[2]["error"]["type"] == "JobFailedError"
    assert by_line[3]["job_id"] is None
    assert "unknown kind" in by_line[3]["error"]["message"]
    assert "invalid JSON" in by_line[5]["error"]["message"]
    assert by_line[8]["model_name"] == "v1"
    assert "line 3: unknown kind" in err
    assert "line 5: invalid JSON" in err
    assert fake.request_counts["CreateJob"] == 5
    assert all(job["customId"] == header["batch"] for job in fake.jobs)
    assert "line 1 separation" in out
    assert "5 completed" not in err


def test_batch_json_summary(fake: FakeMediaX, tmp_path: Path) -> None:
    """`batch --json` prints counts and the waiter's figures; all completed exits 0."""
    source = write_lines(tmp_path / "b.jsonl", SEP % "a", SEP % "b", SEP % "c")
    results = tmp_path / "out.jsonl"
    code, out, _ = run_cli(fake, "--json", "batch", str(source), "--results", str(results))
    summary = json.loads(out)
    assert code == 0
    assert summary["completed"] == 3
    assert summary["submitted"] == 3
    assert summary["lines"] == 3
    assert summary["results"] == str(results)
    # The three jobs share the batch tag, so one ListJobs refreshes them all.
    assert summary["stats"]["list_polls"] >= 1
    assert summary["stats"]["list_polls"] == fake.request_counts["ListJobs"]
    assert summary["stats"]["polls"] == fake.request_counts["GetJob"]


def test_results_file_is_valid_after_every_record(fake: FakeMediaX, tmp_path: Path) -> None:
    """Each record is whole and flushed when its line finishes: the file always parses."""
    source = write_lines(tmp_path / "b.jsonl", *(SEP % n for n in range(6)), "{bad")
    results = tmp_path / "r.jsonl"
    seen: list[int] = []

    class Check(BatchObserver):
        def line_finished(self, line: BatchLine, result: LineResult) -> None:
            _header, records = read_results(results)
            seen.append(len(records))
            assert records[-1]["line"] == result.line

    async def go() -> None:
        async with client(fake) as c:
            runner = BatchRunner(c, source, results, policy=FAST_POLLS, observer=Check())
            await runner.run()

    anyio.run(go)
    assert seen == list(range(1, 8))


class CancelWhen(BatchObserver):
    """Cancels the run once ``started`` jobs exist and ``finished`` lines are recorded."""

    def __init__(self, scope: anyio.CancelScope, started: int, finished: int) -> None:
        self.scope, self.started, self.finished = scope, started, finished
        self.jobs: list[tuple[int, Job]] = []
        self.records = 0

    def line_started(self, line: BatchLine, job: Job, *, resumed: bool) -> None:
        self.jobs.append((line.number, job))
        self._check()

    def line_finished(self, line: BatchLine, result: LineResult) -> None:
        self.records += 1
        self._check()

    def _check(self) -> None:
        if len(self.jobs) >= self.started and self.records >= self.finished:
            self.scope.cancel()


@pytest.mark.anyio
async def test_resume_after_interruption_submits_nothing_twice(
    fake: FakeMediaX, tmp_path: Path
) -> None:
    """An interrupted batch, run again, skips finished lines and watches the jobs it made."""
    source = write_lines(tmp_path / "b.jsonl", SEP % 1, SEP % 2, SEP % 3, HUM % 4, HUM % 5, "{bad")
    results = tmp_path / "r.jsonl"
    async with client(fake) as c:
        with anyio.CancelScope() as scope:
            stop = CancelWhen(scope, started=5, finished=4)
            await BatchRunner(c, source, results, policy=FAST_POLLS, observer=stop).run()
        assert scope.cancelled_caught
        _, records = read_results(results)
        assert sorted(r["line"] for r in records) == [1, 2, 3, 6]
        assert fake.request_counts["CreateJob"] == 5

        summary = await BatchRunner(c, source, results, policy=FAST_POLLS).run()
    assert (summary.skipped, summary.resumed, summary.submitted) == (4, 2, 0)
    assert fake.request_counts["CreateJob"] == 5
    # One ListJobs found the unfinished jobs again; the waiter then refreshes the
    # batch through ListJobs too, so there may be more.
    assert fake.request_counts["ListJobs"] >= 1
    _, records = read_results(results)
    assert sorted(r["line"] for r in records) == [1, 2, 3, 4, 5, 6]
    assert {r["state"] for r in records if r["line"] in (4, 5)} == {"COMPLETED"}
    assert len({r["job_id"] for r in records if r["job_id"]}) == 5
    assert not summary.all_completed  # line 6 is bad


@pytest.mark.anyio
async def test_resume_matches_identical_lines_to_their_own_jobs(
    fake: FakeMediaX, tmp_path: Path
) -> None:
    """Two identical lines: a finished line's job is never taken for the unfinished one."""
    source = write_lines(tmp_path / "b.jsonl", HUM % "same", HUM % "same")
    results = tmp_path / "r.jsonl"
    async with client(fake) as c:
        with anyio.CancelScope() as scope:

            class FinishFirst(CancelWhen):
                def line_started(self, line: BatchLine, job: Job, *, resumed: bool) -> None:
                    super().line_started(line, job, resumed=resumed)
                    if line.number == 2:
                        fake.force_state(self.jobs[0][1].id, State.COMPLETED)

            stop = FinishFirst(scope, started=2, finished=1)
            await BatchRunner(
                c, source, results, concurrency=1, policy=FAST_POLLS, observer=stop
            ).run()
        first_job, second_job = (job.id for _, job in stop.jobs)
        summary = await BatchRunner(c, source, results, policy=FAST_POLLS).run()
    assert (summary.skipped, summary.resumed, summary.submitted) == (1, 1, 0)
    assert [r.job_id for r in summary.results] == [second_job]
    assert [r.job_id for r in summary.previous] == [first_job]
    assert fake.request_counts["CreateJob"] == 2


def test_lost_answers_never_give_two_lines_one_job(fake: FakeMediaX, tmp_path: Path) -> None:
    """When CreateJob answers are lost, each identical line still gets its own job."""
    fake.faults.inject(Fault.ANSWER_LOST, action="CreateJob", times=3)
    source = write_lines(tmp_path / "b.jsonl", SEP % "x", SEP % "x", SEP % "x")
    code, _, _ = run_cli(fake, "batch", str(source), "--concurrency", "1")
    assert code == 0
    _, records = read_results(tmp_path / "b.results.jsonl")
    assert len({r["job_id"] for r in records}) == 3
    assert len(fake.jobs) == 3


def test_cli_resumes_an_interrupted_batch(fake: FakeMediaX, tmp_path: Path) -> None:
    """`mediax batch` run again on the same results file says it resumes, and finishes."""
    source = write_lines(tmp_path / "b.jsonl", SEP % 1, HUM % 2)
    results = tmp_path / "r.jsonl"

    async def interrupted() -> None:
        async with client(fake) as c:
            with anyio.CancelScope() as scope:
                stop = CancelWhen(scope, started=2, finished=1)
                await BatchRunner(c, source, results, policy=FAST_POLLS, observer=stop).run()

    anyio.run(interrupted)
    code, out, _ = run_cli(fake, "batch", str(source), "--results", str(results))
    assert code == 0
    assert "resuming batch" in out
    assert "1 of 2" in out
    assert "found again 1" in out
    assert fake.request_counts["CreateJob"] == 2


def test_truncated_results_line_is_run_again(fake: FakeMediaX, tmp_path: Path) -> None:
    """A record cut short by a crash is ignored: its line is found again, not resubmitted."""
    source = write_lines(tmp_path / "b.jsonl", SEP % 1, SEP % 2)
    results = tmp_path / "r.jsonl"
    assert run_cli(fake, "batch", str(source), "--results", str(results))[0] == 0
    text = results.read_text().splitlines()
    results.write_text("\n".join(text[:2]) + "\n" + text[2][:15])
    code, out, _ = run_cli(fake, "--json", "batch", str(source), "--results", str(results))
    summary = json.loads(out)
    assert code == 0
    assert (summary["skipped"], summary["resumed"]) == (1, 1)
    assert fake.request_counts["CreateJob"] == 2
    _, records = read_results(results)
    assert sorted(r["line"] for r in records) == [1, 2]


def test_results_of_another_batch_are_refused(fake: FakeMediaX, tmp_path: Path) -> None:
    """A results file written for another source file is a configuration error (exit 3)."""
    results = tmp_path / "r.jsonl"
    results.write_text('{"batch": "mxb-1", "source": "other.jsonl"}\n')
    source = write_lines(tmp_path / "b.jsonl", SEP % 1)
    code, _, err = run_cli(fake, "batch", str(source), "--results", str(results))
    assert code == 3
    assert "other.jsonl" in err
    assert fake.request_counts["CreateJob"] == 0


def test_missing_batch_file_is_a_usage_error(fake: FakeMediaX, tmp_path: Path) -> None:
    """A batch file that does not exist exits 2 with one line, and writes no results."""
    code, _, err = run_cli(fake, "batch", str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert "nope.jsonl" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "nope.results.jsonl").exists()


def test_rejected_credentials_stop_the_batch(fake: FakeMediaX, tmp_path: Path) -> None:
    """Rejected credentials end the whole batch with exit 3; lines stay unfinished."""
    source = write_lines(tmp_path / "b.jsonl", SEP % 1, SEP % 2)

    def wrong(settings: ClientSettings) -> MediaXClient:
        return MediaXClient(
            "AKIDwrong", "wrong-key", http_client=fake.http_client(), base_url=fake.base_url
        )

    err = io.StringIO()
    runtime = Runtime(client_factory=wrong, stdout=io.StringIO(), stderr=err, terminal=False)
    assert main(["batch", str(source)], runtime=runtime) == 3
    _header, records = read_results(tmp_path / "b.results.jsonl")
    assert records == []
    assert "wrong-key" not in err.getvalue()


def test_record_round_trips() -> None:
    """A record read back from a results file is the record written."""
    result = LineResult.of_job(3, "separation", Job(id="j1", state=State.ERROR))
    assert LineResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    assert result.finished
    assert not result.completed


class FirstPageOnly(httpx.AsyncBaseTransport):
    """The fake, except that a ListJobs answer lists only its first ``keep`` jobs (total kept)."""

    def __init__(self, fake: FakeMediaX, keep: int) -> None:
        self._inner, self._keep = fake.transport, keep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if json.loads(request.content)["action"] != "ListJobs":
            return response
        answer = json.loads(await response.aread())
        holder = next(v for v in [answer, *answer.values()] if isinstance(v, dict) and "jobs" in v)
        holder["jobs"] = holder["jobs"][: self._keep]
        return httpx.Response(response.status_code, json=answer)


@pytest.mark.anyio
async def test_resume_from_an_incomplete_list_reports_the_lines_it_cannot_account_for(
    fake: FakeMediaX, tmp_path: Path
) -> None:
    """A ListJobs answer listing fewer jobs than its total never makes a resume re-create any."""
    source = write_lines(tmp_path / "b.jsonl", *(SEP % n for n in range(6)))
    results = tmp_path / "r.jsonl"
    async with client(fake) as c:
        with anyio.CancelScope() as scope:
            stop = CancelWhen(scope, started=6, finished=0)
            await BatchRunner(c, source, results, policy=FAST_POLLS, observer=stop).run()
        assert fake.request_counts["CreateJob"] == 6
    async with (
        httpx.AsyncClient(transport=FirstPageOnly(fake, keep=2), base_url=fake.base_url) as http,
        fake.client(http_client=http) as resumed,
    ):
        summary = await BatchRunner(resumed, source, results, policy=FAST_POLLS).run()
    assert fake.request_counts["CreateJob"] == 6  # nothing re-created
    # A fast job may have been recorded before the first run stopped (then skipped here).
    assert summary.resumed <= 2
    _, records = read_results(results)
    unknown = [r for r in records if r["state"] is None]
    assert sorted(r["line"] for r in records) == list(range(1, 7))
    assert len(unknown) == 6 - summary.skipped - summary.resumed >= 3
    assert {r["error"]["type"] for r in unknown} == {"JobMayExistError"}
