"""The ``smartContentResult`` of a finished output, in the shapes the vendor documents.

File names start with the output's ``outputPrefix`` when it has one, else with
the job id, so names of different jobs do not collide.
"""

from __future__ import annotations

from typing import Any, Final

from .._enums import (
    BgmOutputType,
    HummingOutputType,
    MusicSeparateMethod,
    MusicSeparateTone,
    SingingCloningType,
)
from ._wire import HUMMING, IMAGE_BGM, SINGING, capability_of

__all__ = ["STEMS", "smart_content_result"]

#: The stems each separation method writes; OTHER is the accompaniment.
STEMS: Final = {
    MusicSeparateMethod.TWO_STEMS: (MusicSeparateTone.VOCALS, MusicSeparateTone.OTHER),
    MusicSeparateMethod.FOUR_STEMS: (
        MusicSeparateTone.VOCALS,
        MusicSeparateTone.DRUMS,
        MusicSeparateTone.BASS,
        MusicSeparateTone.OTHER,
    ),
    MusicSeparateMethod.FIVE_STEMS: (
        MusicSeparateTone.VOCALS,
        MusicSeparateTone.DRUMS,
        MusicSeparateTone.BASS,
        MusicSeparateTone.PIANO,
        MusicSeparateTone.OTHER,
    ),
}


def smart_content_result(output: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Build the ``smartContentResult`` of a COMPLETED job's (validated) output."""
    descriptor = output["smartContentDescriptor"]
    stem = descriptor.get("outputPrefix") or job_id
    capability = capability_of(descriptor)
    params = descriptor[capability]
    if capability == IMAGE_BGM:
        result: Any = _image_bgm(params, stem)
    elif capability == HUMMING:
        result = _humming(params, stem)
    elif capability == SINGING:
        result = _singing(params, stem)
    else:
        result = _separate(params, stem)
    return {capability: result}


def _image_bgm(params: dict[str, Any], stem: str) -> list[dict[str, str]]:
    with_video = params.get("outputType") == BgmOutputType.MP4
    songs = []
    for number in range(1, params["songQuantity"] + 1):
        song = {"songName": f"{stem}_{number}.mp3"}
        if with_video:
            song["videoName"] = f"{stem}_{number}.mp4"
        songs.append(song)
    return songs


def _humming(params: dict[str, Any], stem: str) -> dict[str, list[dict[str, str]]]:
    # MP3 is the default, and MP3 is 2 here (1 in image to music).
    midi = params.get("outputType") == HummingOutputType.MIDI
    key, extension = ("midiName", "mid") if midi else ("songName", "mp3")
    files = [{key: f"{stem}_{n}.{extension}"} for n in range(1, params["songQuantity"] + 1)]
    return {"outputFiles": files}


def _singing(params: dict[str, Any], stem: str) -> dict[str, str]:
    if params["type"] == SingingCloningType.TRAIN_MODEL:
        return {"modelName": params["modelName"]}
    return {"songName": f"{stem}.mp3"}


def _separate(params: dict[str, Any], stem: str) -> list[dict[str, Any]]:
    tones = STEMS[MusicSeparateMethod(params["method"])]
    return [{"tone": int(tone), "fileName": f"{stem}_{tone.name.lower()}.wav"} for tone in tones]
