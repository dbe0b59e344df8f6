"""``mediax demo``: a mixed batch against an in-process fake service, with live progress.

No credentials, no network: the fake runs in this process with its clock
sped up, so jobs of tens of seconds end in a few real seconds. A few jobs fail
on purpose (a timeout, a cancellation), one answer is lost on the way back
and one poll meets a 503, to show the client and the waiter coping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from .._builders import (
    humming_request,
    image_to_music_request,
    separation_request,
    singing_request,
    singing_training_request,
)
from .._enums import (
    BgmOutputType,
    HummingOutputType,
    MusicSeparateMethod,
    SongEmotion,
    SongGenre,
    SongType,
    State,
)
from .._models import CreateJobRequest, Job
from .._policies import PollPolicy, RetryPolicy
from ._commands import Context
from ._errors import describe
from ._parser import EXIT_OK
from ._progress import make_progress
from ._shapes import job_files, job_json, kind_name

__all__ = ["demo"]

_URL = "https://example.com/mediax-demo/"
_REPO = "demo-repo"


def _jobs() -> list[tuple[str, CreateJobRequest]]:
    """What the demo submits: every kind of job, two of them doomed."""
    return [
        (
            "cover art, happy pop, 2 songs",
            image_to_music_request(
                _URL + "cover.png",
                content_id=_REPO,
                destination="/bgm",
                song_quantity=2,
                emotion=SongEmotion.HAPPY,
                genre=SongGenre.POP,
                output_type=BgmOutputType.MP3,
                output_prefix="cover",
            ),
        ),
        (
            "beach photo, warm multitrack video",
            image_to_music_request(
                _URL + "beach.jpg",
                content_id=_REPO,
                destination="/bgm",
                song_type=SongType.MULTITRACK,
                emotion=SongEmotion.WARM,
                output_type=BgmOutputType.MP4,
                output_prefix="beach",
            ),
        ),
        (
            "hummed tune to a song",
            humming_request(
                _URL + "tune.wav", content_id=_REPO, destination="/humming", output_prefix="tune"
            ),
        ),
        (
            "hummed tune to MIDI (canceled)",
            humming_request(
                _URL + "tune2.wav", content_id=_REPO, output_type=HummingOutputType.MIDI
            ),
        ),
        (
            "sing with the default voice",
            singing_request(
                _URL + "song.mp3", content_id=_REPO, use_separate=True, output_prefix="sung"
            ),
        ),
        (
            "train the voice demo_voice",
            singing_training_request(
                [_URL + "take1.wav", _URL + "take2.wav"], model_name="demo_voice", total_epoch=10
            ),
        ),
        (
            "4 stems",
            separation_request(
                _URL + "song.mp3",
                content_id=_REPO,
                destination="/stems",
                method=MusicSeparateMethod.FOUR_STEMS,
                output_prefix="song4",
            ),
        ),
        (
            "5 stems",
            separation_request(
                _URL + "live.mp3",
                content_id=_REPO,
                destination="/stems",
                method=MusicSeparateMethod.FIVE_STEMS,
                output_prefix="live5",
            ),
        ),
        (
            "2 stems, 8 s timeout (too short)",
            separation_request(_URL + "long.mp3", content_id=_REPO, timeout=8),
        ),
    ]


_CANCELED = 3
"""The index of the job the demo's operator cancels once it is processing."""


def _fake(speed: float, seed: int) -> Any:
    from ..testing import FakeMediaX, Fault, LogNormalDuration, Profile, Schedule

    def profile(queue: float, processing: float) -> Profile:
        return Profile(
            queue=LogNormalDuration(queue, 0.3), processing=LogNormalDuration(processing, 0.25)
        )

    schedule = Schedule(
        default=profile(2.0, 20.0),
        by_capability={"singingCloning": profile(3.0, 30.0), "musicSeperate": profile(2.0, 15.0)},
    )
    fake = FakeMediaX(seed=seed, speed=speed, schedule=schedule)
    fake.faults.inject(Fault.ANSWER_LOST, action="CreateJob")  # the client finds its job again
    fake.faults.inject(Fault.UNAVAILABLE, action="GetJob")  # the waiter polls again later
    return fake


def _scaled_policy(speed: float) -> PollPolicy:
    """The default polling rhythm in fake seconds, so the demo polls as a real run would."""
    return PollPolicy(
        first_delay=1.0 / speed,
        initial_interval=2.0 / speed,
        multiplier=1.5,
        max_interval=5.0 / speed,
        submitted_factor=1.5,
    )


@attrs.frozen
class _Row:
    label: str
    job: Job | None
    outcome: Job | BaseException | None


def _took(job: Job) -> str:
    timing = job.timing
    if timing is None or timing.created_at is None or timing.completed_at is None:
        return "-"
    return f"{(timing.completed_at - timing.created_at).total_seconds():.0f} s"


async def demo(ctx: Context) -> int:
    """Run the demo; 0 when it ran (its failures are part of the show)."""
    speed, seed, output = ctx.args.speed, ctx.args.seed, ctx.output
    fake = _fake(speed, seed)
    started = time.monotonic()
    if not output.json_mode:
        output.line(
            f"Starting a fake MediaX in this process (time x{speed:g}, seed {seed}): "
            "no credentials, no network."
        )
    specs = _jobs()
    client = fake.client(retry_policy=RetryPolicy(initial_delay=0.05, max_delay=0.5))
    progress = make_progress(output, len(specs))
    rows: list[_Row] = []
    async with client, fake.running():
        with progress:
            waiter = client.waiter(
                policy=_scaled_policy(speed),
                on_state_change=progress.on_state_change,
                on_settled=progress.on_settled,
            )
            async with waiter, anyio.create_task_group() as tasks:
                jobs: list[Job] = []
                for index, (label, request) in enumerate(specs):
                    job = await client.create_job(request)
                    jobs.append(job)
                    progress.track(job.id, f"{index + 1}. {label}", job.state.name)
                    if index == _CANCELED:
                        tasks.start_soon(_cancel_when_processing, fake, job.id, speed)
                outcomes = await waiter.wait_all(jobs, return_exceptions=True)
                rows = [
                    _Row(label, job, outcome)
                    for (label, _), job, outcome in zip(specs, jobs, outcomes, strict=True)
                ]
                stats = waiter.stats
    wall = time.monotonic() - started
    figures = {
        "polls": stats.polls,
        "poll_retries": stats.retries,
        "client_retries": client.transport.retries,
        "requests": dict(fake.request_counts),
        "wall_time": round(wall, 2),
        "speed": speed,
    }
    if output.json_mode:
        output.json(
            {
                "jobs": [
                    {"label": r.label, "job": job_json(r.outcome)}
                    if isinstance(r.outcome, Job)
                    else {"label": r.label, "error": _error(r.outcome)}
                    for r in rows
                ],
                "stats": attrs.asdict(stats),
                **figures,
            }
        )
        return EXIT_OK
    _show(ctx, rows, figures, stats.completed, len(rows))
    return EXIT_OK


async def _cancel_when_processing(fake: Any, job_id: str, speed: float) -> None:
    """The demo's operator cancels one job in the console once it has started."""
    while True:
        await anyio.sleep(0.5 / speed)
        state = State(fake.job(job_id)["state"])
        if state.is_terminal:
            return
        if state == State.PROCESSING:
            fake.force_state(job_id, State.CANCELED)
            return


def _show(ctx: Context, rows: list[_Row], figures: dict[str, Any], done: int, total: int) -> None:
    output = ctx.output
    table = []
    for row in rows:
        outcome = row.outcome
        if isinstance(outcome, Job):
            detail = "\n".join(job_files(outcome)) or _why(outcome)
            table.append(
                [
                    row.label,
                    kind_name(outcome),
                    outcome.id[:8],
                    outcome.state.name,
                    _took(outcome),
                    detail,
                ]
            )
        else:
            table.append([row.label, "-", "-", "FAILED", "-", _error(outcome)])
    output.line()
    output.table(
        "Outcomes (files are content_id:path)",
        ["job", "kind", "id", "state", "took", "files"],
        table,
        fit=5,
    )
    requests: dict[str, int] = figures["requests"]
    sent = ", ".join(f"{n} {action}" for action, n in sorted(requests.items()))
    output.line(
        f"{done} of {total} completed. Waiter: {figures['polls']} polls, "
        f"{figures['poll_retries']} poll retries; client retries: {figures['client_retries']}; "
        f"requests: {sent}."
    )
    output.line(f"Wall time {figures['wall_time']:.1f} s (fake time x{figures['speed']:g}).")
    output.line("Next: `mediax emulator` serves this fake over HTTP; see `mediax --help`.")


_WHY: dict[State, Callable[[Job], str]] = {
    State.ERROR: lambda job: f"timed out after {job.timeout} s" if job.timeout else "failed",
    State.CANCELED: lambda job: "canceled by the operator",
}


def _error(outcome: BaseException | None) -> str:
    return describe(outcome) if outcome is not None else "did not end"


def _why(job: Job) -> str:
    explain = _WHY.get(job.state)
    return explain(job) if explain is not None else "-"
