"""The pytest plugin, exercised the way a user's test suite uses it (through pytester)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
import sniffio

from mediax_async import MediaXClient, PollPolicy, State
from mediax_async.testing import FakeMediaX

pytest_plugins = ["pytester"]

PLUGIN = "mediax_async.testing.plugin"

USER_TESTS = """
import pytest
from mediax_async.testing import DEFAULT_SECRET_ID, FakeMediaX

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


def test_fake_is_fresh_with_default_credentials(mediax_fake):
    assert isinstance(mediax_fake, FakeMediaX)
    assert mediax_fake.secret_id == DEFAULT_SECRET_ID
    assert mediax_fake.jobs == []


async def test_client_talks_to_the_fake(mediax_client, mediax_fake):
    mediax_fake.add_model("voice")
    async with mediax_client as client:
        page = await client.list_models()
    assert [model.name for model in page.models] == ["voice"]
    assert mediax_fake.request_counts["ListModels"] == 1
"""


ASYNCIO_TESTS = """
import asyncio

import pytest
import sniffio
from mediax_async import PollPolicy, State


@pytest.mark.asyncio
async def test_client_talks_to_the_fake(mediax_client, mediax_fake):
    mediax_fake.add_model("voice")
    async with mediax_client as client:
        page = await client.list_models()
    assert [model.name for model in page.models] == ["voice"]
    assert sniffio.current_async_library() == "asyncio"


@pytest.mark.asyncio
async def test_a_job_made_to_finish_is_waited_for(mediax_client, mediax_fake):
    async with mediax_client as client:
        job = await client.submit_separation("https://x.test/a.mp3", content_id="repo")
        mediax_fake.force_state(job.id, State.COMPLETED)
        done = await client.wait(job, timeout=5, policy=PollPolicy(first_delay=0))
    assert done.state == State.COMPLETED
    assert mediax_fake.request_counts["CreateJob"] == 1


@pytest.mark.asyncio
async def test_each_test_gets_a_fresh_fake(mediax_fake):
    assert mediax_fake.jobs == []
    assert mediax_fake.request_counts["CreateJob"] == 0
"""

MIXED_TESTS = """
import pytest
import sniffio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.mark.asyncio
async def test_under_pytest_asyncio(mediax_client):
    async with mediax_client as client:
        await client.list_models()
    assert sniffio.current_async_library() == "asyncio"


@pytest.mark.anyio
async def test_under_anyio(mediax_client, anyio_backend):
    async with mediax_client as client:
        await client.list_models()
    assert sniffio.current_async_library() == anyio_backend
"""

USER_CONFIG = """
[pytest]
asyncio_default_fixture_loop_scope = function
"""
"""A user's pytest.ini under pytest-asyncio (strict mode, its default)."""


def plugin_options() -> list[str]:
    """Load the plugin by name unless the installed package's entry point already does."""
    installed = any(point.value == PLUGIN for point in entry_points(group="pytest11"))
    return [] if installed else ["-p", PLUGIN]


def test_fixtures_work_on_both_event_loops(pytester: pytest.Pytester) -> None:
    """The mediax_fake and mediax_client fixtures work in a user's tests on asyncio and trio."""
    pytester.makeini(USER_CONFIG)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-W", "error", *plugin_options())
    result.assert_outcomes(passed=3, warnings=0)  # the sync test runs once


def test_fixtures_work_under_pytest_asyncio(pytester: pytest.Pytester) -> None:
    """``@pytest.mark.asyncio`` tests get the fixtures, a fresh fake each, with no warning."""
    pytester.makeini(USER_CONFIG)
    pytester.makepyfile(test_user=ASYNCIO_TESTS)
    result = pytester.runpytest("-W", "error", *plugin_options())
    result.assert_outcomes(passed=3, warnings=0)


def test_pytest_asyncio_and_anyio_share_a_suite(pytester: pytest.Pytester) -> None:
    """In strict mode each plugin runs its own marked tests: anyio's on trio stay on trio."""
    pytester.makeini(USER_CONFIG)
    pytester.makepyfile(test_user=MIXED_TESTS)
    result = pytester.runpytest("-W", "error", "-v", *plugin_options())
    result.assert_outcomes(passed=3, warnings=0)
    result.stdout.fnmatch_lines(
        [
            "*test_under_pytest_asyncio PASSED*",
            "*test_under_anyio?asyncio? PASSED*",
            "*test_under_anyio?trio? PASSED*",
        ]
    )


def test_fixtures_are_listed(pytester: pytest.Pytester) -> None:
    """`pytest --fixtures` shows both fixtures with their docstrings."""
    pytester.makeini(USER_CONFIG)
    result = pytester.runpytest("-W", "error", "--fixtures", *plugin_options())
    result.stdout.fnmatch_lines(
        ["*mediax_fake*", "*fake MediaX service*", "*mediax_client*", "*connected in-process*"]
    )


# -- this suite's own tests, on pytest-asyncio beside anyio's plugin ---------------------------


@pytest.mark.asyncio
async def test_fixtures_under_pytest_asyncio_here(
    mediax_client: MediaXClient, mediax_fake: FakeMediaX
) -> None:
    """In this suite too, a ``@pytest.mark.asyncio`` test gets a client talking to the fake."""
    mediax_fake.add_model("voice")
    async with mediax_client as client:
        job = await client.submit_separation("https://x.test/a.mp3", content_id="repo")
        mediax_fake.force_state(job.id, State.COMPLETED)
        done = await client.wait(job, timeout=5, policy=PollPolicy(first_delay=0))
        page = await client.list_models()
    assert done.state == State.COMPLETED
    assert [model.name for model in page.models] == ["voice"]
    assert sniffio.current_async_library() == "asyncio"
