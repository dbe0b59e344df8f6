"""The fake over its httpx transport, with raw httpx and wire JSON (never the client)."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from mediax_async._enums import State
from mediax_async.testing import (
    DEFAULT_SECRET_ID,
    DEFAULT_SECRET_KEY,
    FakeMediaX,
    Fault,
)

pytestmark = pytest.mark.anyio


class ManualClock:
    """A clock the test moves by hand, for both event loops."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> FakeMediaX:
    return FakeMediaX(clock=clock)


@pytest.fixture
async def http(fake: FakeMediaX) -> AsyncIterator[httpx.AsyncClient]:
    async with fake.http_client() as client:
        yield client


REQUEST_KEYS = {
    "CreateJob": "createJobRequest",
    "GetJob": "getJobRequest",
    "ListJobs": "listJobsRequest",
    "ListModels": "listModelsRequest",
}


async def call(
    http: httpx.AsyncClient,
    action: str,
    request: Any,
    *,
    path: str | None = None,
    secret_key: str = DEFAULT_SECRET_KEY,
) -> httpx.Response:
    body = {
        "action": action,
        "secretId": DEFAULT_SECRET_ID,
        "secretKey": secret_key,
        REQUEST_KEYS[action]: request,
    }
    return await http.post(
        path or ("/music_model" if action == "ListModels" else "/job"), json=body
    )


def job_request(capability: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    descriptor: dict[str, Any] = {capability: params}
    if capability != "musicSeperate":
        descriptor["outputPrefix"] = "take"
    output: dict[str, Any] = {"inputSelectors": [0], "smartContentDescriptor": descriptor}
    if not (capability == "singingCloning" and params.get("type") == 2):
        output |= {"contentId": "repo", "destination": "/out"}
    return {"inputs": [{"url": "https://example.com/in.wav"}], "outputs": [output], **extra}


def bgm_request(**extra: Any) -> dict[str, Any]:
    return job_request("imageBgmGeneration", {"songQuantity": 1}, **extra)


async def create(http: httpx.AsyncClient, request: dict[str, Any]) -> dict[str, Any]:
    response = await call(http, "CreateJob", request)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()["createJobResponse"]["job"]
    return job


async def get(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await call(http, "GetJob", {"id": job_id})
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()["getJobResponse"]["job"]
    return job


# -- lifecycle and answers ------------------------------------------------------------


async def test_create_then_poll_until_completed(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """A created job is SUBMITTED, then PROCESSING, then COMPLETED with results, as time passes."""
    response = await call(http, "CreateJob", bgm_request(customId="c1"))
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"requestId", "createJobResponse"}
    job = body["createJobResponse"]["job"]
    assert job["state"] == State.SUBMITTED
    assert job["timing"]["startedAt"] == job["timing"]["completedAt"] == "0"
    clock.now = 1
    assert (await get(http, job["id"]))["state"] == State.PROCESSING
    clock.now = 31
    done = await get(http, job["id"])
    assert done["state"] == State.COMPLETED
    assert int(done["timing"]["completedAt"]) - int(done["timing"]["createdAt"]) == 31_000
    assert done["outputs"][0]["smartContentResult"] == {
        "imageBgmGeneration": [{"songName": "take_1.mp3"}]
    }
    assert {key: done[key] for key in ("id", "customId", "inputs")} == {
        key: job[key] for key in ("id", "customId", "inputs")
    }


async def test_any_path_prefix_is_accepted(http: httpx.AsyncClient) -> None:
    """The legacy gateway's /release/job and /release/music_model paths work too."""
    job = await create(http, bgm_request())
    response = await call(http, "GetJob", {"id": job["id"]}, path="/release/job/")
    assert response.status_code == 200
    models = await call(http, "ListModels", {"type": 2}, path="/release/music_model")
    assert models.json()["listModelsResponse"] == {"total": 0, "models": []}


async def test_request_ids_differ_and_repeat_with_the_seed() -> None:
    """Each answer has its own requestId; the same seed gives the same ids and job ids."""

    async def run() -> list[str]:
        fake = FakeMediaX(clock=lambda: 0.0, seed=5)
        async with fake.http_client() as http:
            first = await call(http, "CreateJob", bgm_request())
            second = await call(http, "ListJobs", {"customId": "x"})
        job_id = first.json()["createJobResponse"]["job"]["id"]
        return [first.json()["requestId"], second.json()["requestId"], job_id]

    ids = await run()
    assert len(set(ids)) == 3
    assert await run() == ids


STEMS = {
    1: [(1, "vocals"), (5, "other")],
    2: [(1, "vocals"), (2, "drums"), (3, "bass"), (5, "other")],
    3: [(1, "vocals"), (2, "drums"), (3, "bass"), (4, "piano"), (5, "other")],
}


@pytest.mark.parametrize(
    ("capability", "params", "expected"),
    [
        pytest.param(
            "imageBgmGeneration",
            {"songQuantity": 3},
            [{"songName": f"take_{n}.mp3"} for n in (1, 2, 3)],
            id="image-mp3",
        ),
        pytest.param(
            "imageBgmGeneration",
            {"songQuantity": 2, "outputType": 2, "type": 2, "emotion": 10},
            [{"songName": f"take_{n}.mp3", "videoName": f"take_{n}.mp4"} for n in (1, 2)],
            id="image-mp4",
        ),
        pytest.param(
            "musicComposerHumming",
            {"songQuantity": 2},
            {"outputFiles": [{"songName": "take_1.mp3"}, {"songName": "take_2.mp3"}]},
            id="humming-mp3",
        ),
        pytest.param(
            "musicComposerHumming",
            {"songQuantity": 1, "outputType": 1, "useSieve": 1},
            {"outputFiles": [{"midiName": "take_1.mid"}]},
            id="humming-midi",
        ),
        pytest.param(
            "singingCloning",
            {"type": 1, "modelName": "default", "useSeparate": 2},
            {"songName": "take.mp3"},
            id="singing-generate",
        ),
        pytest.param(
            "singingCloning",
            {"type": 2, "modelName": "new_voice", "totalEpoch": 50},
            {"modelName": "new_voice"},
            id="singing-train",
        ),
        *(
            pytest.param(
                "musicSeperate",
                {"method": method},
                "stems",
                id=f"separate-method-{method}",
            )
            for method in STEMS
        ),
    ],
)
async def test_completed_jobs_carry_the_documented_result_shapes(
    http: httpx.AsyncClient, clock: ManualClock, capability: str, params: Any, expected: Any
) -> None:
    """Each capability's smartContentResult has the vendor's shape, one file per song or stem."""
    job = await create(http, job_request(capability, params))
    clock.now = 1000
    result = (await get(http, job["id"]))["outputs"][0]["smartContentResult"]
    if expected == "stems":  # no outputPrefix: file names start with the job id
        stems = STEMS[params["method"]]
        expected = [{"tone": tone, "fileName": f"{job['id']}_{name}.wav"} for tone, name in stems]
    assert result == {capability: expected}


async def test_songs_follow_song_quantity_up_to_a_hundred(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """SongQuantity 100 gives 100 distinct files."""
    job = await create(http, job_request("musicComposerHumming", {"songQuantity": 100}))
    clock.now = 1000
    result = (await get(http, job["id"]))["outputs"][0]["smartContentResult"]
    files = result["musicComposerHumming"]["outputFiles"]
    assert len({file["songName"] for file in files}) == 100


async def test_training_adds_a_model_that_generation_can_use(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """A completed training job lists its model in ListModels, and generation may then use it."""
    generate = job_request("singingCloning", {"type": 1, "modelName": "my_voice"})
    refused = await call(http, "CreateJob", generate)
    assert refused.status_code == 400
    assert "'my_voice' is not a model" in refused.json()["error"]["message"]
    await create(http, job_request("singingCloning", {"type": 2, "modelName": "my_voice"}))
    clock.now = 1000
    listed = (await call(http, "ListModels", {"offset": 0, "limit": 10, "type": 2})).json()
    assert listed["listModelsResponse"]["total"] == 1
    assert listed["listModelsResponse"]["models"][0]["name"] == "my_voice"
    await create(http, generate)


async def test_list_jobs_returns_all_matches(http: httpx.AsyncClient) -> None:
    """ListJobs by customId returns every job with it, and the total."""
    ids = [(await create(http, bgm_request(customId="dup")))["id"] for _ in range(3)]
    await create(http, bgm_request(customId="solo"))
    listed = (await call(http, "ListJobs", {"customId": "dup"})).json()["listJobsResponse"]
    assert listed["total"] == 3
    assert [job["id"] for job in listed["jobs"]] == ids
    empty = (await call(http, "ListJobs", {"customId": "none"})).json()["listJobsResponse"]
    assert empty == {"jobs": [], "total": 0}


async def test_list_models_pages(fake: FakeMediaX, http: httpx.AsyncClient) -> None:
    """ListModels honours offset and limit, and total counts every model."""
    for index in range(7):
        fake.add_model(f"model_{index}")
    names = []
    for offset in range(0, 9, 3):
        page = (await call(http, "ListModels", {"offset": offset, "limit": 3, "type": 2})).json()
        assert page["listModelsResponse"]["total"] == 7
        names += [model["name"] for model in page["listModelsResponse"]["models"]]
    assert names == [f"model_{index}" for index in range(7)]
    assert fake.models() == [
        {"name": name, "createdAt": "1700000000000"} for name in names
    ]  # fmt: skip


# -- bad requests ----------------------------------------------------------------------


def edit(
    change: Callable[[dict[str, Any]], Any], request: dict[str, Any] | None = None
) -> dict[str, Any]:
    if request is None:
        request = bgm_request()
    change(request)
    return request


def output(request: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = request["outputs"][0]
    return found


def descriptor(request: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = output(request)["smartContentDescriptor"]
    return found


def bgm(request: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = descriptor(request)["imageBgmGeneration"]
    return found


def singing(params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return job_request("singingCloning", params, **extra)


BAD_CREATE_JOBS = [
    ("missing-inputs", edit(lambda r: r.pop("inputs")), "MissingParameter", "inputs is required"),
    (
        "empty-outputs",
        edit(lambda r: r.update(outputs=[])),
        "InvalidParameter",
        "outputs must be a non-empty array",
    ),
    (
        "url-and-source",
        edit(lambda r: r["inputs"][0].update(source={"contentId": "r", "path": "/a"})),
        "InvalidParameter",
        "inputs[0] needs exactly one of url, source, sourceData",
    ),
    (
        "no-input-source",
        edit(lambda r: r["inputs"][0].pop("url")),
        "InvalidParameter",
        "inputs[0] needs exactly one of url, source, sourceData",
    ),
    (
        "source-without-path",
        edit(lambda r: r["inputs"].__setitem__(0, {"source": {"contentId": "r"}})),
        "MissingParameter",
        "inputs[0].source.path is required",
    ),
    (
        "source-data-for-images",
        edit(lambda r: r["inputs"].__setitem__(0, {"sourceData": "la la"})),
        "InvalidParameter",
        "inputs[0].sourceData is only accepted by singingCloning",
    ),
    (
        "source-data-too-long",
        {**singing({"type": 1}), "inputs": [{"sourceData": "x" * 513}]},
        "InvalidParameter",
        "inputs[0].sourceData must be at most 512 characters",
    ),
    (
        "two-capabilities",
        edit(lambda r: descriptor(r).update(musicSeperate={"method": 1})),
        "InvalidParameter",
        "outputs[0].smartContentDescriptor needs exactly one of imageBgmGeneration, "
        "musicComposerHumming, singingCloning, musicSeperate",
    ),
    (
        "correctly-spelt-separate",
        edit(lambda r: output(r).update(smartContentDescriptor={"musicSeparate": {"method": 1}})),
        "MissingParameter",
        "outputs[0].smartContentDescriptor needs exactly one of",
    ),
    (
        "song-quantity-zero",
        edit(lambda r: bgm(r).update(songQuantity=0)),
        "InvalidParameter",
        "outputs[0].smartContentDescriptor.imageBgmGeneration.songQuantity must be between 1 "
        "and 100",
    ),
    (
        "song-quantity-101",
        job_request("musicComposerHumming", {"songQuantity": 101}),
        "InvalidParameter",
        "musicComposerHumming.songQuantity must be between 1 and 100",
    ),
    (
        "song-quantity-bool",
        edit(lambda r: bgm(r).update(songQuantity=True)),
        "InvalidParameter",
        "songQuantity must be an integer",
    ),
    (
        "output-prefix-20",
        edit(lambda r: descriptor(r).update(outputPrefix="p" * 20)),
        "InvalidParameter",
        "outputs[0].smartContentDescriptor.outputPrefix must be shorter than 20 characters",
    ),
    (
        "custom-id-64",
        bgm_request(customId="c" * 64),
        "InvalidParameter",
        "customId must be shorter than 64 characters",
    ),
    (
        "model-name-dash",
        singing({"type": 2, "modelName": "my-voice"}),
        "InvalidParameter",
        "singingCloning.modelName must be 1 to 63 letters, digits or underscores",
    ),
    (
        "model-name-64",
        singing({"type": 2, "modelName": "m" * 64}),
        "InvalidParameter",
        "modelName must be 1 to 63 letters",
    ),
    (
        "training-without-name",
        singing({"type": 2}),
        "MissingParameter",
        "singingCloning.modelName is required",
    ),
    (
        "total-epoch-51",
        singing({"type": 2, "modelName": "v", "totalEpoch": 51}),
        "InvalidParameter",
        "totalEpoch must be between 1 and 50",
    ),
    (
        "singing-type-3",
        singing({"type": 3}),
        "InvalidParameter",
        "singingCloning.type must be one of 1, 2",
    ),
    (
        "unknown-generation-model",
        singing({"type": 1, "modelName": "nobody"}),
        "InvalidParameter",
        "singingCloning.modelName 'nobody' is not a model of this account",
    ),
    (
        "selector-out-of-range",
        edit(lambda r: output(r).update(inputSelectors=[0, 1])),
        "InvalidParameter",
        "outputs[0].inputSelectors[1] is 1, but there are 1 inputs",
    ),
    (
        "no-selectors",
        edit(lambda r: output(r).pop("inputSelectors")),
        "MissingParameter",
        "outputs[0].inputSelectors is required",
    ),
    (
        "warm-without-multitrack",
        edit(lambda r: bgm(r).update(emotion=10)),
        "InvalidParameter",
        "imageBgmGeneration.emotion 10 needs type 2",
    ),
    (
        "genre-with-multitrack",
        edit(lambda r: bgm(r).update(type=2, genre=1)),
        "InvalidParameter",
        "imageBgmGeneration.genre is not supported with type 2",
    ),
    (
        "emotion-12",
        edit(lambda r: bgm(r).update(emotion=12)),
        "InvalidParameter",
        "emotion must be one of 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11",
    ),
    (
        "missing-content-id",
        edit(lambda r: output(r).pop("contentId")),
        "MissingParameter",
        "outputs[0].contentId is required",
    ),
    (
        "generation-without-content-id",
        edit(lambda r: output(r).pop("contentId"), singing({"type": 1})),
        "MissingParameter",
        "outputs[0].contentId is required",
    ),
    (
        "separation-method-4",
        job_request("musicSeperate", {"method": 4}),
        "InvalidParameter",
        "musicSeperate.method must be one of 1, 2, 3",
    ),
    (
        "callback-not-http",
        bgm_request(callback="ftp://example.com/"),
        "InvalidParameter",
        "callback must be an http:// or https:// URL",
    ),
    ("timeout-zero", bgm_request(timeout=0), "InvalidParameter", "timeout must be at least 1"),
    ("request-not-object", [], "InvalidParameter", "createJobRequest must be an object"),
]


@pytest.mark.parametrize(
    ("request_body", "code", "message"),
    [pytest.param(body, code, message, id=name) for name, body, code, message in BAD_CREATE_JOBS],
)
async def test_bad_create_job_is_a_400_naming_the_field(
    fake: FakeMediaX, http: httpx.AsyncClient, request_body: Any, code: str, message: str
) -> None:
    """An invalid CreateJob is refused with 400, an error code and the offending field's path."""
    response = await call(http, "CreateJob", copy.deepcopy(request_body))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert message in error["message"]
    assert response.json()["requestId"]
    assert fake.jobs == []


async def test_training_needs_no_content_id_and_short_texts_are_fine(
    http: httpx.AsyncClient,
) -> None:
    """Training outputs may omit contentId; sourceData up to 512 characters is accepted."""
    await create(http, singing({"type": 2, "modelName": "voice"}))
    await create(http, {**singing({"type": 1}), "inputs": [{"sourceData": "x" * 512}]})


@pytest.mark.parametrize(
    ("action", "request_body", "message"),
    [
        ("GetJob", {}, "id is required"),
        ("GetJob", None, "getJobRequest is required"),
        ("ListJobs", {"customId": ""}, "customId is required"),
        ("ListModels", {"limit": 0, "type": 2}, "limit must be between 1 and 100"),
        ("ListModels", {"limit": 101, "type": 2}, "limit must be between 1 and 100"),
        ("ListModels", {"offset": -1, "type": 2}, "offset must be at least 0"),
        ("ListModels", {"limit": 10, "type": 1}, "type must be one of 2"),
        ("ListModels", {"limit": 10}, "type is required"),
    ],
)
async def test_bad_queries_are_400(
    http: httpx.AsyncClient, action: str, request_body: Any, message: str
) -> None:
    """GetJob, ListJobs and ListModels check their parameters too."""
    response = await call(http, action, request_body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


async def test_unknown_job_is_404(fake: FakeMediaX, http: httpx.AsyncClient) -> None:
    """GetJob of an id that does not exist, or belongs to another account, is a 404."""
    response = await call(http, "GetJob", {"id": "00000000-0000-4000-8000-000000000000"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "ResourceNotFound"
    job = await create(http, bgm_request())
    fake.add_account("other-id", "other-key")
    body = {
        "action": "GetJob",
        "secretId": "other-id",
        "secretKey": "other-key",
        "getJobRequest": {"id": job["id"]},
    }
    assert (await http.post("/job", json=body)).status_code == 404


@pytest.mark.parametrize(
    ("secret_id", "secret_key"),
    [
        pytest.param(DEFAULT_SECRET_ID, "wrong-key", id="wrong-key"),
        pytest.param("unknown-id", DEFAULT_SECRET_KEY, id="unknown-id"),
        pytest.param(None, DEFAULT_SECRET_KEY, id="missing-id"),
        pytest.param(DEFAULT_SECRET_ID, None, id="missing-key"),
    ],
)
async def test_bad_credentials_are_401_and_never_echoed(
    fake: FakeMediaX, http: httpx.AsyncClient, secret_id: str | None, secret_key: str | None
) -> None:
    """Wrong or missing credentials give 401 AuthFailure; no key shows in the answer or records."""
    body = {"action": "GetJob", "getJobRequest": {"id": "x"}}
    body |= {"secretId": secret_id} if secret_id else {}
    body |= {"secretKey": secret_key} if secret_key else {}
    response = await http.post("/job", json=body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthFailure"
    assert "key" not in response.text.lower().replace("secretkey", "")
    assert "secretKey" not in json.dumps(fake.requests[0].body)
    assert DEFAULT_SECRET_KEY not in repr(fake) + repr(fake.requests) + repr(fake.state)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/jobs", {"action": "GetJob"}, 404, "ResourceNotFound"),
        ("/music_model", {"action": "GetJob"}, 404, "ResourceNotFound"),
        ("/job", {"action": "ListModels"}, 404, "ResourceNotFound"),
        ("/job", {"action": "CancelJob"}, 400, "InvalidAction"),
        ("/job", {}, 400, "MissingParameter"),
        ("/job", [1, 2], 400, "InvalidParameter"),
    ],
)
async def test_wrong_paths_and_actions_are_refused(
    http: httpx.AsyncClient, path: str, body: Any, status: int, code: str
) -> None:
    """Unknown paths, actions sent to the wrong path and unknown actions get JSON errors."""
    if isinstance(body, dict):
        body |= {"secretId": DEFAULT_SECRET_ID, "secretKey": DEFAULT_SECRET_KEY}
    response = await http.post(path, json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_non_json_and_non_post_are_refused(http: httpx.AsyncClient) -> None:
    """A body that is not JSON is a 400; a GET is a 405."""
    response = await http.post("/job", content=b"{not json")
    assert response.status_code == 400
    assert (await http.get("/job")).status_code == 405


# -- recording and inspection ---------------------------------------------------------


async def test_requests_are_recorded_without_the_secret_key(
    fake: FakeMediaX, http: httpx.AsyncClient
) -> None:
    """Recorded bodies keep everything but secretKey; counts are kept per action."""
    await create(http, bgm_request())
    await call(http, "ListJobs", {"customId": "x"})
    await call(http, "ListJobs", {"customId": "y"})
    assert fake.request_counts == {"CreateJob": 1, "ListJobs": 2}
    first = fake.requests[0]
    assert first.action == "CreateJob"
    assert first.path == "/job"
    assert first.body == {
        "action": "CreateJob",
        "secretId": DEFAULT_SECRET_ID,
        "createJobRequest": bgm_request(),
    }


async def test_recording_can_be_turned_off() -> None:
    """With record_requests=False nothing is kept but the counts."""
    fake = FakeMediaX(clock=lambda: 0.0, record_requests=False)
    async with fake.http_client() as http:
        await create(http, bgm_request())
    assert fake.requests == []
    assert fake.request_counts["CreateJob"] == 1


async def test_jobs_inspection_returns_copies(fake: FakeMediaX, http: httpx.AsyncClient) -> None:
    """fake.jobs and fake.job(id) show the wire JSON; changing them changes nothing."""
    job = await create(http, bgm_request())
    assert fake.jobs == [job]
    fake.job(job["id"])["state"] = 99
    assert fake.job(job["id"]) == job
    with pytest.raises(KeyError):
        fake.job("nope")


async def test_force_state_is_seen_by_the_next_poll(
    fake: FakeMediaX, http: httpx.AsyncClient
) -> None:
    """force_state makes a job COMPLETED (with results), ERROR or CANCELED at once."""
    jobs = [await create(http, bgm_request()) for _ in range(3)]
    for job, state in zip(jobs, [State.COMPLETED, State.ERROR, State.CANCELED], strict=True):
        fake.force_state(job["id"], state)
        seen = await get(http, job["id"])
        assert seen["state"] == state
        assert ("smartContentResult" in seen["outputs"][0]) == (state == State.COMPLETED)


# -- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "content_type"),
    [
        (Fault.RATE_LIMITED, 429, "application/json"),
        (Fault.SERVER_ERROR, 500, "application/json"),
        (Fault.BAD_GATEWAY, 502, "text/html"),
        (Fault.UNAVAILABLE, 503, None),
    ],
)
async def test_gateway_faults_answer_without_processing(
    fake: FakeMediaX, http: httpx.AsyncClient, fault: Fault, status: int, content_type: str | None
) -> None:
    """429, 500, 502 and 503 faults come with their usual bodies, and no job is created."""
    fake.faults.retry_after = 7
    fake.faults.inject(fault, action="CreateJob")
    response = await call(http, "CreateJob", bgm_request())
    assert response.status_code == status
    assert response.headers.get("content-type") == content_type
    if status == 429:
        assert response.headers["retry-after"] == "7"
        assert response.json()["error"]["code"] == "RequestLimitExceeded"
    elif status == 500:
        assert response.json()["error"]["code"] == "InternalError"
    elif status == 502:
        assert response.text.startswith("<html>")
    else:
        assert response.content == b""
    assert fake.jobs == []
    assert fake.faults.counts == {("CreateJob", fault): 1}
    assert (await call(http, "CreateJob", bgm_request())).status_code == 200


async def test_drop_raises_remote_protocol_error_and_creates_nothing(
    fake: FakeMediaX, http: httpx.AsyncClient
) -> None:
    """A dropped connection raises httpx.RemoteProtocolError; the request was not processed."""
    fake.faults.inject(Fault.DROP, action="CreateJob")
    with pytest.raises(httpx.RemoteProtocolError):
        await call(http, "CreateJob", bgm_request())
    assert fake.jobs == []
    assert fake.request_counts["CreateJob"] == 1


async def test_answer_lost_creates_the_job_then_raises(
    fake: FakeMediaX, http: httpx.AsyncClient
) -> None:
    """'Created, answer lost': the job exists although the client got httpx.ReadError."""
    fake.faults.inject(Fault.ANSWER_LOST, action="CreateJob")
    with pytest.raises(httpx.ReadError):
        await call(http, "CreateJob", bgm_request(customId="lost"))
    listed = (await call(http, "ListJobs", {"customId": "lost"})).json()
    assert listed["listJobsResponse"]["total"] == 1


async def test_malformed_json_is_a_200_that_does_not_parse(
    fake: FakeMediaX, http: httpx.AsyncClient
) -> None:
    """A MALFORMED_JSON answer has status 200 and a cut-off body; the job was created."""
    fake.faults.inject(Fault.MALFORMED_JSON, action="CreateJob")
    response = await call(http, "CreateJob", bgm_request())
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert len(fake.jobs) == 1


async def test_scripted_faults_hit_only_the_next_requests_of_their_action(
    fake: FakeMediaX, http: httpx.AsyncClient
) -> None:
    """inject(fault, action='GetJob', times=2) fails the next two GetJobs and nothing else."""
    job = await create(http, bgm_request())
    fake.faults.inject(Fault.SERVER_ERROR, action="GetJob", times=2)
    assert (await call(http, "ListJobs", {"customId": "x"})).status_code == 200
    statuses = [(await call(http, "GetJob", {"id": job["id"]})).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert fake.faults.injected(action="GetJob", fault=Fault.SERVER_ERROR) == 2


async def test_random_fault_rates_are_counted(fake: FakeMediaX, http: httpx.AsyncClient) -> None:
    """Random faults at a rate per action happen about that often, and each one is counted."""
    job = await create(http, bgm_request())
    fake.faults.set_rate(Fault.DROP, 0.25, action="GetJob")
    fake.faults.set_rate(Fault.RATE_LIMITED, 0.25, action="GetJob")
    outcomes = {"drop": 0, 429: 0, 200: 0}
    for _ in range(400):
        try:
            response = await call(http, "GetJob", {"id": job["id"]})
        except httpx.RemoteProtocolError:
            outcomes["drop"] += 1
        else:
            outcomes[response.status_code] += 1
    assert outcomes["drop"] == fake.faults.counts["GetJob", Fault.DROP]
    assert outcomes[429] == fake.faults.counts["GetJob", Fault.RATE_LIMITED]
    assert outcomes["drop"] == pytest.approx(100, abs=30)
    assert outcomes[429] == pytest.approx(100, abs=30)
    fake.faults.clear()
    assert (await call(http, "GetJob", {"id": job["id"]})).status_code == 200
