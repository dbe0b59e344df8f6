"""The client end to end against the fake service: in-process and over loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from mediax_async import (
    AuthenticationError,
    MediaXClient,
    MusicSeparateMethod,
    MusicSeparateTone,
    NotFoundError,
    PollPolicy,
    RequestValidationError,
    SongEmotion,
    SongType,
    State,
)
from mediax_async.testing import FakeMediaX, FixedDuration, Profile, Schedule

QUICK = Schedule(default=Profile(queue=FixedDuration(0.01), processing=FixedDuration(0.05)))
FAST = PollPolicy(first_delay=0.02, initial_interval=0.02, max_interval=0.05, jitter="none")


@asynccontextmanager
async def in_process(
    fake: FakeMediaX, secret_key: str | None = None, **kwargs: Any
) -> AsyncIterator[MediaXClient]:
    key = secret_key or fake.secret_key
    async with (
        fake.http_client() as http,
        MediaXClient(
            fake.secret_id, key, base_url=fake.base_url, http_client=http, **kwargs
        ) as client,
    ):
        yield client


@asynccontextmanager
async def over_loopback(
    fake: FakeMediaX, secret_key: str | None = None, **kwargs: Any
) -> AsyncIterator[MediaXClient]:
    key = secret_key or fake.secret_key
    async with (
        fake.serve() as base_url,
        MediaXClient(fake.secret_id, key, base_url=base_url, **kwargs) as client,
    ):
        yield client


Connect = Callable[..., Any]


@pytest.fixture(params=[in_process, over_loopback], ids=["in-process", "loopback"])
def connect(request: pytest.FixtureRequest) -> Connect:
    """Each test runs once through the httpx transport and once over real HTTP."""
    connect: Connect = request.param
    return connect


@pytest.fixture
def anyio_backend() -> str:
    """Served mode uses uvicorn, which runs on asyncio."""
    return "asyncio"


@pytest.mark.anyio
async def test_every_kind_of_job_round_trips(connect: Connect) -> None:
    """Each submit_* call creates a job that the service completes with its files."""
    fake = FakeMediaX(schedule=QUICK)
    async with connect(fake) as client:
        jobs = [
            await client.submit_image_to_music(
                "https://img.test/a.png",
                content_id="repo",
                song_quantity=2,
                emotion=SongEmotion.WARM,
                song_type=SongType.MULTITRACK,
            ),
            await client.submit_humming(
                "https://hum.test/a.wav", content_id="repo", song_quantity=3
            ),
            await client.submit_singing("https://sing.test/a.mp3", content_id="repo"),
            await client.submit_singing_training("https://voice.test/a.wav", model_name="my_voice"),
            await client.submit_separation(
                "https://song.test/a.mp3",
                content_id="repo",
                destination="/stems",
                method=MusicSeparateMethod.FIVE_STEMS,
            ),
        ]
        async with client.waiter(policy=FAST) as waiter:
            done = await waiter.wait_all(jobs)
        assert [job.state for job in done] == [State.COMPLETED] * 5
        image, humming, singing, training, separation = done
        assert len(image.output_files()) == 2
        assert len(humming.output_files()) == 3
        assert len(singing.output_files()) == 1
        assert training.trained_model_name == "my_voice"
        stems = separation.output_files()
        assert [f.tone for f in stems] == [
            MusicSeparateTone.VOCALS,
            MusicSeparateTone.DRUMS,
            MusicSeparateTone.BASS,
            MusicSeparateTone.PIANO,
            MusicSeparateTone.OTHER,
        ]
        assert all(f.path.startswith("/stems/") and f.content_id == "repo" for f in stems)
        assert [m.name async for m in client.iter_models(page_size=1)] == ["my_voice"]
        again = await client.get_job(separation.id)
        assert again == separation
        listed = await client.list_jobs(separation.custom_id or "")
        assert [job.id for job in listed] == [separation.id]


@pytest.mark.anyio
async def test_errors_come_back_typed(connect: Connect) -> None:
    """Unknown jobs, bad requests and wrong keys are typed errors, over either transport."""
    fake = FakeMediaX(schedule=QUICK)
    async with connect(fake) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.get_job("no-such-job")
        assert missing.value.status_code == 404
        assert missing.value.request_id
        with pytest.raises(RequestValidationError, match="limit"):
            await client.list_models(limit=101)
    async with connect(fake, secret_key="not-the-key", max_retries=0) as client:
        with pytest.raises(AuthenticationError) as rejected:
            await client.get_job("x")
        assert "not-the-key" not in str(rejected.value)
