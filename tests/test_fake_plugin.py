"""The pytest plugin, exercised the way a user's test suite uses it (through pytester)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

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


def plugin_options() -> list[str]:
    """Load the plugin by name unless the installed package's entry point already does."""
    installed = any(point.value == PLUGIN for point in entry_points(group="pytest11"))
    return [] if installed else ["-p", PLUGIN]


def test_fixtures_work_on_both_event_loops(pytester: pytest.Pytester) -> None:
    """The mediax_fake and mediax_client fixtures work in a user's tests on asyncio and trio."""
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest(*plugin_options())
    result.assert_outcomes(passed=3)  # the sync test runs once


def test_fixtures_are_listed(pytester: pytest.Pytester) -> None:
    """`pytest --fixtures` shows both fixtures with their docstrings."""
    result = pytester.runpytest("--fixtures", *plugin_options())
    result.stdout.fnmatch_lines(
        ["*mediax_fake*", "*fake MediaX service*", "*mediax_client*", "*connected in-process*"]
    )
