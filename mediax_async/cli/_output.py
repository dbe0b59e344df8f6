"""Showing results: human text (rich on a terminal, plain otherwise) or JSON."""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from .._callbacks import redact_callback_url
from .._capabilities import ImageBgmGeneration, MusicComposerHumming, MusicSeparate, SingingCloning
from .._converter import unstructure
from .._enums import SingingCloningType, State
from .._models import Job
from .._redact import Redactor
from ._runtime import Runtime

__all__ = ["INSTALL_HINT", "Output", "kind_name", "load_rich"]

INSTALL_HINT = "pip install 'mediax-async[cli]'"


def load_rich() -> ModuleType | None:
    """The ``rich`` package, or None when the ``cli`` extra is not installed."""
    try:
        return importlib.import_module("rich")
    except ImportError:
        return None


def kind_name(job: Job) -> str:
    """A job's kind as the command line names it (``separation``, ``singing_training``, ...)."""
    capability = job.capability
    if isinstance(capability, ImageBgmGeneration):
        return "image_to_music"
    if isinstance(capability, MusicComposerHumming):
        return "humming"
    if isinstance(capability, SingingCloning):
        training = capability.type == SingingCloningType.TRAIN_MODEL
        return "singing_training" if training else "singing"
    if isinstance(capability, MusicSeparate):
        return "separation"
    return job.kind or "?"


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def job_files(job: Job) -> list[str]:
    """Each output file of a job as ``content_id:path`` (a trained model as ``model:NAME``)."""
    files = [f"{f.content_id or '-'}:{f.path}" for f in job.output_files()]
    if job.trained_model_name:
        files.append(f"model:{job.trained_model_name}")
    return files


def state_style(state: State | str) -> str:
    """The rich style of a state."""
    name = state.name if isinstance(state, State) else state
    return {"COMPLETED": "green", "ERROR": "red", "CANCELED": "yellow"}.get(name, "cyan")


class Output:
    """Everything a command shows, in the format the user asked for.

    JSON goes to stdout as one document; human text uses rich tables when
    stdout is a terminal and rich is installed, plain aligned text otherwise.
    Errors and notes go to stderr, with every known secret removed.
    """

    def __init__(self, runtime: Runtime, *, json_mode: bool, redactor: Redactor) -> None:
        self.runtime = runtime
        self.json_mode = json_mode
        self.redactor = redactor
        self.terminal = runtime.is_terminal
        self._rich = load_rich() if self.terminal and not json_mode else None
        self._console: Any = None

    @property
    def rich(self) -> bool:
        """Whether human output uses rich."""
        return self._rich is not None

    @property
    def console(self) -> Any:
        """A ``rich.console.Console`` on stdout (only when ``rich`` is true)."""
        if self._console is None:
            console_module = importlib.import_module("rich.console")
            self._console = console_module.Console(
                file=self.runtime.out, force_terminal=self.runtime.terminal or None
            )
        return self._console

    # -- plain building blocks ------------------------------------------------------

    def line(self, text: str = "") -> None:
        """One line of human text on stdout."""
        print(self.redactor(text), file=self.runtime.out, flush=True)

    def note(self, text: str) -> None:
        """One line of information on stderr."""
        print(f"mediax: {self.redactor(text)}", file=self.runtime.err, flush=True)

    def error(self, text: str) -> None:
        """One line saying what went wrong, on stderr."""
        print(f"mediax: error: {self.redactor(text)}", file=self.runtime.err, flush=True)

    def json(self, data: Any) -> None:
        """One JSON document on stdout."""
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        print(self.redactor(text), file=self.runtime.out, flush=True)

    def table(
        self, title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> None:
        """A table: rich on a terminal, aligned columns otherwise."""
        if self.rich:
            table_module = importlib.import_module("rich.table")
            table = table_module.Table(title=title, title_justify="left")
            last = len(headers) - 1
            for index, header in enumerate(headers):
                # Short columns stay on one line; the first and last (labels, files) fold.
                table.add_column(header, overflow="fold", no_wrap=0 < index < last)
            for row in rows:
                table.add_row(*(self._styled(cell) for cell in row))
            self.console.print(table)
            return
        if title:
            self.line(title)
        widths = [len(h) for h in headers]
        for row in rows:
            for index, cell in enumerate(row):
                first = cell.split("\n")[0] if cell else ""
                widths[index] = max(widths[index], len(first))
        self.line("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        for row in rows:
            cells = [cell.split("\n") for cell in row]
            for depth in range(max(len(c) for c in cells)):
                parts = [c[depth] if depth < len(c) else "" for c in cells]
                self.line(
                    "  ".join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()
                )

    def _styled(self, cell: str) -> Any:
        if cell in ("COMPLETED", "ERROR", "CANCELED", "SUBMITTED", "PROCESSING"):
            text_module = importlib.import_module("rich.text")
            return text_module.Text(cell, style=state_style(cell))
        return cell

    # -- jobs and models ------------------------------------------------------------

    def job(self, job: Job) -> None:
        """One job, in detail."""
        if self.json_mode:
            self.json(unstructure(job))
            return
        timing = job.timing
        rows = [
            ("id", job.id),
            ("kind", kind_name(job)),
            ("state", job.state.name),
            ("custom id", job.custom_id or "-"),
            ("created", _when(timing.created_at if timing else None)),
            ("started", _when(timing.started_at if timing else None)),
            ("completed", _when(timing.completed_at if timing else None)),
        ]
        if job.callback:
            rows.append(("callback", redact_callback_url(job.callback)))
        if job.timeout is not None:
            rows.append(("timeout", f"{job.timeout} s"))
        files = job_files(job)
        if files:
            rows.append(("files", "\n".join(files)))
        if self.rich:
            table_module = importlib.import_module("rich.table")
            table = table_module.Table(show_header=False, box=None)
            table.add_column(style="bold")
            table.add_column(overflow="fold")
            for name, value in rows:
                table.add_row(name, self._styled(value))
            self.console.print(table)
            return
        for name, value in rows:
            first, *rest = value.split("\n")
            self.line(f"{name:<10} {first}")
            for more in rest:
                self.line(f"{'':<10} {more}")

    def jobs(self, jobs: Sequence[Job], *, title: str | None = None) -> None:
        """Several jobs, one row each."""
        if self.json_mode:
            self.json({"jobs": [unstructure(job) for job in jobs]})
            return
        self.table(title, ["id", "kind", "state", "files"], [job_row(job) for job in jobs])


def job_row(job: Job) -> list[str]:
    """A job's row in a table: id, kind, state, files."""
    return [job.id, kind_name(job), job.state.name, "\n".join(job_files(job)) or "-"]
