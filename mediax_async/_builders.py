"""One request builder per kind of job, with keyword arguments. Pure: no I/O.

Each returns a checked ``CreateJobRequest``; ``MediaXClient.submit_*``
sends it. An input is a URL string, a ``Source`` (repository and path) or an
``Input``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._capabilities import ImageBgmGeneration, MusicComposerHumming, MusicSeparate, SingingCloning
from ._enums import (
    BgmOutputType,
    HummingOutputType,
    MusicSeparateMethod,
    SingingCloningType,
    SongEmotion,
    SongGenre,
    SongType,
    SwitchOption,
)
from ._models import Capability, CreateJobRequest, Input, Output, SmartContentDescriptor, Source

__all__ = [
    "InputLike",
    "humming_request",
    "image_to_music_request",
    "separation_request",
    "singing_request",
    "singing_training_request",
]

InputLike = str | Source | Input
"""A URL, a repository file, or an ``Input``."""


def _switch(value: bool | SwitchOption | None) -> SwitchOption | None:
    if value is None or isinstance(value, SwitchOption):
        return value
    return SwitchOption.ON if value else SwitchOption.OFF


def _request(
    inputs: Sequence[InputLike],
    capability: Capability,
    *,
    content_id: str | None,
    destination: str | None,
    output_prefix: str | None,
    custom_id: str | None,
    callback: str | None,
    timeout: int | None,
) -> CreateJobRequest:
    built = tuple(Input.from_value(item) for item in inputs)
    output = Output(
        content_id=content_id,
        destination=destination,
        input_selectors=tuple(range(len(built))),
        smart_content_descriptor=SmartContentDescriptor.of(capability, output_prefix=output_prefix),
    )
    return CreateJobRequest(
        custom_id=custom_id,
        callback=callback,
        inputs=built,
        outputs=(output,),
        timeout=timeout,
    )


def image_to_music_request(
    image: InputLike,
    *,
    content_id: str,
    destination: str | None = None,
    song_quantity: int = 1,
    output_type: BgmOutputType | None = None,
    emotion: SongEmotion | None = None,
    genre: SongGenre | None = None,
    song_type: SongType | None = None,
    output_prefix: str | None = None,
    custom_id: str | None = None,
    callback: str | None = None,
    timeout: int | None = None,
) -> CreateJobRequest:
    """Write ``song_quantity`` songs for an image (png, jpg, jpeg or webp)."""
    capability = ImageBgmGeneration(
        song_quantity=song_quantity,
        output_type=output_type,
        emotion=emotion,
        genre=genre,
        type=song_type,
    )
    return _request(
        [image],
        capability,
        content_id=content_id,
        destination=destination,
        output_prefix=output_prefix,
        custom_id=custom_id,
        callback=callback,
        timeout=timeout,
    )


def humming_request(
    humming: InputLike,
    *,
    content_id: str,
    destination: str | None = None,
    song_quantity: int = 1,
    use_sieve: bool | SwitchOption | None = None,
    output_type: HummingOutputType | None = None,
    output_prefix: str | None = None,
    custom_id: str | None = None,
    callback: str | None = None,
    timeout: int | None = None,
) -> CreateJobRequest:
    """Compose ``song_quantity`` songs from a hummed tune (wav recommended)."""
    capability = MusicComposerHumming(
        song_quantity=song_quantity, use_sieve=_switch(use_sieve), output_type=output_type
    )
    return _request(
        [humming],
        capability,
        content_id=content_id,
        destination=destination,
        output_prefix=output_prefix,
        custom_id=custom_id,
        callback=callback,
        timeout=timeout,
    )


def singing_request(
    song: InputLike,
    *,
    content_id: str,
    model_name: str = "default",
    use_separate: bool | SwitchOption | None = None,
    destination: str | None = None,
    output_prefix: str | None = None,
    custom_id: str | None = None,
    callback: str | None = None,
    timeout: int | None = None,
) -> CreateJobRequest:
    """Sing ``song`` with the voice ``model_name`` (``"default"`` or a trained model).

    ``use_separate`` first extracts the dry vocals from a mixed song.
    """
    capability = SingingCloning(
        type=SingingCloningType.GENERATE_AUDIO,
        model_name=model_name,
        use_separate=_switch(use_separate),
    )
    return _request(
        [song],
        capability,
        content_id=content_id,
        destination=destination,
        output_prefix=output_prefix,
        custom_id=custom_id,
        callback=callback,
        timeout=timeout,
    )


def singing_training_request(
    recordings: InputLike | Sequence[InputLike],
    *,
    model_name: str,
    total_epoch: int | None = None,
    use_separate: bool | SwitchOption | None = None,
    output_prefix: str | None = None,
    custom_id: str | None = None,
    callback: str | None = None,
    timeout: int | None = None,
) -> CreateJobRequest:
    """Train the new voice model ``model_name`` (unique) on one or more recordings."""
    capability = SingingCloning(
        type=SingingCloningType.TRAIN_MODEL,
        model_name=model_name,
        total_epoch=total_epoch,
        use_separate=_switch(use_separate),
    )
    inputs = [recordings] if isinstance(recordings, (str, Source, Input)) else list(recordings)
    return _request(
        inputs,
        capability,
        content_id=None,
        destination=None,
        output_prefix=output_prefix,
        custom_id=custom_id,
        callback=callback,
        timeout=timeout,
    )


def separation_request(
    song: InputLike,
    *,
    content_id: str,
    method: MusicSeparateMethod = MusicSeparateMethod.TWO_STEMS,
    destination: str | None = None,
    output_prefix: str | None = None,
    custom_id: str | None = None,
    callback: str | None = None,
    timeout: int | None = None,
) -> CreateJobRequest:
    """Split ``song`` into stems: 2 (vocals, accompaniment), 4 (+ drums, bass) or 5 (+ piano)."""
    return _request(
        [song],
        MusicSeparate(method=method),
        content_id=content_id,
        destination=destination,
        output_prefix=output_prefix,
        custom_id=custom_id,
        callback=callback,
        timeout=timeout,
    )
