"""The integer enums of the MediaX wire protocol.

Every enum tolerates values this release does not know: ``State(6)`` gives a
pseudo-member named ``UNKNOWN_6`` whose value is still 6, so a new server
value parses, compares and is written back unchanged.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "BgmOutputType",
    "HummingOutputType",
    "MusicSeparateMethod",
    "MusicSeparateTone",
    "SingingCloningType",
    "SongEmotion",
    "SongGenre",
    "SongType",
    "State",
    "SwitchOption",
    "WireEnum",
]


class WireEnum(enum.IntEnum):
    """An ``IntEnum`` that keeps unknown wire values instead of failing."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        # A pseudo-member: an instance of the enum outside its declared members.
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        """Whether this value is one the vendor documents."""
        return self._name_ in type(self).__members__

    @classmethod
    def parse_name(cls, name: str) -> WireEnum:
        """Look a member up by name, case-insensitively (``"happy"`` -> ``HAPPY``)."""
        try:
            return cls.__members__[name.strip().upper().replace("-", "_")]
        except KeyError:
            choices = ", ".join(m.lower() for m in cls.__members__)
            raise ValueError(f"unknown {cls.__name__} {name!r} (choose from {choices})") from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name_}: {self._value_}>"


class State(WireEnum):
    """The state of a job."""

    SUBMITTED = 1
    PROCESSING = 2
    COMPLETED = 3
    ERROR = 4
    CANCELED = 5

    @property
    def is_terminal(self) -> bool:
        """Whether a job in this state will not change any more (unknown states are not)."""
        return self in _TERMINAL


_TERMINAL = frozenset({State.COMPLETED, State.ERROR, State.CANCELED})


class SongType(WireEnum):
    """Image to music: the kind of model that writes the song."""

    LARGE_MODEL = 1
    MULTITRACK = 2


class BgmOutputType(WireEnum):
    """Image to music: the output file type (MP3 is 1 here, unlike humming)."""

    MP3 = 1
    MP4 = 2


class SongEmotion(WireEnum):
    """Image to music: the mood of the song (WARM and ANGRY need MULTITRACK)."""

    HAPPY = 1
    SAD = 2
    ROMANTIC = 3
    QUIET = 4
    LAZY = 5
    EXCITING = 6
    MAGNIFICENT = 7
    FUNNY = 8
    FEAR = 9
    WARM = 10
    ANGRY = 11


class SongGenre(WireEnum):
    """Image to music: the genre of the song (not with MULTITRACK)."""

    POP = 1
    CLASSICAL = 2
    CHINA = 3
    SOFT = 4
    JAZZ = 5


class HummingOutputType(WireEnum):
    """Humming composition: the output file type (MP3 is 2 here, unlike image to music)."""

    MIDI = 1
    MP3 = 2


class SwitchOption(WireEnum):
    """An on/off switch as the wire spells it."""

    OFF = 1
    ON = 2


class SingingCloningType(WireEnum):
    """Singing cloning: generate audio with a model, or train a new model."""

    GENERATE_AUDIO = 1
    TRAIN_MODEL = 2


class MusicSeparateMethod(WireEnum):
    """Source separation: how many stems to produce."""

    TWO_STEMS = 1
    FOUR_STEMS = 2
    FIVE_STEMS = 3


class MusicSeparateTone(WireEnum):
    """Source separation: which stem a result file holds (OTHER is the accompaniment)."""

    VOCALS = 1
    DRUMS = 2
    BASS = 3
    PIANO = 4
    OTHER = 5
