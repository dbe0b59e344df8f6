"""Where a finished job's files are: repository (``content_id``) and path.

The service reports bare file names; a file's path is the output's
``destination`` (default ``/``) joined with its name, inside the output's
repository. The vendor leaves that join to the user; this module does it
once, for every capability.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._enums import MusicSeparateTone

if TYPE_CHECKING:
    from ._models import Job, Output

__all__ = ["OutputFile", "output_files"]


@attrs.frozen(kw_only=True)
class OutputFile:
    """One file a job made.

    ``kind`` is ``"song"``, ``"video"``, ``"midi"`` or ``"stem"``; ``tone``
    says which stem a separation file holds.
    """

    content_id: str | None
    path: str
    name: str
    kind: str
    output_index: int
    tone: MusicSeparateTone | None = None


def join_destination(destination: str | None, name: str) -> str:
    """The storage path of ``name`` under ``destination`` (``/`` when unset)."""
    base = destination or "/"
    if not base.endswith("/"):
        base += "/"
    return base + name.lstrip("/")


def output_files(job: Job) -> list[OutputFile]:
    """Every file ``job`` made, output by output, in the order the service listed them.

    A job that has not COMPLETED has no files; a singing-model training makes
    a model, not a file (see ``Job.trained_model_name``).
    """
    files: list[OutputFile] = []
    for index, output in enumerate(job.outputs):
        files.extend(_files_of(index, output))
    return files


def _files_of(index: int, output: Output) -> list[OutputFile]:
    result = output.smart_content_result
    if result is None:
        return []
    named: list[tuple[str, str, MusicSeparateTone | None]] = []
    for song in result.image_bgm_generation or ():
        if song.song_name:
            named.append((song.song_name, "song", None))
        if song.video_name:
            named.append((song.video_name, "video", None))
    for hummed in result.humming_files:
        if hummed.song_name:
            named.append((hummed.song_name, "song", None))
        if hummed.midi_name:
            named.append((hummed.midi_name, "midi", None))
    if result.singing_cloning is not None and result.singing_cloning.song_name:
        named.append((result.singing_cloning.song_name, "song", None))
    for stem in result.music_separate or ():
        named.append((stem.file_name, "stem", stem.tone))
    return [
        OutputFile(
            content_id=output.content_id,
            path=join_destination(output.destination, name),
            name=name,
            kind=kind,
            output_index=index,
            tone=tone,
        )
        for name, kind, tone in named
    ]
