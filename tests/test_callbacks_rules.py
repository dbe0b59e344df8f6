"""The pure rules of the callback receiver: token, route, size, body, URL, poll policy."""

from __future__ import annotations

import json
import re

import pytest

from mediax_async import PollContext, PollPolicy, State
from mediax_async._callbacks import (
    CALLBACK_POLL_POLICY,
    callback_poll_policy,
    new_callback_token,
    redact_callback_url,
)
from mediax_async._callbacks._rules import (
    Rejection,
    build_callback_url,
    check_content_length,
    check_route,
    check_token,
    normalize_path,
    parse_callback_body,
    route_path,
    token_digest,
)

TOKEN = "s3cret-Token_0123456789abcdef"
DIGEST = token_digest(TOKEN)
JOB = {"id": "job-1", "state": 3, "customId": "c", "timing": {"createdAt": "1", "completedAt": "2"}}


def route(
    path: str, query: bytes = b"", method: str = "POST", prefix: str = "/callbacks"
) -> object:
    return check_route(path=path, query_string=query, method=method, prefix=prefix, expected=DIGEST)


# -- tokens ---------------------------------------------------------------------------


def test_new_tokens_are_long_url_safe_and_fresh() -> None:
    """A generated token is 256 random bits in URL-safe characters, never the same twice."""
    tokens = {new_callback_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        assert check_token(token) == token


@pytest.mark.parametrize("bad", ["short", "x" * 15, "x" * 257, "has space in it 123", "a/b" * 8])
def test_unfit_tokens_are_refused_without_showing_them(bad: str) -> None:
    """A guessable or URL-breaking token is a ValueError whose text does not contain it."""
    with pytest.raises(ValueError, match="callback token") as caught:
        check_token(bad)
    assert bad not in str(caught.value)


# -- routes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "method", "expected"),
    [
        (f"/callbacks/{TOKEN}", b"", "POST", None),
        ("/callbacks", f"token={TOKEN}".encode(), "POST", None),
        ("/callbacks/", f"a=1&token={TOKEN}".encode(), "POST", None),
        ("/callbacks/wrong-token-0123456789", b"", "POST", Rejection.BAD_TOKEN),
        (f"/callbacks/{TOKEN}x", b"", "POST", Rejection.BAD_TOKEN),
        ("/callbacks", b"", "POST", Rejection.BAD_TOKEN),
        ("/callbacks", f"token={TOKEN}&token={TOKEN}".encode(), "POST", Rejection.BAD_TOKEN),
        ("/callbacks", b"token=", "POST", Rejection.BAD_TOKEN),
        (f"/callbacks/{TOKEN}", b"", "GET", Rejection.METHOD_NOT_ALLOWED),
        ("/callbacks/nope-nope-nope-nope", b"", "GET", Rejection.BAD_TOKEN),
        (f"/other/{TOKEN}", b"", "POST", Rejection.NOT_FOUND),
        (f"/callbacks/{TOKEN}/more", b"", "POST", Rejection.NOT_FOUND),
        ("/", b"", "POST", Rejection.NOT_FOUND),
    ],
)
def test_route_decisions(path: str, query: bytes, method: str, expected: object) -> None:
    """404 for another path, then 401 for a missing or wrong token, then 405 for a non-POST."""
    assert route(path, query, method) is expected


def test_a_receiver_at_its_mount_point() -> None:
    """With path "" the token is the first segment, or ?token= at the root."""
    assert route(f"/{TOKEN}", prefix="") is None
    assert route("/", f"token={TOKEN}".encode(), prefix="") is None
    assert route("", f"token={TOKEN}".encode(), prefix="") is None
    assert route("/wrong-wrong-wrong-wrong", prefix="") is Rejection.BAD_TOKEN
    assert route(f"/a/{TOKEN}", prefix="") is Rejection.NOT_FOUND


def test_route_path_strips_the_mount_point() -> None:
    """Mounted under a prefix (Starlette, uvicorn --root-path), paths are matched below it."""
    assert route_path({"path": "/hooks/callbacks/t", "root_path": "/hooks"}) == "/callbacks/t"
    assert route_path({"path": "/hooks", "root_path": "/hooks"}) == ""
    assert route_path({"path": "/hooksx/a", "root_path": "/hooks"}) == "/hooksx/a"
    assert route_path({"path": "/a", "root_path": ""}) == "/a"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("/callbacks", "/callbacks"), ("callbacks/", "/callbacks"), ("/", ""), ("", "")],
)
def test_paths_are_normalized(given: str, expected: str) -> None:
    """A receiver path gets one leading slash and no trailing one."""
    assert normalize_path(given) == expected


def test_rejections_map_to_http_statuses() -> None:
    """Each reason has the status a sender expects."""
    statuses = {r: r.status for r in Rejection}
    assert statuses == {
        Rejection.NOT_FOUND: 404,
        Rejection.BAD_TOKEN: 401,
        Rejection.METHOD_NOT_ALLOWED: 405,
        Rejection.TOO_LARGE: 413,
        Rejection.MALFORMED: 400,
        Rejection.NOT_A_JOB: 400,
    }


# -- size and body ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], None),
        ([(b"content-length", b"100")], None),
        ([(b"Content-Length", b"101")], Rejection.TOO_LARGE),
        ([(b"content-length", b"abc")], Rejection.MALFORMED),
        ([(b"content-length", b"-1")], Rejection.MALFORMED),
        ([(b"content-length", b"5"), (b"content-length", b"6")], Rejection.MALFORMED),
        ([(b"content-length", b"5"), (b"content-length", b"5")], None),
    ],
)
def test_declared_length(headers: list[tuple[bytes, bytes]], expected: object) -> None:
    """A declared body over the limit is refused before it is read; a bad length is malformed."""
    assert check_content_length(headers, 100) is expected


def test_a_job_body_is_parsed() -> None:
    """The documented body, the Job object itself, gives the job."""
    job = parse_callback_body(json.dumps(JOB).encode())
    assert not isinstance(job, Rejection)
    assert (job.id, job.state) == ("job-1", State.COMPLETED)


def test_a_wrapped_job_body_is_parsed() -> None:
    """A body shaped like {"job": {...}} is taken too."""
    job = parse_callback_body(json.dumps({"job": JOB}).encode())
    assert not isinstance(job, Rejection)
    assert job.id == "job-1"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", Rejection.MALFORMED),
        (b"{not json", Rejection.MALFORMED),
        (b"\xff\xfe\xfa", Rejection.MALFORMED),
        (b"[" * 100_000, Rejection.MALFORMED),
        (b'{"a":' * 100_000, Rejection.MALFORMED),
        (b"[1, 2]", Rejection.NOT_A_JOB),
        (b'"a string"', Rejection.NOT_A_JOB),
        (b"{}", Rejection.NOT_A_JOB),
        (b'{"id": "x"}', Rejection.NOT_A_JOB),
        (b'{"id": "", "state": 3}', Rejection.NOT_A_JOB),
        (b'{"id": "x", "state": "done"}', Rejection.NOT_A_JOB),
        (b'{"job": [1]}', Rejection.NOT_A_JOB),
    ],
)
def test_bodies_that_are_not_jobs(body: bytes, expected: Rejection) -> None:
    """Not JSON (or absurdly deep) is malformed; JSON without a job id and state is not a job."""
    assert parse_callback_body(body) is expected


# -- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public", "expected"),
    [
        ("https://hooks.example.com", f"https://hooks.example.com/callbacks/{TOKEN}"),
        ("https://hooks.example.com/", f"https://hooks.example.com/callbacks/{TOKEN}"),
        ("http://127.0.0.1:8080/mx/", f"http://127.0.0.1:8080/mx/callbacks/{TOKEN}"),
    ],
)
def test_callback_urls(public: str, expected: str) -> None:
    """The callback URL is the public base URL, the receiver's path, then the token."""
    assert build_callback_url(public, TOKEN) == expected


@pytest.mark.parametrize(
    "public",
    ["ftp://x", "hooks.example.com", "https://", f"https://h/?token={TOKEN}", "https://h/#f"],
)
def test_bad_public_urls_are_refused_without_a_token(public: str) -> None:
    """A public URL that cannot carry callbacks is a ValueError that shows no token."""
    with pytest.raises(ValueError, match="public URL") as caught:
        build_callback_url(public, TOKEN)
    assert TOKEN not in str(caught.value)


def test_callback_urls_redact() -> None:
    """A shown callback URL hides its token, in the path or the query; other URLs are kept."""
    assert redact_callback_url(f"https://h/callbacks/{TOKEN}") == "https://h/callbacks/***"
    assert (
        redact_callback_url(f"https://h/cb?a=1&token={TOKEN}&b=2")
        == "https://h/cb?a=1&token=***&b=2"
    )
    assert redact_callback_url("https://example.com/hook") == "https://example.com/hook"


# -- the hybrid poll policy ---------------------------------------------------------------


def test_callback_poll_policy_polls_rarely() -> None:
    """Fed by callbacks, a job is first polled after 300-600 s, then every 900 s at most."""
    assert isinstance(CALLBACK_POLL_POLICY, PollPolicy)
    first = [
        CALLBACK_POLL_POLICY.next_delay(PollContext(polls=0, state=None), d) for d in (0, 0.999)
    ]
    assert first[0] == 300
    assert 599 < first[1] <= 600
    later = [
        CALLBACK_POLL_POLICY.next_delay(PollContext(polls=n, state=State.SUBMITTED), 0.999)
        for n in range(1, 10)
    ]
    assert 599 < later[0] <= 600
    assert all(899 < d <= 900 for d in later[1:])


def test_callback_poll_policy_is_tunable() -> None:
    """The first delay and the cap can be set; the cap is never below the first delay."""
    policy = callback_poll_policy(first_delay=60, max_interval=10, jitter="none")
    assert policy.next_delay(PollContext(polls=0, state=None), 0.5) == 60
    assert policy.next_delay(PollContext(polls=5, state=State.PROCESSING), 0.5) == 60
