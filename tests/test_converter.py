"""The converter: wire JSON to models and back, unchanged, whatever a newer server adds."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seeds import ScriptedService, SeedExample, client_for, example, examples

from mediax_async import (
    HummingOutputFile,
    ImageBgmGenerationResult,
    Job,
    MusicComposerHummingResult,
    MusicSeparateResult,
    MusicSeparateTone,
    ResponseError,
    SingingModel,
    SmartContentDescriptor,
    SmartContentResult,
    SongEmotion,
    State,
    Timing,
    _converter,
    converter,
    parse_job,
)
from mediax_async._converter import wire_name
from mediax_async._protocol import Answer, parse_job_answer
from mediax_async._redact import Redactor

UTC = dt.timezone.utc
JOB_EXAMPLES = examples("response", "GetJob") + examples("response", "CreateJob")


def ids(item: SeedExample) -> str:
    return item.id


def completed_job(
    result: dict[str, Any], descriptor: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A finished wire job with one output carrying ``result``."""
    return {
        "id": "job-1",
        "state": 3,
        "customId": "c-1",
        "inputs": [{"url": "https://cdn.example.com/a.wav"}],
        "outputs": [
            {
                "contentId": "repo",
                "destination": "/out",
                "inputSelectors": [0],
                "smartContentDescriptor": descriptor
                or {"musicComposerHumming": {"songQuantity": 2}},
                "smartContentResult": result,
            }
        ],
        "timing": {
            "createdAt": "1610513575000",
            "startedAt": "1610513575000",
            "completedAt": "1610513618000",
        },
    }


# -- parse_job ------------------------------------------------------------------------


@pytest.mark.parametrize("seed_example", JOB_EXAMPLES, ids=ids)
@pytest.mark.parametrize("form", ["mapping", "str", "bytes", "bytearray"])
def test_parse_job_round_trips_every_vendor_job(seed_example: SeedExample, form: str) -> None:
    """A job from a callback body or a store parses from bytes, str or a mapping and writes back."""
    wire = seed_example.payload["job"]
    text = json.dumps(wire, ensure_ascii=False)
    data: Any = {
        "mapping": wire,
        "str": text,
        "bytes": text.encode(),
        "bytearray": bytearray(text.encode()),
    }[form]
    job = parse_job(data)
    assert isinstance(job, Job)
    assert converter.unstructure(job) == wire
    assert json.loads(json.dumps(converter.unstructure(job))) == wire


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        "",
        "[]",
        b'"a job"',
        "42",
        [{"id": "j", "state": 1}],
        {"state": 3},
        {"id": "j"},
        {"id": "j", "state": "COMPLETED"},
        {"id": "j", "state": None},
        {"id": "j", "state": 3, "timing": {"createdAt": "yesterday"}},
        {"id": "j", "state": 3, "timing": {"createdAt": "99999999999999999999"}},
        {"id": "j", "state": 3, "outputs": "none"},
        {"id": "j", "state": 3, "inputs": [{"source": "not an object"}]},
        {"getJobResponse": {"job": {"id": "j", "state": 3}}},
    ],
    ids=repr,
)
def test_parse_job_raises_response_error_on_non_job_input(data: Any) -> None:
    """Data that is not a job raises ResponseError, never a raw cattrs, JSON or type error."""
    with pytest.raises(ResponseError, match="not a job"):
        parse_job(data)


def test_parse_job_does_not_apply_construction_checks() -> None:
    """Values this release would refuse to send (new limits, new capabilities) still parse."""
    wire = {
        "id": "j",
        "state": 2,
        "customId": "c" * 100,
        "inputs": [{"url": "u", "sourceData": "both"}, {}],
        "outputs": [
            {
                "inputSelectors": [7],
                "smartContentDescriptor": {
                    "outputPrefix": "p" * 40,
                    "imageBgmGeneration": {"songQuantity": 500, "emotion": 10, "genre": 1},
                    "singingCloning": {"type": 1, "modelName": "not-a-valid name"},
                },
            },
            {"inputSelectors": [0], "smartContentDescriptor": {"newCapability": {"x": 1}}},
        ],
    }
    job = parse_job(wire)
    assert converter.unstructure(job) == wire
    assert job.outputs[1].capability is None
    assert job.outputs[1].smart_content_descriptor.extra == {"newCapability": {"x": 1}}


def test_converter_structure_is_lenient_too() -> None:
    """``converter.structure`` parses server data without construction checks."""
    descriptor = converter.structure({"outputPrefix": "x" * 30}, SmartContentDescriptor)
    assert descriptor.capability is None
    assert converter.unstructure(descriptor) == {"outputPrefix": "x" * 30}


# -- results ----------------------------------------------------------------------------


def test_humming_result_as_one_object_round_trips() -> None:
    """The humming result as the examples show it (one object) parses and writes back as one."""
    result = {"musicComposerHumming": {"outputFiles": [{"songName": "a.mp3", "midiName": "a.mid"}]}}
    wire = completed_job(result)
    job = parse_job(wire)
    parsed = job.outputs[0].smart_content_result
    assert parsed is not None
    assert parsed.music_composer_humming == MusicComposerHummingResult(
        output_files=(HummingOutputFile(song_name="a.mp3", midi_name="a.mid"),)
    )
    assert parsed.humming_files == (HummingOutputFile(song_name="a.mp3", midi_name="a.mid"),)
    assert converter.unstructure(job) == wire


def test_humming_result_as_a_list_round_trips() -> None:
    """The humming result as the table documents it (an array) parses and writes back as one."""
    result = {
        "musicComposerHumming": [
            {"outputFiles": [{"songName": "a.mp3"}]},
            {"outputFiles": [{"songName": "b.mp3"}, {"midiName": "b.mid"}]},
        ]
    }
    wire = completed_job(result)
    job = parse_job(wire)
    parsed = job.outputs[0].smart_content_result
    assert parsed is not None
    assert isinstance(parsed.music_composer_humming, tuple)
    assert [f.song_name or f.midi_name for f in parsed.humming_files] == [
        "a.mp3",
        "b.mp3",
        "b.mid",
    ]
    assert converter.unstructure(job) == wire


def test_empty_result_lists_have_no_files() -> None:
    """A result with no humming files lists none."""
    assert SmartContentResult().humming_files == ()
    assert SmartContentResult(music_composer_humming=()).humming_files == ()


def test_image_separation_and_singing_results_parse() -> None:
    """Each capability's result parses into its own model."""
    wire = completed_job(
        {
            "imageBgmGeneration": [{"songName": "s.mp3", "videoName": "s.mp4"}],
            "musicSeperate": [{"tone": 1, "fileName": "v.wav"}, {"tone": 5, "fileName": "o.wav"}],
            "singingCloning": {"modelName": "demo", "songName": "x.mp3"},
        }
    )
    result = parse_job(wire).outputs[0].smart_content_result
    assert result is not None
    assert result.image_bgm_generation == (
        ImageBgmGenerationResult(song_name="s.mp3", video_name="s.mp4"),
    )
    assert result.music_separate == (
        MusicSeparateResult(tone=MusicSeparateTone.VOCALS, file_name="v.wav"),
        MusicSeparateResult(tone=MusicSeparateTone.OTHER, file_name="o.wav"),
    )
    assert result.singing_cloning is not None
    assert result.singing_cloning.model_name == "demo"


# -- forward compatibility ---------------------------------------------------------------


def test_unknown_keys_are_kept_at_every_level_and_written_back() -> None:
    """Keys a newer server adds survive a parse and are written back in place."""
    wire = completed_job(
        {
            "imageBgmGeneration": [{"songName": "s.mp3", "xDuration": 31}],
            "musicComposerHumming": {
                "outputFiles": [{"songName": "h.mp3", "xKey": "C"}],
                "xScore": 0.9,
            },
            "singingCloning": {"songName": "x.mp3", "xPitch": 2},
            "musicSeperate": [{"tone": 2, "fileName": "d.wav", "xLoud": -14}],
            "xNewResult": [1, 2],
        },
        descriptor={
            "outputPrefix": "p",
            "musicComposerHumming": {"songQuantity": 1, "xTempo": 120},
            "xFlag": True,
        },
    )
    wire["xRegion"] = "ap-guangzhou"
    wire["extra"] = {"a job key named like the Python field": 1}
    wire["inputs"] = [
        {"url": "u", "xHeaders": {"a": "b"}},
        {"source": {"contentId": "r", "path": "/p", "xVersion": 3}, "xKind": "cos"},
    ]
    wire["outputs"][0]["inputSelectors"] = [0, 1]
    wire["outputs"][0]["xPriority"] = "high"
    wire["timing"]["xQueuedAt"] = "1610513575001"
    job = parse_job(wire)
    assert job.extra == {"xRegion": "ap-guangzhou", "extra": wire["extra"]}
    assert job.inputs[1].source is not None
    assert job.inputs[1].source.extra == {"xVersion": 3}
    assert job.outputs[0].extra == {"xPriority": "high"}
    assert job.outputs[0].smart_content_descriptor.extra == {"xFlag": True}
    assert job.timing is not None
    assert job.timing.extra == {"xQueuedAt": "1610513575001"}
    result = job.outputs[0].smart_content_result
    assert result is not None
    assert result.extra == {"xNewResult": [1, 2]}
    assert result.humming_files[0].extra == {"xKey": "C"}
    assert converter.unstructure(job) == wire


def test_models_without_unknown_keys_write_no_extra() -> None:
    """A model parsed from known keys only has an empty ``extra``."""
    job = parse_job(example("000", "GetJob response").payload["job"])
    assert dict(job.extra) == {}
    assert "extra" not in converter.unstructure(job)


def test_unknown_state_parses_and_is_not_terminal() -> None:
    """A state this release does not know parses, keeps its value and is not terminal."""
    job = parse_job({"id": "j", "state": 6})
    assert job.state == 6
    assert isinstance(job.state, State)
    assert not job.state.is_known
    assert job.state.name == "UNKNOWN_6"
    assert not job.is_terminal
    assert not job.state.is_terminal
    assert converter.unstructure(job) == {"id": "j", "state": 6, "inputs": [], "outputs": []}
    assert "UNKNOWN_6" in repr(job)


def test_unknown_tone_and_emotion_parse_and_write_back() -> None:
    """Unknown enum values (tone 9, emotion 42) parse and write back as the same integers."""
    wire = completed_job(
        {"musicSeperate": [{"tone": 9, "fileName": "new-stem.wav"}]},
        descriptor={"imageBgmGeneration": {"songQuantity": 1, "emotion": 42}},
    )
    job = parse_job(wire)
    result = job.outputs[0].smart_content_result
    assert result is not None
    assert result.music_separate is not None
    tone = result.music_separate[0].tone
    assert tone == 9
    assert isinstance(tone, MusicSeparateTone)
    assert not tone.is_known
    capability = job.outputs[0].capability
    assert getattr(capability, "emotion", None) == 42
    assert isinstance(getattr(capability, "emotion", None), SongEmotion)
    assert converter.unstructure(job) == wire
    assert type(converter.unstructure(job)["state"]) is int


def test_enums_write_plain_integers() -> None:
    """Enum values are written as plain JSON integers."""
    wire = converter.unstructure(parse_job(example("004", "GetJob response").payload["job"]))
    output = wire["outputs"][0]
    assert type(wire["state"]) is int
    assert type(output["smartContentDescriptor"]["musicSeperate"]["method"]) is int
    assert type(output["smartContentResult"]["musicSeperate"][0]["tone"]) is int


def test_wire_names() -> None:
    """snake_case maps to camelCase, and ``music_separate`` to the vendor's misspelling."""
    assert wire_name("smart_content_descriptor") == "smartContentDescriptor"
    assert wire_name("id") == "id"
    assert wire_name("music_separate") == "musicSeperate"


# -- timing ---------------------------------------------------------------------------------


def test_timing_ms_strings_become_utc_datetimes() -> None:
    """Epoch-millisecond strings become timezone-aware UTC datetimes, exactly."""
    timing = converter.structure(
        {"createdAt": "1610513575000", "startedAt": "1610513575123", "completedAt": "0"}, Timing
    )
    assert timing.created_at == dt.datetime(2021, 1, 13, 4, 52, 55, tzinfo=UTC)
    assert timing.started_at == dt.datetime(2021, 1, 13, 4, 52, 55, 123000, tzinfo=UTC)
    assert timing.started_at is not None
    assert timing.started_at.utcoffset() == dt.timedelta(0)
    assert timing.completed_at is None
    assert timing.queued == dt.timedelta(milliseconds=123)
    assert timing.processing is None


def test_timing_zero_means_not_yet_and_writes_back_as_zero() -> None:
    """``"0"`` is None in Python and ``"0"`` again on the wire."""
    wire = {"createdAt": "1603432763000", "startedAt": "0", "completedAt": "0"}
    timing = converter.structure(wire, Timing)
    assert (timing.started_at, timing.completed_at) == (None, None)
    assert converter.unstructure(timing) == wire
    assert converter.unstructure(Timing()) == {
        "createdAt": "0",
        "startedAt": "0",
        "completedAt": "0",
    }


@pytest.mark.parametrize(
    "millis", ["1", "999", "1610513618000", "1610513618001", "253402300799999", "-86400001"]
)
def test_timing_round_trips_exactly(millis: str) -> None:
    """Every millisecond value writes back to the same string, with no float rounding."""
    timing = converter.structure(
        {"createdAt": millis, "startedAt": "0", "completedAt": "0"}, Timing
    )
    assert converter.unstructure(timing)["createdAt"] == millis


def test_timing_from_any_timezone_writes_utc_epoch_millis() -> None:
    """A datetime in another zone is written as the same instant's epoch milliseconds."""
    beijing = dt.timezone(dt.timedelta(hours=8))
    moment = dt.datetime(2021, 1, 13, 12, 52, 55, 7000, tzinfo=beijing)
    assert converter.unstructure(Timing(created_at=moment))["createdAt"] == "1610513575007"


def test_naive_datetime_is_refused_when_writing_timing() -> None:
    """A naive datetime cannot be written: its instant is unknown."""
    with pytest.raises(ValueError, match="timezone-aware"):
        converter.unstructure(Timing(created_at=dt.datetime(2021, 1, 1)))


def test_singing_model_created_at_is_a_datetime() -> None:
    """A singing model's creation time parses like job timing."""
    model = converter.structure({"name": "demo", "createdAt": "1610513575000"}, SingingModel)
    assert model.created_at == dt.datetime(2021, 1, 13, 4, 52, 55, tzinfo=UTC)
    assert converter.unstructure(model) == {"name": "demo", "createdAt": "1610513575000"}


# -- property: any job the server may send round-trips ---------------------------------------

_text = st.text(max_size=8)
_int = st.integers(min_value=-3, max_value=10**6)
_enum = st.integers(min_value=1, max_value=12)
_millis = st.one_of(
    st.just("0"),
    st.integers(min_value=-62135596800000, max_value=253402300799999)
    .filter(lambda n: n != 0)
    .map(str),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=4,
)
_unknown_key = st.one_of(
    st.from_regex(r"x[A-Z][A-Za-z0-9]{0,6}", fullmatch=True),
    st.sampled_from(["extra", "musicSeparate", "Timing", "ID"]),
)


def _open(
    required: dict[str, st.SearchStrategy[Any]],
    optional: dict[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with these keys, some optional, plus unknown keys with any JSON value."""
    known = st.fixed_dictionaries(required, optional=optional or {})
    unknown = st.dictionaries(_unknown_key, _json, max_size=2)
    return st.tuples(known, unknown).map(lambda pair: {**pair[0], **pair[1]})


_source = _open({"contentId": _text, "path": _text})
_input = st.one_of(_open({"url": _text}), _open({"source": _source}), _open({"sourceData": _text}))
_capabilities = {
    "imageBgmGeneration": _open(
        {"songQuantity": _int},
        {"outputType": _enum, "emotion": _enum, "genre": _enum, "type": _enum},
    ),
    "musicComposerHumming": _open({"songQuantity": _int}, {"useSieve": _enum, "outputType": _enum}),
    "singingCloning": _open(
        {"type": _enum}, {"modelName": _text, "totalEpoch": _int, "useSeparate": _enum}
    ),
    "musicSeperate": _open({"method": _enum}),
}
_descriptor = st.one_of(
    *(_open({key: params}, {"outputPrefix": _text}) for key, params in _capabilities.items())
)
_humming_result = _open(
    {"outputFiles": st.lists(_open({}, {"songName": _text, "midiName": _text}), max_size=2)}
)
_result = _open(
    {},
    {
        "imageBgmGeneration": st.lists(
            _open({}, {"songName": _text, "videoName": _text}), max_size=2
        ),
        "musicComposerHumming": _humming_result | st.lists(_humming_result, max_size=2),
        "singingCloning": _open({}, {"modelName": _text, "songName": _text}),
        "musicSeperate": st.lists(_open({"tone": _enum, "fileName": _text}), max_size=3),
    },
)
_output = _open(
    {"inputSelectors": st.lists(_int, max_size=3), "smartContentDescriptor": _descriptor},
    {"contentId": _text, "destination": _text, "smartContentResult": _result},
)
_timing = _open({"createdAt": _millis, "startedAt": _millis, "completedAt": _millis})
wire_jobs = _open(
    {
        "id": _text,
        "state": _enum,
        "inputs": st.lists(_input, max_size=3),
        "outputs": st.lists(_output, max_size=2),
    },
    {"customId": _text, "callback": _text, "timing": _timing, "timeout": _int},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire_jobs)
def test_any_wire_job_round_trips(wire: dict[str, Any]) -> None:
    """Whatever jobs the server sends, parsing and writing back gives the same JSON."""
    job = parse_job(wire)
    assert converter.unstructure(job) == wire
    assert parse_job(json.dumps(wire).encode()) == job


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire_jobs)
def test_the_fast_decoder_agrees_with_the_cattrs_path(wire: dict[str, Any]) -> None:
    """Plain dicts take the generated decoder, other mappings cattrs: both give the same job."""
    fast = parse_job(wire)
    slow = parse_job(MappingProxyType(wire))  # not a dict: the generated decoder steps aside
    assert fast == slow
    assert fast.extra == slow.extra
    assert converter.unstructure(fast) == converter.unstructure(slow) == wire


# -- the generated decoder: used, equal to cattrs, and falling back only for data ---------

SEED_JOBS = [
    pytest.param(job, id=f"{item.id} #{n}")
    for item in examples("response")
    for n, job in enumerate(item.jobs)
]


@contextmanager
def spying_on_the_job_decoder(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every call of the generated ``Job`` decoder, recorded while the block runs."""
    decode = _converter._decoders.decoder(Job)
    assert decode is not None, "Job has no generated decoder"
    calls: list[Any] = []

    def spy(data: Any) -> Any:
        calls.append(data)
        return decode(data)

    with monkeypatch.context() as patch:
        patch.setitem(_converter._decoders._decoders, Job, spy)
        yield calls


@pytest.mark.parametrize("wire", SEED_JOBS)
def test_every_seed_job_takes_the_fast_decoder_and_gives_what_cattrs_gives(
    wire: dict[str, Any],
) -> None:
    """The vendor's jobs are in the decoder's shape; it builds exactly cattrs' job."""
    decode = _converter._decoders.decoder(Job)
    assert decode is not None
    fast = decode(copy.deepcopy(wire))  # Mismatch here: the decoder refuses the vendor's shape
    with _converter.decoders_off():
        assert _converter._decoders.decoder(Job) is None
        slow = converter.structure(copy.deepcopy(wire), Job)
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert converter.unstructure(fast) == converter.unstructure(slow) == wire
    assert parse_job(wire) == slow


@pytest.mark.anyio
async def test_an_answer_is_parsed_by_the_fast_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GetJob answer, a callback body and a converter call all go through the decoder."""
    wire = example("004", "GetJob response").payload["job"]
    body = json.dumps({"requestId": "r", "getJobResponse": {"job": wire}}).encode()
    with spying_on_the_job_decoder(monkeypatch) as calls:
        job, _ = parse_job_answer("GetJob", Answer(200, {}, body), Redactor())
        assert len(calls) == 1
        assert parse_job(json.dumps(wire)) == job
        assert converter.structure(wire, Job) == job
        assert len(calls) == 3
    service = ScriptedService()
    service.add_job(wire)
    with spying_on_the_job_decoder(monkeypatch) as calls:
        async with client_for(service) as client:
            assert await client.get_job(wire["id"]) == job
        assert len(calls) == 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"state": "3"}, State.COMPLETED),  # a string to coerce
        ({"timing": {"createdAt": 1610513575000}}, State.COMPLETED),  # an int to coerce
    ],
)
def test_data_the_decoder_refuses_falls_back_to_cattrs(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], expected: State
) -> None:
    """A value the decoder does not take is coerced by cattrs, as it would be without it."""
    wire = {**example("004", "GetJob response").payload["job"], **change}
    with spying_on_the_job_decoder(monkeypatch) as calls:
        job = parse_job(wire)
    assert len(calls) == 1
    assert job.state is expected
    with _converter.decoders_off():
        assert converter.structure(wire, Job) == job


@pytest.mark.parametrize("error", [AttributeError, KeyError, NameError, IndexError, RuntimeError])
def test_a_decoder_that_breaks_is_not_hidden_by_the_fallback(
    monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    """Only data the decoder does not take falls back: a bug in it surfaces, it is not masked."""
    wire = example("004", "GetJob response").payload["job"]

    def broken(data: Any) -> Any:
        raise error("a bug in the generated code")

    monkeypatch.setitem(_converter._decoders._decoders, Job, broken)
    with pytest.raises(error):
        _converter.structure(wire, Job)
    with pytest.raises(error):
        converter.structure(wire, Job)
    with pytest.raises(ResponseError, match="a bug in the generated code"):
        parse_job(wire)
