"""The public API as a user writes it, checked by ``mypy --strict`` (see ``test_typing.py``).

Never imported by the tests: mypy reads it. ``assert_type`` pins the types a
user relies on; each ``# type: ignore[...]`` pins a mistake mypy must catch
(strict mode reports an ignore that is not needed).
"""

from __future__ import annotations

import datetime as dt
import logging

import anyio
from typing_extensions import assert_type

import mediax_async
from mediax_async import (
    APIError,
    AuthenticationError,
    BgmOutputType,
    ConfigurationError,
    CreateJobRequest,
    HummingOutputType,
    Input,
    Job,
    JobFailedError,
    JobList,
    LearnedSchedule,
    LearningPollPolicy,
    MediaXClient,
    MediaXError,
    ModelPage,
    MusicComposerHumming,
    MusicSeparateMethod,
    MusicSeparateTone,
    Output,
    OutputFile,
    PollPolicy,
    RateLimitError,
    RequestValidationError,
    RetryPolicy,
    SingingModel,
    SmartContentDescriptor,
    SongEmotion,
    SongType,
    Source,
    State,
    SwitchOption,
    TransportError,
    WaitTimeoutError,
    converter,
    image_to_music_request,
    parse_job,
    singing_training_request,
)

log = logging.getLogger(__name__)


def build_requests() -> list[CreateJobRequest]:
    """Requests from builders and from the model classes."""
    image = image_to_music_request(
        "https://cdn.example.com/cat.png",
        content_id="repo",
        song_quantity=2,
        output_type=BgmOutputType.MP4,
        emotion=SongEmotion.WARM,
        song_type=SongType.MULTITRACK,
        custom_id="cat-1",
    )
    assert_type(image, CreateJobRequest)
    training = singing_training_request(
        ["https://cdn.example.com/a.wav", Source(content_id="repo", path="/b.wav")],
        model_name="my_voice",
        total_epoch=30,
        use_separate=True,
    )
    humming = CreateJobRequest(
        custom_id="hum-1",
        inputs=[Input(source=Source(content_id="repo", path="/hum.wav"))],
        outputs=[
            Output(
                content_id="repo",
                destination="/songs",
                smart_content_descriptor=SmartContentDescriptor.of(
                    MusicComposerHumming(
                        song_quantity=3,
                        use_sieve=SwitchOption.ON,
                        output_type=HummingOutputType.MIDI,
                    ),
                    output_prefix="hum",
                ),
            )
        ],
        timeout=3600,
    )
    # The image builder takes the image enum, not the humming one (MP3 is 2 there).
    image_to_music_request(
        "https://cdn.example.com/cat.png",
        content_id="repo",
        output_type=HummingOutputType.MP3,  # type: ignore[arg-type]
    )
    return [image, training, humming]


async def submit_and_wait(client: MediaXClient) -> list[OutputFile]:
    """Submit a separation, wait for it, and list its stems."""
    job = await client.submit_separation(
        "https://cdn.example.com/song.mp3", content_id="repo", method=MusicSeparateMethod.FIVE_STEMS
    )
    assert_type(job, Job)
    created = await client.create_job(build_requests()[0])
    assert_type(created, Job)
    done = await client.wait(job, timeout=600)
    assert_type(done, Job)
    assert_type(done.state, State)
    assert_type(done.state.is_terminal, bool)
    try:
        done.raise_for_state()
    except JobFailedError as failed:
        assert_type(failed.job, Job)
        raise
    files = done.output_files()
    assert_type(files, list[OutputFile])
    for item in files:
        assert_type(item.content_id, str | None)
        assert_type(item.path, str)
        assert_type(item.tone, MusicSeparateTone | None)
    if done.timing is not None:
        assert_type(done.timing.completed_at, dt.datetime | None)
    return files


def seeded_learning_policy(kept: dict[str, list[float]]) -> LearningPollPolicy:
    """A learning policy seeded with durations kept from an earlier run, ready to poll."""
    policy = LearningPollPolicy()
    for kind, durations in kept.items():
        for seconds in durations:
            policy.learn(kind, seconds)
    policy.complete_fits()
    assert_type(policy.schedule("musicSeperate"), LearnedSchedule | None)
    return policy


async def wait_for_many(client: MediaXClient, urls: list[str]) -> list[Job]:
    """Fan out a batch and wait for all of it."""
    async with client.waiter(policy=PollPolicy(initial_interval=5.0), max_concurrency=8) as waiter:
        jobs = [await client.submit_humming(url, content_id="repo") for url in urls]
        async for finished in waiter.as_completed(jobs):
            log.info("job %s ended", finished)
        one = await waiter.wait(jobs[0], timeout=60.0)
        assert_type(one, Job)
        results: list[Job] = await waiter.wait_all(jobs)
    return results


async def list_models(client: MediaXClient) -> list[str]:
    """Page through the singing models."""
    page = await client.list_models(offset=0, limit=50)
    assert_type(page, ModelPage)
    assert_type(page.total, int)
    assert_type(page.models, tuple[SingingModel, ...])
    names = [model.name async for model in client.iter_models()]
    created = [model.created_at async for model in client.iter_models(page_size=100)]
    assert_type(created, list[dt.datetime | None])
    await client.list_models(limit="10")  # type: ignore[arg-type]
    return names


def handle_callback(body: bytes) -> str:
    """Parse a callback body and store it."""
    job = parse_job(body)
    assert_type(job, Job)
    assert_type(parse_job({"id": "j", "state": 3}), Job)
    stored = converter.unstructure(job)
    again = converter.structure(stored, Job)
    assert_type(again, Job)
    return job.id


async def main() -> None:
    """Create a client, run everything, and catch each kind of error."""
    try:
        async with MediaXClient(
            base_url=mediax_async.LEGACY_BASE_URL,
            timeout=20.0,
            retry_policy=RetryPolicy(max_retries=5, initial_delay=1.0),
        ) as client:
            assert_type(client.base_url, str)
            await submit_and_wait(client)
            await wait_for_many(client, ["https://cdn.example.com/a.wav"])
            await list_models(client)
            jobs = await client.list_jobs("batch-7")
            assert_type(jobs, JobList)
            assert_type(jobs.complete, bool)
            assert_type(jobs.total, int)
            assert_type(await client.get_job(jobs[0].id), Job)
            await client.get_job(42)  # type: ignore[arg-type]
    except RequestValidationError as exc:
        assert_type(exc.field, str)
    except RateLimitError as exc:
        assert_type(exc.retry_after, float | None)
    except AuthenticationError as exc:
        assert_type(exc.request_id, str | None)
    except APIError as exc:
        assert_type(exc.status_code, int | None)
        assert_type(exc.code, str | None)
    except TransportError as exc:
        assert_type(exc.sent, bool)
    except WaitTimeoutError as exc:
        assert_type(exc.job, Job | None)
    except ConfigurationError:
        pass
    except MediaXError as exc:
        log.error("mediax failed: %s", exc)
    handle_callback(b'{"id": "j", "state": 3}')


if __name__ == "__main__":
    anyio.run(main)
