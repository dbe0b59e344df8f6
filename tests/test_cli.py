"""The ``mediax`` command, driven in-process against the fake service.

Commands run on trio under ``MockClock(autojump_threshold=0)``: the fake
follows that clock, so jobs of tens of seconds end at once and no assertion
depends on how busy the machine is. One clock per test, shared by every
``main()`` call of the test, so the fake's time never goes backwards.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import weakref
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer
from trio.testing import MockClock

from mediax_async import MediaXClient, RetryPolicy, State
from mediax_async.cli import ClientSettings, Runtime, main
from mediax_async.testing import DEFAULT_SECRET_KEY, FakeMediaX, Fault, FixedDuration, Profile
from mediax_async.testing import Schedule as FakeSchedule

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
URL = "https://example.com/in/song.mp3"
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")
ENDLESS = FakeSchedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(1e9)))
_CLOCKS: weakref.WeakKeyDictionary[FakeMediaX, MockClock] = weakref.WeakKeyDictionary()


def new_fake(schedule: FakeSchedule | None = None) -> FakeMediaX:
    """A fake whose jobs queue 1 s and process 20 s, on the test's virtual clock."""
    schedule = schedule or FakeSchedule(
        default=Profile(queue=FixedDuration(1.0), processing=FixedDuration(20.0))
    )
    fake = FakeMediaX(seed=0, schedule=schedule)
    _CLOCKS[fake] = MockClock(autojump_threshold=0)
    return fake


@pytest.fixture
def fake() -> FakeMediaX:
    return new_fake()


def client_of(fake: FakeMediaX, **kwargs: Any) -> Any:
    kwargs.setdefault("retry_policy", RetryPolicy(initial_delay=0.001, max_delay=0.01))
    return lambda settings: fake.client(**kwargs)


def runtime_for(fake: FakeMediaX, **options: Any) -> Runtime:
    """A runtime on the fake, in the fake's virtual time (trio)."""
    options.setdefault("client_factory", client_of(fake))
    options.setdefault("terminal", False)
    return Runtime(backend="trio", backend_options={"clock": _CLOCKS[fake]}, **options)


def run(
    fake: FakeMediaX, *argv: str, terminal: bool = False, **options: Any
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    runtime = runtime_for(fake, stdout=out, stderr=err, terminal=terminal, **options)
    code = main(list(argv), runtime=runtime)
    return code, out.getvalue(), err.getvalue()


def run_json(fake: FakeMediaX, *argv: str) -> tuple[int, Any]:
    code, out, _err = run(fake, "--json", *argv)
    assert not ANSI.search(out)
    return code, json.loads(out)


def lines(text: str) -> list[str]:
    return text.splitlines()


# -- usage --------------------------------------------------------------------------


def test_help_documents_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """`mediax --help` lists every exit code a script may check."""
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for line in ("0 ", "1 ", "2 ", "3 ", "4 "):
        assert f"\n  {line}" in text
    assert "MEDIAX_SECRET_KEY" in text


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`mediax` alone prints the usage and exits 2."""
    assert main([]) == 2
    assert "usage: mediax" in capsys.readouterr().err


def test_unknown_enum_name_is_a_usage_error(fake: FakeMediaX) -> None:
    """A misspelt enum name exits 2, listing the choices, and sends nothing."""
    code, _, err = run(fake, "separate", URL, "--content-id", "r", "--method", "six_stems")
    assert code == 2
    assert "four_stems" in err
    assert fake.request_counts["CreateJob"] == 0


def test_invalid_request_is_a_usage_error(fake: FakeMediaX) -> None:
    """A request the library refuses exits 2 with the field named, before anything is sent."""
    code, _out, err = run(fake, "image-to-music", URL, "--content-id", "r", "--emotion", "warm")
    assert code == 2
    assert err.count("\n") == 1
    assert "emotion" in err
    assert "Traceback" not in err
    assert fake.request_counts["CreateJob"] == 0


# -- one job per subcommand ---------------------------------------------------------

JOB_CASES = [
    (
        ["image-to-music", "https://x/a.png", "--content-id", "r", "--emotion", "HAPPY"],
        ["--genre", "pop", "--output-type", "mp4", "--song-quantity", "2"],
        "imageBgmGeneration",
        {"emotion": 1, "genre": 1, "outputType": 2, "songQuantity": 2},
    ),
    (
        ["humming", "repo:/hum.wav", "--content-id", "r", "--output-type", "midi"],
        ["--no-use-sieve"],
        "musicComposerHumming",
        {"outputType": 1, "useSieve": 1},
    ),
    (
        ["singing", URL, "--content-id", "r", "--use-separate"],
        ["--model-name", "default"],
        "singingCloning",
        {"type": 1, "modelName": "default", "useSeparate": 2},
    ),
    (
        ["singing-train", "https://x/1.wav", "https://x/2.wav", "--model-name", "alto"],
        ["--total-epoch", "10"],
        "singingCloning",
        {"type": 2, "modelName": "alto", "totalEpoch": 10},
    ),
    (
        ["separate", URL, "--content-id", "r", "--method", "Four_Stems"],
        ["--destination", "/stems"],
        "musicSeperate",
        {"method": 2},
    ),
]


@pytest.mark.parametrize(("argv", "more", "key", "params"), JOB_CASES)
def test_job_subcommand_creates_the_job_its_options_describe(
    fake: FakeMediaX, argv: list[str], more: list[str], key: str, params: dict[str, Any]
) -> None:
    """Each job subcommand sends its builder's request; --json prints the wire job."""
    common = ["--prefix", "p", "--custom-id", "mine", "--timeout", "600"]
    code, job = run_json(fake, *argv, *more, *common)
    assert code == 0
    assert job["state"] == int(State.SUBMITTED)
    assert job["customId"] == "mine"
    assert job["timeout"] == 600
    descriptor = job["outputs"][0]["smartContentDescriptor"]
    assert descriptor["outputPrefix"] == "p"
    assert params.items() <= descriptor[key].items()
    assert fake.request_counts["CreateJob"] == 1
    assert fake.job(job["id"])["state"] in (1, 2)


def test_wait_option_watches_the_job_to_its_end(fake: FakeMediaX) -> None:
    """`--wait` prints the finished job with its files, and exits 0 when it completed."""
    code, out, err = run(fake, "separate", URL, "--content-id", "repo", "--wait")
    assert code == 0, err
    assert "COMPLETED" in out
    assert "repo:/" in out
    assert "_vocals.wav" in out


def test_wait_option_exits_1_when_the_job_fails(fake: FakeMediaX) -> None:
    """A job that ends ERROR (its timeout is too short) exits 1, with the job in JSON."""
    code, job = run_json(fake, "humming", URL, "--content-id", "r", "--timeout", "5", "--wait")
    assert code == 1
    assert job["state"] == int(State.ERROR)


def test_plain_progress_when_not_a_terminal(fake: FakeMediaX) -> None:
    """Piped output is plain lines, one per state change, without escape codes."""
    code, out, _ = run(fake, "singing", URL, "--content-id", "r", "--wait")
    assert code == 0
    assert not ANSI.search(out)
    assert re.search(r"\[\s*\d+\.\ds\] singing \S+: PROCESSING", out)
    assert re.search(r"COMPLETED \(1 file\(s\)\) \[1/1 done\]", out)


def test_rich_progress_on_a_terminal(fake: FakeMediaX) -> None:
    """On a terminal, progress and the job are drawn by rich."""
    pytest.importorskip("rich")
    code, out, _ = run(fake, "separate", URL, "--content-id", "r", "--wait", terminal=True)
    assert code == 0
    assert ANSI.search(out)
    assert "all jobs" in out
    assert "COMPLETED" in out


def test_plain_output_without_rich(fake: FakeMediaX, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the cli extra, a terminal gets plain output and a one-line install hint."""
    monkeypatch.setattr("mediax_async.cli._output.load_rich", lambda: None)
    code, out, err = run(fake, "separate", URL, "--content-id", "r", "--wait", terminal=True)
    assert code == 0
    assert "pip install 'mediax-async[cli]'" in err
    assert err.count("\n") == 1
    assert not ANSI.search(out)
    assert "COMPLETED" in out


# -- get, jobs, models, wait ----------------------------------------------------------


def _create(fake: FakeMediaX, *extra: str) -> str:
    code, job = run_json(fake, "separate", URL, "--content-id", "r", *extra)
    assert code == 0
    return str(job["id"])


def test_get_shows_a_job(fake: FakeMediaX) -> None:
    """`get ID` shows the job; --json is the wire job."""
    job_id = _create(fake)
    code, out, _ = run(fake, "get", job_id)
    assert code == 0
    assert job_id in out
    assert "separation" in out
    code, job = run_json(fake, "get", job_id)
    assert code == 0
    assert job["id"] == job_id
    assert "musicSeperate" in job["outputs"][0]["smartContentDescriptor"]


def test_get_exits_1_for_a_failed_job(fake: FakeMediaX) -> None:
    """`get` of a job that ended ERROR exits 1."""
    job_id = _create(fake)
    fake.force_state(job_id, State.ERROR)
    code, job = run_json(fake, "get", job_id)
    assert code == 1
    assert job["state"] == int(State.ERROR)


def test_unknown_job_is_one_line_and_exit_4(fake: FakeMediaX) -> None:
    """A service error is one line on stderr, no traceback, exit 4."""
    code, out, err = run(fake, "get", "no-such-job")
    assert code == 4
    assert out == ""
    assert err.startswith("mediax: error:")
    assert err.count("\n") == 1


def test_debug_shows_the_traceback(fake: FakeMediaX) -> None:
    """--debug adds the traceback (and request logs) to the error line."""
    code, _, err = run(fake, "--debug", "get", "no-such-job")
    assert code == 4
    assert "Traceback" in err
    assert "GetJob" in err


def test_jobs_lists_a_custom_id(fake: FakeMediaX) -> None:
    """`jobs --custom-id X` lists every job created with X."""
    first = _create(fake, "--custom-id", "tag1")
    second = _create(fake, "--custom-id", "tag1")
    _create(fake, "--custom-id", "other")
    code, data = run_json(fake, "jobs", "--custom-id", "tag1")
    assert code == 0
    assert {job["id"] for job in data["jobs"]} == {first, second}
    code, out, _ = run(fake, "jobs", "--custom-id", "tag1")
    assert code == 0
    assert first in out
    assert second in out


def test_models_lists_one_page_or_all(fake: FakeMediaX) -> None:
    """`models` shows a page; `--all` follows every page."""
    for n in range(12):
        fake.add_model(f"voice_{n}")
    code, page = run_json(fake, "models", "--limit", "5")
    assert code == 0
    assert page["total"] == 12
    assert len(page["models"]) == 5
    assert set(page["models"][0]) >= {"name", "createdAt"}
    code, everything = run_json(fake, "models", "--all")
    assert [m["name"] for m in everything["models"]] == [f"voice_{n}" for n in range(12)]
    code, out, _ = run(fake, "models", "--all")
    assert code == 0
    assert "voice_11" in out


def test_wait_watches_several_jobs(fake: FakeMediaX) -> None:
    """`wait ID...` reports each job; one failure makes the exit code 1."""
    good, bad = _create(fake), _create(fake)
    fake.force_state(bad, State.CANCELED)
    code, data = run_json(fake, "wait", good, bad)
    assert code == 1
    states = {job["id"]: job["state"] for job in data["jobs"]}
    assert states == {good: int(State.COMPLETED), bad: int(State.CANCELED)}
    assert data["errors"] == []


def test_wait_reports_unknown_jobs(fake: FakeMediaX) -> None:
    """`wait` of an unknown id reports it among the errors and exits 4."""
    good = _create(fake)
    code, data = run_json(fake, "wait", good, "nope")
    assert code == 4
    assert [e["id"] for e in data["errors"]] == ["nope"]
    assert [job["id"] for job in data["jobs"]] == [good]


# -- credentials and service errors ---------------------------------------------------


def test_missing_credentials_exit_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without MEDIAX_SECRET_ID/KEY the command says so and exits 3."""
    monkeypatch.delenv("MEDIAX_SECRET_ID", raising=False)
    monkeypatch.delenv("MEDIAX_SECRET_KEY", raising=False)
    err = io.StringIO()
    code = main(["get", "x"], runtime=Runtime(stderr=err, stdout=io.StringIO()))
    assert code == 3
    assert "MEDIAX_SECRET_ID" in err.getvalue()
    assert err.getvalue().count("\n") == 1


def test_rejected_credentials_exit_3_without_the_key(fake: FakeMediaX) -> None:
    """Rejected credentials exit 3, and the key is not in any output, even with --debug."""
    secret = "my-very-secret-key-123"

    def factory(settings: ClientSettings) -> MediaXClient:
        return MediaXClient(
            "AKIDwrong", secret, base_url=fake.base_url, http_client=fake.http_client()
        )

    out, err = io.StringIO(), io.StringIO()
    runtime = Runtime(client_factory=factory, stdout=out, stderr=err, terminal=False)
    code = main(["--debug", "separate", URL, "--content-id", "r"], runtime=runtime)
    assert code == 3
    assert "credentials" in err.getvalue()
    assert secret not in out.getvalue() + err.getvalue()


def test_base_url_reaches_the_client_factory(fake: FakeMediaX) -> None:
    """--base-url (before or after the command) is what the client is built with."""
    seen: list[str | None] = []

    def factory(settings: ClientSettings) -> MediaXClient:
        seen.append(settings.base_url)
        return fake.client()

    runtime = Runtime(client_factory=factory, stdout=io.StringIO(), stderr=io.StringIO())
    main(["--base-url", "https://a.test", "jobs", "--custom-id", "x"], runtime=runtime)
    main(["jobs", "--custom-id", "x", "--base-url", "https://b.test"], runtime=runtime)
    assert seen == ["https://a.test", "https://b.test"]


def test_service_failure_exit_4(fake: FakeMediaX) -> None:
    """A service that keeps failing (5xx) exits 4 after the retries."""
    fake.faults.set_rate(Fault.SERVER_ERROR, 1.0)
    factory = client_of(fake, max_retries=1)
    code, _, err = run(fake, "separate", URL, "--content-id", "r", client_factory=factory)
    assert code == 4
    assert "500" in err
    assert DEFAULT_SECRET_KEY not in err


# -- the demo -------------------------------------------------------------------------


def virtual() -> Runtime:
    return Runtime(
        terminal=False, backend="trio", backend_options={"clock": MockClock(autojump_threshold=0)}
    )


def test_demo_runs_every_kind_with_failures(capsys: pytest.CaptureFixture[str]) -> None:
    """`mediax demo` needs nothing, covers all five kinds, and shows outcomes and figures."""
    code = main(["demo", "--speed", "500"], runtime=virtual())
    out = capsys.readouterr().out
    assert code == 0
    for kind in ("image_to_music", "humming", "singing_training", "singing", "separation"):
        assert kind in out
    assert "COMPLETED" in out
    assert "ERROR" in out
    assert "CANCELED" in out
    assert "demo-repo:/stems/song4_vocals.wav" in out
    assert re.search(r"\d+ polls", out)
    assert "Wall time" in out


def test_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`mediax demo --json` gives the wire jobs and the waiter's figures."""
    code = main(["--json", "demo", "--speed", "500"], runtime=virtual())
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    states = sorted(entry["job"]["state"] for entry in data["jobs"])
    assert states.count(3) == 7
    assert 4 in states
    assert 5 in states
    assert data["polls"] > 0
    assert data["requests"]["CreateJob"] == 9
    assert data["stats"]["settled"] == 9


# -- exit codes -------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`mediax --version` prints the installed version and exits 0."""
    assert main(["--version"]) == 0
    assert re.fullmatch(r"mediax \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


def test_wait_that_runs_out_of_time_exits_4_with_the_jobs_that_ended() -> None:
    """`wait --max-wait`: exit 4, the jobs that ended shown, one line naming the others."""
    fake = new_fake(ENDLESS)
    done, running = _create(fake), _create(fake)
    fake.force_state(done, State.COMPLETED)
    code, data = run_json(fake, "wait", done, running, "--max-wait", "60")
    assert code == 4
    assert [job["id"] for job in data["jobs"]] == [done]
    assert data["jobs"][0]["stateName"] == "COMPLETED"
    assert data["unfinished"] == [running]
    code, out, err = run(fake, "wait", done, running, "--max-wait", "60")
    assert code == 4
    assert re.search(rf"{done}\s+separation\s+COMPLETED", out)
    assert re.search(rf"{running}\s+separation\s+PROCESSING\s+\(still running\)", out)
    assert lines(err) == [f"mediax: error: 1 of 2 job(s) did not end within 60 s: {running}"]


def test_a_wait_timeout_names_a_few_jobs_not_all() -> None:
    """Out of time with many jobs, the error line shows how many, and only a few ids."""
    fake = new_fake(ENDLESS)
    ids = [_create(fake) for _ in range(10)]
    code, _out, err = run(fake, "wait", *ids, "--max-wait", "5")
    assert code == 4
    (line,) = lines(err)
    assert "10 of 10 job(s) did not end within 5 s" in line
    assert line.endswith("and 7 more")
    assert sum(job_id in line for job_id in ids) == 3


def test_submit_wait_that_runs_out_of_time_exits_4_with_the_job_as_last_seen() -> None:
    """`separate --wait --max-wait`: exit 4, and --json still prints the job as last seen."""
    fake = new_fake(ENDLESS)
    argv = ["separate", URL, "--content-id", "r", "--wait", "--max-wait", "30"]
    code, job = run_json(fake, *argv)
    assert code == 4
    assert job["stateName"] == "PROCESSING"
    code, out, err = run(fake, *argv)
    assert code == 4
    assert "PROCESSING" in out
    assert lines(err)[-1].startswith("mediax: error: 1 of 1 job(s) did not end within 30 s")


@pytest.mark.parametrize(
    "argv",
    [
        ["listen", "--port", "70000"],
        ["emulator", "--port", "65536"],
        ["listen", "--port", "-1"],
        ["batch", "f.jsonl", "--listen", "99999"],
    ],
)
def test_a_port_out_of_range_is_a_usage_error(argv: list[str]) -> None:
    """A --port or --listen port outside 0..65535 exits 2 (usage), before anything runs."""
    err = io.StringIO()
    assert main(argv, runtime=Runtime(stdout=io.StringIO(), stderr=err)) == 2
    assert "port" in err.getvalue().lower()


@pytest.mark.parametrize(
    "base_url", ["http://127.0.0.1:99999", "https://api.test:0", "ftp://api.test", "https://"]
)
def test_a_base_url_that_cannot_be_reached_is_a_configuration_error(
    base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base URL with a bad port, scheme or no host exits 3 with one line, not 4."""
    monkeypatch.setenv("MEDIAX_SECRET_ID", "AKIDx")
    monkeypatch.setenv("MEDIAX_SECRET_KEY", "a-secret-key")
    for argv in (["--base-url", base_url, "get", "x"], ["get", "x"]):
        if argv == ["get", "x"]:
            monkeypatch.setenv("MEDIAX_BASE_URL", base_url)
        err = io.StringIO()
        assert main(argv, runtime=Runtime(stdout=io.StringIO(), stderr=err)) == 3
        (line,) = lines(err.getvalue())
        assert line.startswith("mediax: error: the base URL")


class ClosedPipe(io.StringIO):
    """A stdout whose reader has gone after ``lines`` lines (`| head -N`)."""

    def __init__(self, lines: int = 0) -> None:
        super().__init__()
        self.left = lines

    def write(self, text: str) -> int:
        if self.left <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= text.count("\n")
        return super().write(text)


def test_a_closed_pipe_stops_a_batch_quietly(fake: FakeMediaX, tmp_path: Any) -> None:
    """`mediax batch f | head -2`: exit 141, nothing on stderr, stopped before any job ended."""
    source = tmp_path / "jobs.jsonl"
    source.write_text(f'{{"kind": "separation", "song": "{URL}", "content_id": "r"}}\n' * 20)
    err = io.StringIO()
    runtime = runtime_for(fake, stdout=ClosedPipe(2), stderr=err)
    code = main(["batch", str(source), "--concurrency", "1"], runtime=runtime)
    assert code == 141
    assert err.getvalue() == ""
    assert _CLOCKS[fake].current_time() < 21  # a job takes 21 s: none was waited for
    assert (tmp_path / "jobs.results.jsonl").read_text().count("\n") == 1  # the header


def test_a_closed_pipe_after_a_command_ended_is_quiet(fake: FakeMediaX) -> None:
    """`mediax --json get ID | true`: exit 141 and nothing on stderr."""
    job_id = _create(fake)
    err = io.StringIO()
    runtime = runtime_for(fake, stdout=ClosedPipe(0), stderr=err)
    assert main(["--json", "get", job_id], runtime=runtime) == 141
    assert err.getvalue() == ""


# -- one clear line per error -----------------------------------------------------------


def test_a_service_error_does_not_repeat_its_message(fake: FakeMediaX) -> None:
    """The service's message is said once: the body it came in is not appended."""
    code, _, err = run(fake, "get", "no-such-job")
    assert code == 4
    (line,) = lines(err)
    assert line.count("does not exist") == 1
    assert "request_id=" in line


def test_long_values_are_shortened_in_an_error(fake: FakeMediaX) -> None:
    """A huge value in a refused request is shortened in the middle, on one short line."""
    name = "x" * 5000
    code, _, err = run(fake, "singing", URL, "--content-id", "r", "--model-name", name)
    assert code == 2
    (line,) = lines(err)
    assert "model_name" in line
    assert "…" in line
    assert len(line) < 200


def test_missing_credentials_name_the_variables_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing credentials name the environment variables, not the library's arguments."""
    monkeypatch.delenv("MEDIAX_SECRET_ID", raising=False)
    monkeypatch.setenv("MEDIAX_SECRET_KEY", "a-secret-key")
    err = io.StringIO()
    assert main(["get", "x"], runtime=Runtime(stderr=err, stdout=io.StringIO())) == 3
    (line,) = lines(err.getvalue())
    assert "MEDIAX_SECRET_ID" in line
    assert "argument" not in line
    assert "MEDIAX_SECRET_KEY" not in line


def test_library_warnings_are_prefixed_lines(fake: FakeMediaX) -> None:
    """A WARNING from the library reaches stderr as one `mediax: warning:` line."""

    def factory(settings: ClientSettings) -> MediaXClient:
        logging.getLogger("mediax_async.test").warning("a pool of %d is small", 4)
        return fake.client()

    code, _, err = run(fake, "jobs", "--custom-id", "x", client_factory=factory)
    assert code == 0
    assert lines(err) == ["mediax: warning: a pool of 4 is small"]


def test_callback_url_is_checked_before_sending(fake: FakeMediaX) -> None:
    """A callback that is not an http(s) URL with a host exits 2, naming the field; no job."""
    for callback in ("ftp://hooks.test/x", "https://", "hooks.test/x"):
        code, _, err = run(fake, "separate", URL, "--content-id", "r", "--callback", callback)
        assert code == 2
        (line,) = lines(err)
        assert "callback" in line
    assert fake.request_counts["CreateJob"] == 0


def test_singing_from_text_on_the_command_line(fake: FakeMediaX) -> None:
    """`singing --text` sends the text as the job's sourceData input."""
    code, job = run_json(fake, "singing", "--text", "la la la", "--content-id", "r")
    assert code == 0
    assert job["inputs"] == [{"sourceData": "la la la"}]
    code, _, err = run(fake, "singing", "--text", "x" * 513, "--content-id", "r")
    assert code == 2
    assert "512" in err
    code, _, err = run(fake, "singing", URL, "--text", "la", "--content-id", "r")
    assert code == 2


# -- --json is for jq -------------------------------------------------------------------


def test_json_jobs_carry_state_name_kind_and_iso_dates(fake: FakeMediaX) -> None:
    """A --json job has stateName beside state, kind, and timing in ISO 8601 with a zone."""
    job_id = _create(fake)
    fake.force_state(job_id, State.COMPLETED)
    code, job = run_json(fake, "get", job_id)
    assert code == 0
    assert (job["state"], job["stateName"], job["kind"]) == (3, "COMPLETED", "separation")
    timing = job["timing"]
    assert ISO_UTC.fullmatch(timing["createdAt"])
    assert ISO_UTC.fullmatch(timing["completedAt"])
    code, listed = run_json(fake, "jobs", "--custom-id", job["customId"])
    assert listed["jobs"][0]["stateName"] == "COMPLETED"


def test_tables_show_iso_dates_with_a_zone(fake: FakeMediaX) -> None:
    """Human output shows dates as ISO 8601 with a time zone too."""
    job_id = _create(fake)
    fake.add_model("alto")
    _, out, _ = run(fake, "get", job_id)
    assert ISO_UTC.search(out.split("created", 1)[1].splitlines()[0])
    _, out, _ = run(fake, "models")
    assert ISO_UTC.search(out)
    _, page = run_json(fake, "models")
    assert ISO_UTC.fullmatch(page["models"][0]["createdAt"])


def test_json_hides_the_callback_token(fake: FakeMediaX) -> None:
    """`--json` shows a job's callback URL with its token replaced by ***."""
    token = "json-callback-token-0123456789abcdef"
    url = f"https://hooks.example.com/callbacks/{token}"
    code, job = run_json(fake, "separate", URL, "--content-id", "r", "--callback", url)
    assert code == 0
    assert job["callback"] == "https://hooks.example.com/callbacks/***"
    code, out, _ = run(fake, "--json", "get", job["id"])
    assert token not in out
    code, out, _ = run(fake, "--json", "jobs", "--custom-id", job["customId"])
    assert token not in out


# -- the live display -------------------------------------------------------------------


def _terminal(fake: FakeMediaX, *argv: str, **options: Any) -> tuple[int, str, str]:
    pytest.importorskip("rich")
    code, out, err = run(fake, *argv, terminal=True, **options)
    return code, ANSI.sub("", out), err


def test_file_names_are_never_broken_across_lines(fake: FakeMediaX) -> None:
    """On an 80-column terminal each file path stays on one line (a long one loses its middle)."""
    destination = "/a/very/long/destination/folder/for/the/stems/of/this/song"
    job_id = _create(fake, "--destination", destination, "--method", "five_stems")
    fake.force_state(job_id, State.COMPLETED)
    stems = ("vocals", "drums", "bass", "piano", "other")
    whole_path = re.compile(r"r:/\S*_(vocals|drums|bass|piano|other)\.wav")
    for command in ("wait", "get"):
        code, out, _ = _terminal(fake, command, job_id)
        assert code == 0
        shown = [m.group(1) for line in screen(out) for m in whole_path.finditer(line)]
        assert sorted(shown) == sorted(stems), out
        assert not [line for line in screen(out) if "r:/" in line and ".wav" not in line]


def screen(out: str) -> list[str]:
    """The lines a terminal shows (a live display rewrites lines with carriage returns)."""
    return re.split(r"[\r\n]", out)


def test_more_jobs_than_rows_are_counted(fake: FakeMediaX) -> None:
    """Watching more jobs than the display has rows for shows `+N more`."""
    ids = [_create(fake) for _ in range(30)]
    code, out, _ = _terminal(fake, "wait", *ids)
    assert code == 0
    assert re.search(r"\+\d+ more", out)


def test_job_rows_show_state_and_time_not_a_bar(fake: FakeMediaX) -> None:
    """A job's row shows its state and elapsed time; only the overall row has a bar."""
    job_id = _create(fake)
    code, out, _ = _terminal(fake, "wait", job_id)
    assert code == 0
    rows = [line for line in screen(out) if line[2:].startswith(job_id[:8]) and "│" not in line]
    assert rows
    assert not [row for row in rows if "━" in row]
    assert re.search(r"COMPLETED.*\d+:\d\d:\d\d", rows[-1])
    assert [line for line in screen(out) if "all jobs" in line and "━" in line]


def test_errors_are_printed_through_the_live_display(fake: FakeMediaX, tmp_path: Any) -> None:
    """While the live display runs on the terminal stderr shares, errors go through it."""
    source = tmp_path / "jobs.jsonl"
    source.write_text(f'{{"kind": "separation", "song": "{URL}", "content_id": "r"}}\n{{bad\n')
    code, out, err = _terminal(fake, "batch", str(source), error_terminal=True)
    assert code == 1
    assert "mediax: error: line 2: invalid JSON" in out
    assert "line 2" not in err


def test_wait_on_a_service_that_never_answers_gives_up_with_exit_4(fake: FakeMediaX) -> None:
    """`mediax wait` while every GetJob is cut: exit 4 after --give-up-after, one error line."""
    job_id = _create(fake)
    fake.faults.set_rate(Fault.DROP, 1.0, action="GetJob")
    started = _CLOCKS[fake].current_time()
    code, out, err = run(fake, "wait", job_id, "--give-up-after", "30")
    waited = _CLOCKS[fake].current_time() - started
    assert code == 4
    assert "waiting" in out  # the progress line; no result table: nothing ended
    errors = [line for line in lines(err) if line.startswith("mediax: error:")]
    assert len(errors) == 1, err
    assert "GetJob" in errors[0]
    assert "30 s" in errors[0]
    assert 30 <= waited < 60


def test_wait_gives_up_by_default_within_a_bounded_time(fake: FakeMediaX) -> None:
    """Without the option a dead service still ends `mediax wait` (exit 4), never hangs."""
    job_id = _create(fake)
    fake.faults.set_rate(Fault.DROP, 1.0, action="GetJob")
    started = _CLOCKS[fake].current_time()
    code, _out, err = run(fake, "wait", job_id)
    assert code == 4
    assert _CLOCKS[fake].current_time() - started < 600
    assert lines(err)[-1].startswith("mediax: error:")


# -- --store URLs -----------------------------------------------------------------------


@pytest.mark.parametrize("json_mode", [True, False])
def test_status_never_prints_store_secrets_given_in_the_query_string(
    tmp_path: Path, json_mode: bool
) -> None:
    """``--store 'redis://h/0?password=...'``: the password, and any secret-looking key, hidden."""
    pytest.importorskip("coredis")
    with RedisServer(tmp_path / "redis") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as conn:
            conn.sendall(b"CONFIG SET requirepass pw-s3cr3t\r\n")
            assert conn.recv(64).startswith(b"+OK")
        url = f"{server.url}?password=pw-s3cr3t&api_token=tk-s3cr3t&client_name=me"
        out, err = io.StringIO(), io.StringIO()
        runtime = Runtime(stdout=out, stderr=err, terminal=False)
        argv = ["--json"] if json_mode else []
        code = main([*argv, "status", "--store", url, "--namespace", "n"], runtime=runtime)
    shown = out.getvalue() + err.getvalue()
    assert code == 0, shown
    assert "s3cr3t" not in shown
    assert "password=***" in shown
    assert "api_token=***" in shown
    assert "client_name=me" in shown  # what is not a secret stays, to tell stores apart
