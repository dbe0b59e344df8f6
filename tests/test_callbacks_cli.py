"""The command line's callback options, in-process (serving is in test_callbacks_served.py)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from mediax_async.cli import Runtime, main
from mediax_async.cli._listen import callback_token
from mediax_async.cli._parser import parse_address
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule

TOKEN = "cli-test-token-0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080", ("127.0.0.1", 8080)),
        (":8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("hooks.local:443", ("hooks.local", 443)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    """--listen takes PORT, HOST:PORT or [IPV6]:PORT; the host defaults to loopback."""
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", "x", "host:", "host:port", "::1:80", "h:70000"])
def test_bad_listen_addresses(text: str) -> None:
    """A --listen value that is not [HOST:]PORT is a usage error."""
    with pytest.raises(argparse.ArgumentTypeError):
        parse_address(text)


def namespace(command: str, **values: object) -> argparse.Namespace:
    return argparse.Namespace(command=command, **values)


def test_the_token_comes_from_the_option_the_environment_or_chance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--token wins, then $MEDIAX_CALLBACK_TOKEN, else a fresh one; other commands get none."""
    monkeypatch.delenv("MEDIAX_CALLBACK_TOKEN", raising=False)
    assert callback_token(namespace("listen", token=TOKEN)) == TOKEN
    fresh = callback_token(namespace("listen", token=None))
    assert fresh is not None
    assert len(fresh) >= 43
    monkeypatch.setenv("MEDIAX_CALLBACK_TOKEN", TOKEN)
    assert callback_token(namespace("listen", token=None)) == TOKEN
    assert callback_token(namespace("batch", token=None, listen=("127.0.0.1", 0))) == TOKEN
    assert callback_token(namespace("batch", token=None, listen=None)) is None
    assert callback_token(namespace("get")) is None


def test_a_weak_token_is_a_usage_error_that_does_not_show_it() -> None:
    """`mediax listen --token weak-ish` exits 2, and the message leaves the token out."""
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["listen", "--port", "0", "--token", "short-token"], runtime=Runtime(stdout=out, stderr=err)
    )
    assert code == 2
    assert "callback token" in err.getvalue()
    assert "short-token" not in out.getvalue() + err.getvalue()


def test_batch_listen_needs_asyncio(tmp_path: Path) -> None:
    """On trio, `mediax batch --listen` is a configuration error (uvicorn runs on asyncio)."""
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"kind": "separation", "song": "https://x/a.mp3", "content_id": "r"}\n')
    fake = FakeMediaX()
    err = io.StringIO()
    runtime = Runtime(
        client_factory=lambda settings: fake.client(),
        stdout=io.StringIO(),
        stderr=err,
        backend="trio",
    )
    code = main(["batch", str(source), "--listen", "0", "--token", TOKEN], runtime=runtime)
    assert code == 3
    assert "asyncio" in err.getvalue()
    assert TOKEN not in err.getvalue()


@pytest.mark.parametrize("options", [[], ["--json"]], ids=["table", "json"])
def test_a_shown_job_hides_its_callback_token(options: list[str]) -> None:
    """`mediax get` (tables and ``--json``) shows the callback URL with the token as ***."""
    schedule = Schedule(default=Profile(queue=FixedDuration(0), processing=FixedDuration(0)))
    fake = FakeMediaX(schedule=schedule)
    url = f"https://hooks.example.com/callbacks/{TOKEN}"
    fake.state.create_job(
        fake.secret_id,
        {
            "inputs": [{"url": "https://x/a.mp3"}],
            "outputs": [
                {
                    "contentId": "r",
                    "inputSelectors": [0],
                    "smartContentDescriptor": {"musicSeperate": {"method": 1}},
                }
            ],
            "callback": url,
        },
        0.0,
    )
    (job,) = fake.jobs
    out = io.StringIO()
    runtime = Runtime(
        client_factory=lambda settings: fake.client(), stdout=out, stderr=io.StringIO()
    )
    assert main([*options, "get", job["id"]], runtime=runtime) == 0
    assert "https://hooks.example.com/callbacks/***" in out.getvalue()
    assert TOKEN not in out.getvalue()
