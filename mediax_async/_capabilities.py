"""The four capabilities: their parameters and their results.

Each parameter class names its wire key in ``WIRE_KEY``; the descriptor holds
exactly one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from ._enums import (
    BgmOutputType,
    HummingOutputType,
    MusicSeparateMethod,
    MusicSeparateTone,
    SingingCloningType,
    SongEmotion,
    SongGenre,
    SongType,
    SwitchOption,
)
from ._validation import (
    checked,
    enum_member,
    fail,
    int_range,
    is_lenient,
    model_name,
)

__all__ = [
    "HummingOutputFile",
    "ImageBgmGeneration",
    "ImageBgmGenerationResult",
    "MusicComposerHumming",
    "MusicComposerHummingResult",
    "MusicSeparate",
    "MusicSeparateResult",
    "SingingCloning",
    "SingingCloningResult",
    "WireModel",
]

NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
"""The shared, empty ``extra`` of a model with no unknown keys (one per model would cost memory)."""

_SONG_QUANTITY = checked(int_range(1, 100))
_MULTITRACK_ONLY_EMOTIONS = frozenset({SongEmotion.WARM, SongEmotion.ANGRY})


@attrs.frozen(kw_only=True)
class WireModel:
    """Base of every model: ``extra`` keeps the keys of an answer this release does not know.

    They are written back unchanged when the model is unstructured, so a
    newer server's fields survive a parse and a store.
    """

    extra: Mapping[str, Any] = attrs.field(default=NO_EXTRA, repr=False, hash=False)


@attrs.frozen(kw_only=True)
class ImageBgmGeneration(WireModel):
    """Image to music: write ``song_quantity`` songs for an image."""

    WIRE_KEY: ClassVar[str] = "imageBgmGeneration"

    song_quantity: int = attrs.field(validator=_SONG_QUANTITY)
    output_type: BgmOutputType | None = attrs.field(
        default=None, validator=checked(enum_member(BgmOutputType))
    )
    emotion: SongEmotion | None = attrs.field(
        default=None, validator=checked(enum_member(SongEmotion))
    )
    genre: SongGenre | None = attrs.field(default=None, validator=checked(enum_member(SongGenre)))
    type: SongType | None = attrs.field(default=None, validator=checked(enum_member(SongType)))

    def __attrs_post_init__(self) -> None:
        if is_lenient():
            return
        multitrack = self.type == SongType.MULTITRACK
        if self.emotion in _MULTITRACK_ONLY_EMOTIONS and not multitrack:
            raise fail(
                "emotion",
                f"{SongEmotion(self.emotion).name} needs type=SongType.MULTITRACK",
            )
        if self.genre is not None and multitrack:
            raise fail("genre", "is not supported with type=SongType.MULTITRACK")


@attrs.frozen(kw_only=True)
class MusicComposerHumming(WireModel):
    """Humming composition: write ``song_quantity`` songs from a hummed tune."""

    WIRE_KEY: ClassVar[str] = "musicComposerHumming"

    song_quantity: int = attrs.field(validator=_SONG_QUANTITY)
    use_sieve: SwitchOption | None = attrs.field(
        default=None, validator=checked(enum_member(SwitchOption))
    )
    output_type: HummingOutputType | None = attrs.field(
        default=None, validator=checked(enum_member(HummingOutputType))
    )


@attrs.frozen(kw_only=True)
class SingingCloning(WireModel):
    """Singing cloning: sing with a voice model (``GENERATE_AUDIO``) or train one (``TRAIN_MODEL``).

    For training, ``model_name`` names the new model; for generation, the
    model to sing with (``"default"`` or a trained one).
    """

    WIRE_KEY: ClassVar[str] = "singingCloning"

    type: SingingCloningType = attrs.field(validator=checked(enum_member(SingingCloningType)))
    model_name: str | None = attrs.field(default=None, validator=checked(model_name))
    total_epoch: int | None = attrs.field(default=None, validator=checked(int_range(1, 50)))
    use_separate: SwitchOption | None = attrs.field(
        default=None, validator=checked(enum_member(SwitchOption))
    )

    def __attrs_post_init__(self) -> None:
        if is_lenient():
            return
        if self.model_name is None:
            raise fail("model_name", "is required (the model to use, or the model to train)")
        if self.total_epoch is not None and self.type != SingingCloningType.TRAIN_MODEL:
            raise fail("total_epoch", "is only for type=SingingCloningType.TRAIN_MODEL")


@attrs.frozen(kw_only=True)
class MusicSeparate(WireModel):
    """Source separation: split a song into 2, 4 or 5 stems. Wire key ``musicSeperate`` (sic)."""

    WIRE_KEY: ClassVar[str] = "musicSeperate"

    method: MusicSeparateMethod = attrs.field(validator=checked(enum_member(MusicSeparateMethod)))


@attrs.frozen(kw_only=True)
class ImageBgmGenerationResult(WireModel):
    """One song written for an image: the song file and, for MP4 output, the video file."""

    song_name: str | None = None
    video_name: str | None = None


@attrs.frozen(kw_only=True)
class HummingOutputFile(WireModel):
    """One song composed from humming: the audio file and/or the MIDI file."""

    song_name: str | None = None
    midi_name: str | None = None


@attrs.frozen(kw_only=True)
class MusicComposerHummingResult(WireModel):
    """The files composed from humming."""

    output_files: tuple[HummingOutputFile, ...] = ()


@attrs.frozen(kw_only=True)
class SingingCloningResult(WireModel):
    """The trained model's name (training) or the sung file (generation)."""

    model_name: str | None = None
    song_name: str | None = None


@attrs.frozen(kw_only=True)
class MusicSeparateResult(WireModel):
    """One separated stem: which one (``tone``) and its file."""

    tone: MusicSeparateTone
    file_name: str
