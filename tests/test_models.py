"""The job tree: construction checks name the field; jobs know their state and their files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from seeds import PLACEHOLDERS, example

from mediax_async import (
    BgmOutputType,
    CreateJobRequest,
    HummingOutputType,
    ImageBgmGeneration,
    Input,
    Job,
    JobCanceledError,
    JobFailedError,
    MediaXError,
    MusicComposerHumming,
    MusicSeparate,
    MusicSeparateMethod,
    MusicSeparateTone,
    Output,
    OutputFile,
    RequestValidationError,
    SingingCloning,
    SingingCloningType,
    SmartContentDescriptor,
    SongEmotion,
    SongGenre,
    SongType,
    Source,
    State,
    SwitchOption,
    Timing,
    converter,
    humming_request,
    image_to_music_request,
    output_files,
    parse_job,
    separation_request,
    singing_request,
    singing_training_request,
)

URL = PLACEHOLDERS["url"]
REPO = PLACEHOLDERS["contentId"]


def descriptor(capability: Any = None) -> SmartContentDescriptor:
    return SmartContentDescriptor.of(
        capability or MusicSeparate(method=MusicSeparateMethod.TWO_STEMS)
    )


def request(*inputs: Input, capability: Any = None, selectors: Any = (0,)) -> CreateJobRequest:
    return CreateJobRequest(
        inputs=inputs or (Input(url=URL),),
        outputs=[
            Output(
                content_id=REPO,
                input_selectors=selectors,
                smart_content_descriptor=descriptor(capability),
            )
        ],
    )


def singing(**changes: Any) -> SingingCloning:
    options: dict[str, Any] = {"type": SingingCloningType.GENERATE_AUDIO, "model_name": "default"}
    options.update(changes)
    return SingingCloning(**options)


# -- construction checks ------------------------------------------------------------------

INVALID: list[Any] = [
    # exactly one of url / source / sourceData
    pytest.param(lambda: Input(), "input", id="input-none"),
    pytest.param(
        lambda: Input(url=URL, source=Source(content_id=REPO, path="/a")), "input", id="url+source"
    ),
    pytest.param(lambda: Input(url=URL, source_data="la la"), "input", id="url+sourceData"),
    pytest.param(lambda: Input(url=""), "url", id="url-empty"),
    pytest.param(lambda: Source(content_id="", path="/a"), "content_id", id="source-repo-empty"),
    # exactly one capability
    pytest.param(lambda: SmartContentDescriptor(), "smart_content_descriptor", id="no-capability"),
    pytest.param(
        lambda: SmartContentDescriptor(
            image_bgm_generation=ImageBgmGeneration(song_quantity=1),
            music_separate=MusicSeparate(method=MusicSeparateMethod.TWO_STEMS),
        ),
        "smart_content_descriptor",
        id="two-capabilities",
    ),
    # songQuantity 1..100
    pytest.param(lambda: ImageBgmGeneration(song_quantity=0), "song_quantity", id="image-q0"),
    pytest.param(lambda: ImageBgmGeneration(song_quantity=101), "song_quantity", id="image-q101"),
    pytest.param(lambda: MusicComposerHumming(song_quantity=0), "song_quantity", id="humming-q0"),
    pytest.param(
        lambda: MusicComposerHumming(song_quantity=101), "song_quantity", id="humming-q101"
    ),
    pytest.param(lambda: MusicComposerHumming(song_quantity=True), "song_quantity", id="q-bool"),
    pytest.param(
        lambda: image_to_music_request(URL, content_id=REPO, song_quantity=200),
        "song_quantity",
        id="builder-q200",
    ),
    # outputPrefix under 20, customId under 64
    pytest.param(
        lambda: SmartContentDescriptor(
            output_prefix="p" * 20, music_separate=MusicSeparate(method=MusicSeparateMethod(1))
        ),
        "output_prefix",
        id="prefix-20",
    ),
    pytest.param(
        lambda: humming_request(URL, content_id=REPO, output_prefix="x" * 25),
        "output_prefix",
        id="builder-prefix-25",
    ),
    pytest.param(
        lambda: separation_request(URL, content_id=REPO, custom_id="c" * 64),
        "custom_id",
        id="custom-id-64",
    ),
    # modelName pattern, totalEpoch <= 50 and only for training
    pytest.param(lambda: singing(model_name="my-model"), "model_name", id="model-dash"),
    pytest.param(lambda: singing(model_name="my model"), "model_name", id="model-space"),
    pytest.param(lambda: singing(model_name="模型"), "model_name", id="model-cjk"),
    pytest.param(lambda: singing(model_name=""), "model_name", id="model-empty"),
    pytest.param(lambda: singing(model_name="m" * 64), "model_name", id="model-64"),
    pytest.param(lambda: singing(model_name=None), "model_name", id="model-missing"),
    pytest.param(
        lambda: singing_training_request(URL, model_name="new voice"),
        "model_name",
        id="builder-model",
    ),
    pytest.param(
        lambda: singing(type=SingingCloningType.TRAIN_MODEL, total_epoch=51),
        "total_epoch",
        id="epoch-51",
    ),
    pytest.param(
        lambda: singing(type=SingingCloningType.TRAIN_MODEL, total_epoch=0),
        "total_epoch",
        id="epoch-0",
    ),
    pytest.param(lambda: singing(total_epoch=10), "total_epoch", id="epoch-when-generating"),
    pytest.param(
        lambda: singing_training_request(URL, model_name="v1", total_epoch=60),
        "total_epoch",
        id="builder-epoch-60",
    ),
    # sourceData: at most 512, singing cloning only
    pytest.param(lambda: Input(source_data="a" * 513), "source_data", id="source-data-513"),
    pytest.param(
        lambda: request(Input(source_data="la la la")),
        "inputs[0].source_data",
        id="source-data-not-singing",
    ),
    # inputSelectors index into inputs
    pytest.param(
        lambda: request(selectors=[1]), "outputs[0].input_selectors", id="selector-too-big"
    ),
    pytest.param(
        lambda: request(selectors=[-1]), "outputs[0].input_selectors", id="selector-negative"
    ),
    pytest.param(lambda: request(selectors=[]), "outputs[0].input_selectors", id="no-selector"),
    pytest.param(lambda: request(selectors=["0"]), "outputs[0].input_selectors", id="selector-str"),
    # WARM/ANGRY only with MULTITRACK; no genre with MULTITRACK
    pytest.param(
        lambda: ImageBgmGeneration(song_quantity=1, emotion=SongEmotion.WARM), "emotion", id="warm"
    ),
    pytest.param(
        lambda: ImageBgmGeneration(
            song_quantity=1, emotion=SongEmotion.ANGRY, type=SongType.LARGE_MODEL
        ),
        "emotion",
        id="angry-large-model",
    ),
    pytest.param(
        lambda: image_to_music_request(URL, content_id=REPO, emotion=SongEmotion.WARM),
        "emotion",
        id="builder-warm",
    ),
    pytest.param(
        lambda: ImageBgmGeneration(song_quantity=1, genre=SongGenre.JAZZ, type=SongType.MULTITRACK),
        "genre",
        id="genre-multitrack",
    ),
    # enums: documented members of the capability's own enum
    pytest.param(
        lambda: ImageBgmGeneration(song_quantity=1, output_type=3),  # type: ignore[arg-type]  # wrong on purpose
        "output_type",
        id="bgm-type-3",
    ),
    pytest.param(
        lambda: ImageBgmGeneration(
            song_quantity=1,
            output_type=HummingOutputType.MP3,  # type: ignore[arg-type]  # wrong on purpose
        ),
        "output_type",
        id="humming-enum-for-image",
    ),
    pytest.param(
        lambda: MusicComposerHumming(
            song_quantity=1,
            output_type=BgmOutputType.MP3,  # type: ignore[arg-type]  # wrong on purpose
        ),
        "output_type",
        id="image-enum-for-humming",
    ),
    pytest.param(lambda: MusicSeparate(method=4), "method", id="method-4"),  # type: ignore[arg-type]  # wrong on purpose
    pytest.param(lambda: MusicSeparate(method=MusicSeparateMethod(9)), "method", id="method-9"),
    # request as a whole
    pytest.param(
        lambda: CreateJobRequest(
            inputs=[], outputs=[Output(smart_content_descriptor=descriptor())]
        ),
        "inputs",
        id="no-inputs",
    ),
    pytest.param(
        lambda: CreateJobRequest(inputs=[Input(url=URL)], outputs=[]), "outputs", id="no-outputs"
    ),
    pytest.param(
        lambda: CreateJobRequest(
            inputs=[Input(url=URL)], outputs=[Output(smart_content_descriptor=descriptor())]
        ),
        "outputs[0].content_id",
        id="content-id-missing",
    ),
    pytest.param(
        lambda: separation_request(URL, content_id=REPO, timeout=0), "timeout", id="timeout-0"
    ),
    pytest.param(lambda: request().with_custom_id("c" * 70), "custom_id", id="with-custom-id-70"),
    *(
        pytest.param(
            lambda url=url: separation_request(URL, content_id=REPO, callback=url),
            "callback",
            id=f"callback-{name}",
        )
        for name, url in (
            ("ftp", "ftp://hooks.example.com/cb"),
            ("no-scheme", "hooks.example.com/cb"),
            ("no-host", "https://"),
            ("bad-port", "https://hooks.example.com:70000/cb"),
            ("space", "https://hooks.example.com/a b"),
            ("empty", ""),
        )
    ),
]


@pytest.mark.parametrize(("build", "field"), INVALID)
def test_invalid_requests_are_refused_naming_the_field(
    build: Callable[[], Any], field: str
) -> None:
    """A request the service would refuse raises RequestValidationError naming the field."""
    with pytest.raises(RequestValidationError) as info:
        build()
    error = info.value
    assert error.field == field
    assert str(error).startswith(f"{field}: ")
    assert error.message
    assert isinstance(error, ValueError)
    assert isinstance(error, MediaXError)


VALID: list[Any] = [
    pytest.param(lambda: Input(source=Source(content_id=REPO, path="/a.wav")), id="source"),
    pytest.param(lambda: Input(source_data="a" * 512), id="source-data-512"),
    pytest.param(lambda: ImageBgmGeneration(song_quantity=100), id="q100"),
    pytest.param(lambda: MusicComposerHumming(song_quantity=1), id="q1"),
    pytest.param(
        lambda: SmartContentDescriptor.of(
            MusicComposerHumming(song_quantity=1), output_prefix="p" * 19
        ),
        id="prefix-19",
    ),
    pytest.param(lambda: separation_request(URL, content_id=REPO, custom_id="c" * 63), id="cid-63"),
    pytest.param(lambda: singing(model_name="Voice_01"), id="model-ok"),
    pytest.param(lambda: singing(model_name="m" * 63), id="model-63"),
    pytest.param(
        lambda: singing(type=SingingCloningType.TRAIN_MODEL, total_epoch=50), id="epoch-50"
    ),
    pytest.param(
        lambda: ImageBgmGeneration(
            song_quantity=1, emotion=SongEmotion.WARM, type=SongType.MULTITRACK
        ),
        id="warm-multitrack",
    ),
    pytest.param(
        lambda: ImageBgmGeneration(
            song_quantity=1, emotion=SongEmotion.ANGRY, type=SongType.MULTITRACK
        ),
        id="angry-multitrack",
    ),
    pytest.param(
        lambda: ImageBgmGeneration(song_quantity=1, genre=SongGenre.POP, type=SongType.LARGE_MODEL),
        id="genre-large-model",
    ),
    pytest.param(
        lambda: singing_request(Input(source_data="la " * 100), content_id=REPO), id="lyrics"
    ),
    pytest.param(
        lambda: singing_training_request(
            [URL, Source(content_id=REPO, path="/b.wav")], model_name="v2", total_epoch=1
        ),
        id="training-two-recordings",
    ),
]


VALID += [
    pytest.param(
        lambda url=url: separation_request(URL, content_id=REPO, callback=url), id=f"callback-{n}"
    )
    for n, url in enumerate(
        ("https://hooks.example.com/callbacks/tok", "http://127.0.0.1:8080/cb", "http://[::1]:9/")
    )
]


@pytest.mark.parametrize("build", VALID)
def test_values_at_the_limits_are_accepted(build: Callable[[], Any]) -> None:
    """Values inside the documented limits build without error."""
    assert build() is not None


def test_builders_map_options_to_their_wire_values() -> None:
    """Builder options reach the wire as vendor numbers (MP3 is 1 for images, 2 for humming)."""
    image = image_to_music_request(
        Source(content_id=REPO, path="/cat.png"),
        content_id=REPO,
        song_quantity=3,
        output_type=BgmOutputType.MP3,
        emotion=SongEmotion.QUIET,
        genre=SongGenre.CHINA,
        song_type=SongType.LARGE_MODEL,
        timeout=600,
    )
    humming = humming_request(
        URL, content_id=REPO, use_sieve=False, output_type=HummingOutputType.MP3
    )
    singing_job = singing_request(URL, content_id=REPO, model_name="v1", use_separate=True)
    training = singing_training_request([URL, URL], model_name="v2", total_epoch=20)
    wire = [converter.unstructure(r) for r in (image, humming, singing_job, training)]

    def capability(body: dict[str, Any]) -> dict[str, Any]:
        (only,) = [v for k, v in body["outputs"][0]["smartContentDescriptor"].items()]
        return dict(only)

    assert wire[0]["inputs"] == [{"source": {"contentId": REPO, "path": "/cat.png"}}]
    assert wire[0]["timeout"] == 600
    assert capability(wire[0]) == {
        "songQuantity": 3,
        "outputType": 1,
        "emotion": 4,
        "genre": 3,
        "type": 1,
    }
    assert capability(wire[1]) == {"songQuantity": 1, "useSieve": 1, "outputType": 2}
    assert capability(wire[2]) == {"type": 1, "modelName": "v1", "useSeparate": 2}
    assert capability(wire[3]) == {"type": 2, "modelName": "v2", "totalEpoch": 20}
    assert wire[3]["outputs"][0]["inputSelectors"] == [0, 1]
    assert "contentId" not in wire[3]["outputs"][0]


# -- model behaviour ---------------------------------------------------------------------------


def test_models_are_frozen_and_keyword_only() -> None:
    """Models cannot be changed after building, and take keyword arguments only."""
    item = Input(url=URL)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        item.url = "other"  # type: ignore[misc]  # frozen: mypy and attrs both refuse it
    with pytest.raises(TypeError):
        Input(URL)  # type: ignore[call-arg,arg-type]  # positional on purpose


def test_input_from_value() -> None:
    """An input can be given as a URL, a Source or an Input."""
    source = Source(content_id=REPO, path="/a.wav")
    given = Input(source_data="words")
    assert Input.from_value(URL) == Input(url=URL)
    assert Input.from_value(source) == Input(source=source)
    assert Input.from_value(given) is given


@pytest.mark.parametrize(
    ("capability", "field", "key"),
    [
        (ImageBgmGeneration(song_quantity=1), "image_bgm_generation", "imageBgmGeneration"),
        (MusicComposerHumming(song_quantity=1), "music_composer_humming", "musicComposerHumming"),
        (
            SingingCloning(type=SingingCloningType.GENERATE_AUDIO, model_name="default"),
            "singing_cloning",
            "singingCloning",
        ),
        (MusicSeparate(method=MusicSeparateMethod.FIVE_STEMS), "music_separate", "musicSeperate"),
    ],
)
def test_descriptor_of_each_capability(capability: Any, field: str, key: str) -> None:
    """``SmartContentDescriptor.of`` files a capability under its own field and wire key."""
    assert key == capability.WIRE_KEY
    made = SmartContentDescriptor.of(capability, output_prefix="x")
    assert getattr(made, field) is capability
    assert made.capability is capability
    assert set(converter.unstructure(made)) == {"outputPrefix", key}


def test_descriptor_of_refuses_a_non_capability() -> None:
    """``SmartContentDescriptor.of`` refuses anything but a capability."""
    with pytest.raises(TypeError):
        SmartContentDescriptor.of("imageBgmGeneration")  # type: ignore[arg-type]  # wrong on purpose


def test_with_custom_id_returns_a_copy() -> None:
    """``with_custom_id`` leaves the request as it was."""
    original = request()
    renamed = original.with_custom_id("batch-7")
    assert original.custom_id is None
    assert renamed.custom_id == "batch-7"
    assert renamed.inputs == original.inputs


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        (State.SUBMITTED, False),
        (State.PROCESSING, False),
        (State.COMPLETED, True),
        (State.ERROR, True),
        (State.CANCELED, True),
        (State(6), False),
    ],
)
def test_terminal_states(state: State, terminal: bool) -> None:
    """COMPLETED, ERROR and CANCELED are terminal; the others, known or not, are not."""
    assert state.is_terminal is terminal
    assert Job(id="j", state=state).is_terminal is terminal


def test_raise_for_state() -> None:
    """``raise_for_state`` returns a completed job and raises for ERROR or CANCELED, keeping it."""
    done = Job(id="j", state=State.COMPLETED)
    assert done.raise_for_state() is done
    failed = Job(id="j", state=State.ERROR)
    with pytest.raises(JobFailedError) as info:
        failed.raise_for_state()
    assert info.value.job is failed
    assert "ERROR" in str(info.value)
    canceled = Job(id="j", state=State.CANCELED)
    with pytest.raises(JobCanceledError) as canceled_info:
        canceled.raise_for_state()
    assert canceled_info.value.job is canceled


def test_enum_names_parse_case_insensitively() -> None:
    """Enum names read from the command line or config parse case-insensitively."""
    assert SongEmotion.parse_name("happy") is SongEmotion.HAPPY
    assert MusicSeparateMethod.parse_name("four-stems") is MusicSeparateMethod.FOUR_STEMS
    assert SwitchOption.parse_name(" On ") is SwitchOption.ON
    with pytest.raises(ValueError, match="choose from"):
        SongGenre.parse_name("metal")


def test_unknown_enum_values_keep_their_value() -> None:
    """An unknown value is an enum instance with that value, named UNKNOWN_n."""
    tone = MusicSeparateTone(9)
    assert tone == 9
    assert tone.name == "UNKNOWN_9"
    assert not tone.is_known
    assert MusicSeparateTone.OTHER.is_known
    assert repr(tone) == "<MusicSeparateTone.UNKNOWN_9: 9>"


def test_timing_durations() -> None:
    """``queued`` and ``processing`` are known once the job has started and completed."""
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    timing = Timing(
        created_at=start,
        started_at=start + dt.timedelta(seconds=5),
        completed_at=start + dt.timedelta(seconds=65),
    )
    assert timing.queued == dt.timedelta(seconds=5)
    assert timing.processing == dt.timedelta(seconds=60)
    assert Timing(created_at=start).queued is None


@pytest.mark.parametrize(
    ("seed", "name", "kind"),
    [
        ("000", "GetJob response", "imageBgmGeneration"),
        ("001", "GetJob response", "musicComposerHumming"),
        ("002", "GetJob response (train)", "singingCloning"),
        ("004", "GetJob response", "musicSeperate"),
    ],
)
def test_job_kind_is_the_wire_key(seed: str, name: str, kind: str) -> None:
    """``Job.kind`` names the job's capability by its wire key."""
    job = parse_job(example(seed, name).payload["job"])
    assert job.kind == kind
    assert (
        repr(job)
        == f"Job(id={job.id!r}, state=COMPLETED, kind={kind!r}, custom_id={job.custom_id!r})"
    )


def test_trained_model_name() -> None:
    """A finished training names the new model; a generation does not."""
    trained = parse_job(example("002", "GetJob response (train)").payload["job"])
    sung = parse_job(example("002", "GetJob response (generate)").payload["job"])
    assert trained.trained_model_name == "demo"
    assert sung.trained_model_name is None


# -- output files --------------------------------------------------------------------------------

DESTINATION = PLACEHOLDERS["destination"]


@pytest.mark.parametrize(
    ("seed", "name", "expected"),
    [
        ("000", "GetJob response", [("song.mp3", "song", None)]),
        ("001", "GetJob response", [("xxx", "song", None)]),
        ("003", "GetJob response", [("xxx", "song", None)]),
        ("002", "GetJob response (generate)", [("out.mp3", "song", None)]),
        ("002", "GetJob response (train)", []),
        ("004", "GetJob response", [("xxx", "stem", MusicSeparateTone.VOCALS)]),
        ("000", "CreateJob response", []),
    ],
)
def test_output_files_of_every_capability(
    seed: str, name: str, expected: list[tuple[str, str, MusicSeparateTone | None]]
) -> None:
    """A finished job lists each file with its repository and its path under the destination."""
    job = parse_job(example(seed, name).payload["job"])
    files = job.output_files()
    assert files == output_files(job)
    assert [(f.name, f.kind, f.tone) for f in files] == expected
    for f in files:
        assert f.content_id == REPO
        assert f.path == f"{DESTINATION}/{f.name}"
        assert f.output_index == 0


def wire_output(result: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "inputSelectors": [0],
        "smartContentDescriptor": {"musicComposerHumming": {"songQuantity": 1}},
        "smartContentResult": result,
        **fields,
    }


def test_output_files_paths_default_to_the_root_and_join_cleanly() -> None:
    """Without a destination files are under ``/``; slashes are not doubled."""
    job = parse_job(
        {
            "id": "j",
            "state": 3,
            "outputs": [
                wire_output({"imageBgmGeneration": [{"songName": "a.mp3", "videoName": "a.mp4"}]}),
                wire_output(
                    {
                        "musicComposerHumming": [
                            {"outputFiles": [{"songName": "b.mp3", "midiName": "b.mid"}]}
                        ]
                    },
                    contentId="r2",
                    destination="/out/",
                ),
                wire_output(
                    {
                        "musicSeperate": [
                            {"tone": 1, "fileName": "/vocals.wav"},
                            {"tone": 4, "fileName": "piano.wav"},
                        ]
                    },
                    contentId="r3",
                    destination="stems",
                ),
            ],
        }
    )
    assert job.output_files() == [
        OutputFile(content_id=None, path="/a.mp3", name="a.mp3", kind="song", output_index=0),
        OutputFile(content_id=None, path="/a.mp4", name="a.mp4", kind="video", output_index=0),
        OutputFile(content_id="r2", path="/out/b.mp3", name="b.mp3", kind="song", output_index=1),
        OutputFile(content_id="r2", path="/out/b.mid", name="b.mid", kind="midi", output_index=1),
        OutputFile(
            content_id="r3",
            path="stems/vocals.wav",
            name="/vocals.wav",
            kind="stem",
            output_index=2,
            tone=MusicSeparateTone.VOCALS,
        ),
        OutputFile(
            content_id="r3",
            path="stems/piano.wav",
            name="piano.wav",
            kind="stem",
            output_index=2,
            tone=MusicSeparateTone.PIANO,
        ),
    ]
