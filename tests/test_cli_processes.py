"""The ``mediax`` command as a user runs it: real processes, real signals, real pipes.

Each child is stopped in a ``finally`` under a time bound (``tests/processes.py``).
Nothing waits on the wall clock: each step waits for a line the child writes.
The emulator serves jobs on its natural schedule (tens of seconds), so the
commands under test are still running when they get their signal, however
busy the machine is.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import SAFETY, child, mediax

pytest.importorskip("uvicorn")
CREATE = {
    "inputs": [{"url": "https://example.com/a.mp3"}],
    "outputs": [
        {
            "contentId": "repo",
            "inputSelectors": [0],
            "smartContentDescriptor": {"musicSeperate": {"method": 1}},
        }
    ],
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[dict[str, str]]:
    """A `mediax emulator` process; its environment for `mediax` commands."""
    with child(mediax("--json", "emulator", "--port", "0", "--seed", "1")) as process:
        reach = json.loads(process.line())
        assert set(reach) == {"MEDIAX_BASE_URL", "MEDIAX_SECRET_ID", "MEDIAX_SECRET_KEY"}
        yield reach


def create_job(env: dict[str, str]) -> str:
    body = {
        "action": "CreateJob",
        "secretId": env["MEDIAX_SECRET_ID"],
        "secretKey": env["MEDIAX_SECRET_KEY"],
        "createJobRequest": CREATE,
    }
    with httpx.Client(trust_env=False, timeout=SAFETY) as http:
        answer = http.post(env["MEDIAX_BASE_URL"] + "/job", json=body)
    job_id: str = answer.json()["createJobResponse"]["job"]["id"]
    return job_id


def batch_file(tmp_path: Path, lines: int = 3) -> Path:
    source = tmp_path / "jobs.jsonl"
    line = '{"kind": "separation", "song": "https://x/%d.mp3", "content_id": "repo"}\n'
    source.write_text("".join(line % n for n in range(lines)))
    return source


def long_running(name: str, env: dict[str, str], tmp_path: Path) -> list[str]:
    """The command line of a long-running command, by name."""
    commands: dict[str, Any] = {
        "demo": lambda: mediax("demo", "--speed", "0.01"),
        "wait": lambda: mediax("wait", create_job(env)),
        "separate --wait": lambda: mediax(
            "separate", "https://x/a.mp3", "--content-id", "r", "--wait"
        ),
        "batch": lambda: mediax("batch", str(batch_file(tmp_path))),
        "listen": lambda: mediax("listen", "--port", "0", "--token", "t" * 32),
        "emulator": lambda: mediax("emulator", "--port", "0"),
    }
    argv: list[str] = commands[name]()
    return argv


def test_module_runs_as_a_script() -> None:
    """`python -m mediax_async.cli --help` works without the console script."""
    with child(mediax("--help")) as process:
        code, out, _ = process.finish()
    assert code == 0
    assert "exit codes" in out


@pytest.mark.parametrize("name", ["demo", "wait", "separate --wait", "batch", "listen", "emulator"])
def test_ctrl_c_exits_130(name: str, emulator: dict[str, str], tmp_path: Path) -> None:
    """Ctrl-C ends every long-running command with 130, without a traceback."""
    with child(long_running(name, emulator, tmp_path), env=emulator) as process:
        process.line()  # it runs: its first line is out
        code, _out, err = process.finish(signal.SIGINT)
    assert code == 130, err
    assert "Traceback" not in err
    if name == "batch":
        assert "run the same command again to resume" in err


@pytest.mark.parametrize("name", ["batch", "wait", "listen", "emulator"])
def test_sigterm_is_handled_like_ctrl_c(
    name: str, emulator: dict[str, str], tmp_path: Path
) -> None:
    """SIGTERM stops a command as Ctrl-C does (state saved, how to resume said), exit 143."""
    with child(long_running(name, emulator, tmp_path), env=emulator) as process:
        process.line()
        code, _out, err = process.finish(signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err
    assert "terminated" in err
    if name == "batch":
        assert "run the same command again to resume" in err
        header, *_records = (tmp_path / "jobs.results.jsonl").read_text().splitlines()
        assert json.loads(header)["source"] == "jobs.jsonl"


@pytest.mark.parametrize("name", ["demo", "batch", "--help"])
def test_a_closed_pipe_ends_quietly(name: str, emulator: dict[str, str], tmp_path: Path) -> None:
    """`mediax ... | head -2`: once the reader has gone, exit 141 and not a word on stderr."""
    argv = mediax("--help") if name == "--help" else long_running(name, emulator, tmp_path)
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first line
    try:
        with child(argv, env=emulator, stdout=writer) as process:
            os.close(writer)
            writer = -1
            code, _out, err = process.finish()
    finally:
        if writer >= 0:
            os.close(writer)
    assert code == (0 if name == "--help" else 141)  # argparse's help ignores a closed pipe
    assert err == ""


def test_rejected_credentials_are_one_line(emulator: dict[str, str]) -> None:
    """`mediax wait` with a wrong key: exit 3 and exactly one `mediax: error:` line."""
    job_id = create_job(emulator)
    env = {**emulator, "MEDIAX_SECRET_KEY": "not-the-right-key"}
    with child(mediax("wait", job_id), env=env) as process:
        code, _out, err = process.finish()
    assert code == 3
    (line,) = err.splitlines()
    assert line.startswith("mediax: error: credentials rejected")
    assert "not-the-right-key" not in err


def test_the_emulator_prints_lines_a_shell_can_export() -> None:
    """`mediax emulator` prints `export` lines; sourced by a shell, they reach the emulator."""
    key = "my-own-emulator-key-42"
    argv = mediax("emulator", "--port", "0", "--secret-id", "AKIDmine", "--secret-key", key)
    with child(argv) as emulator:
        lines = [emulator.line() for _ in range(3)]
        assert lines[0].startswith("export MEDIAX_BASE_URL=http://127.0.0.1:")
        assert lines[1] == "export MEDIAX_SECRET_ID=AKIDmine"
        assert key not in lines[2]  # a key the user chose is not shown
        script = "\n".join([*lines, 'printf "%s %s" "$MEDIAX_BASE_URL" "$MEDIAX_SECRET_ID"'])
        shown = subprocess.run(
            ["sh", "-c", script], capture_output=True, text=True, check=True, timeout=SAFETY
        ).stdout
        base_url, secret_id = shown.split()
        env = {"MEDIAX_BASE_URL": base_url, "MEDIAX_SECRET_ID": secret_id, "MEDIAX_SECRET_KEY": key}
        argv = mediax("--json", "separate", "https://x/a.mp3", "--content-id", "r")
        with child(argv, env=env) as command:
            code, out, err = command.finish()
        assert code == 0, err
        assert json.loads(out)["stateName"] == "SUBMITTED"
        code, _, err = emulator.finish(signal.SIGINT)
    assert code == 130
    assert key not in err


def test_the_emulator_json_is_one_line(emulator: dict[str, str]) -> None:
    """`mediax --json emulator` prints one JSON line: base URL and the fake's credentials."""
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator["MEDIAX_BASE_URL"])
    assert emulator["MEDIAX_SECRET_ID"]
    assert emulator["MEDIAX_SECRET_KEY"]


def test_wait_against_a_closed_port_exits_4_with_one_error_line() -> None:
    """`mediax wait` against a port nobody listens on: exit 4, one `mediax: error:` line."""
    import socket

    with socket.socket() as probe:  # a free port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"MEDIAX_SECRET_ID": "id", "MEDIAX_SECRET_KEY": "key"}
    argv = mediax("--base-url", f"http://127.0.0.1:{port}", "wait", "job-1", "--give-up-after", "2")
    with child(argv, env=env) as process:
        code, _out, err = process.finish()
    assert code == 4, err
    errors = [line for line in err.splitlines() if line.startswith("mediax: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err
