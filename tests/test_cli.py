"""The ``mediax`` command, driven in-process against the fake service (asyncio)."""

from __future__ import annotations

import io
import json
import re
import selectors
import signal
import subprocess
import sys
from typing import Any

import pytest

from mediax_async import MediaXClient, PollPolicy, RetryPolicy, State
from mediax_async.cli import ClientSettings, Runtime, main
from mediax_async.testing import DEFAULT_SECRET_KEY, FakeMediaX, Fault, FixedDuration, Profile
from mediax_async.testing import Schedule as FakeSchedule

SPEED = 1000.0
"""Fake seconds per real second: a 30 s job takes 30 ms."""
FAST_POLLS = PollPolicy(first_delay=0.002, initial_interval=0.004, max_interval=0.01, jitter="none")
ANSI = re.compile(r"\x1b\[")
URL = "https://example.com/in/song.mp3"


@pytest.fixture
def fake() -> FakeMediaX:
    schedule = FakeSchedule(
        default=Profile(queue=FixedDuration(1.0), processing=FixedDuration(20.0))
    )
    return FakeMediaX(seed=0, speed=SPEED, schedule=schedule)


def client_of(fake: FakeMediaX, **kwargs: Any) -> Any:
    kwargs.setdefault("retry_policy", RetryPolicy(initial_delay=0.001, max_delay=0.01))
    return lambda settings: fake.client(**kwargs)


def run(
    fake: FakeMediaX, *argv: str, terminal: bool = False, **client: Any
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    runtime = Runtime(
        client_factory=client_of(fake, **client),
        poll_policy=FAST_POLLS,
        stdout=out,
        stderr=err,
        terminal=terminal,
    )
    code = main(list(argv), runtime=runtime)
    return code, out.getvalue(), err.getvalue()


def run_json(fake: FakeMediaX, *argv: str) -> tuple[int, Any]:
    code, out, _err = run(fake, "--json", *argv)
    assert not ANSI.search(out)
    return code, json.loads(out)


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


def test_module_runs_as_a_script() -> None:
    """`python -m mediax_async.cli --help` works without the console script."""
    done = subprocess.run(
        [sys.executable, "-m", "mediax_async.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "exit codes" in done.stdout


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
    code, _, err = run(fake, "separate", URL, "--content-id", "r", max_retries=1)
    assert code == 4
    assert "500" in err
    assert DEFAULT_SECRET_KEY not in err


# -- the demo -------------------------------------------------------------------------


def test_demo_runs_every_kind_with_failures(capsys: pytest.CaptureFixture[str]) -> None:
    """`mediax demo` needs nothing, covers all five kinds, and shows outcomes and figures."""
    code = main(["demo", "--speed", "500"], runtime=Runtime(terminal=False))
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
    code = main(["--json", "demo", "--speed", "500"], runtime=Runtime(terminal=False))
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    states = sorted(entry["job"]["state"] for entry in data["jobs"])
    assert states.count(3) == 7
    assert 4 in states
    assert 5 in states
    assert data["polls"] > 0
    assert data["requests"]["CreateJob"] == 9
    assert data["stats"]["settled"] == 9


# -- the emulator ---------------------------------------------------------------------


def _read_line(process: subprocess.Popen[str], timeout: float = 15.0) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError("the emulator printed nothing in time")
    return process.stdout.readline().strip()


def test_emulator_serves_the_fake_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mediax emulator` prints its base URL first, then serves real HTTP until Ctrl-C."""
    pytest.importorskip("uvicorn")
    secret = "emulator-secret-key-42"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mediax_async.cli",
            "emulator",
            "--port",
            "0",
            "--speed",
            "1000",
            "--secret-id",
            "AKIDemulator",
            "--secret-key",
            secret,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = _read_line(process)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        assert process.stdout is not None  # the next lines follow at once
        assert process.stdout.readline().strip() == "MEDIAX_SECRET_ID=AKIDemulator"
        assert process.stdout.readline().strip() == "MEDIAX_SECRET_KEY=***"
        monkeypatch.setenv("MEDIAX_SECRET_ID", "AKIDemulator")
        monkeypatch.setenv("MEDIAX_SECRET_KEY", secret)
        out = io.StringIO()
        runtime = Runtime(poll_policy=FAST_POLLS, stdout=out, stderr=io.StringIO())
        argv = ["--json", "--base-url", base_url, "separate", URL, "--content-id", "r", "--wait"]
        assert main(argv, runtime=runtime) == 0
        assert json.loads(out.getvalue())["state"] == int(State.COMPLETED)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate()
