"""Showing results: human text (rich on a terminal, plain otherwise) or JSON."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TextIO

from .._callbacks import redact_callback_url
from .._enums import State
from .._models import Job
from .._redact import Redactor
from ._errors import shorten
from ._runtime import Runtime
from ._shapes import iso, job_files, job_json, kind_name

__all__ = [
    "INSTALL_HINT",
    "Output",
    "devnull_over",
    "job_files",
    "job_row",
    "kind_name",
    "load_rich",
    "when",
]

INSTALL_HINT = "pip install 'mediax-async[cli]'"

_FILE_COLUMN_MIN = 24
"""The narrowest a table's files column gets before the other columns give way."""


def load_rich() -> ModuleType | None:
    """The ``rich`` package, or None when the ``cli`` extra is not installed."""
    try:
        return importlib.import_module("rich")
    except ImportError:
        return None


def when(value: dt.datetime | None) -> str:
    """A date in a table: ISO 8601 with its time zone, or ``-``."""
    return iso(value) or "-"


def state_style(state: State | str) -> str:
    """The rich style of a state."""
    name = state.name if isinstance(state, State) else state
    return {"COMPLETED": "green", "ERROR": "red", "CANCELED": "yellow"}.get(name, "cyan")


def devnull_over(stream: TextIO) -> None:
    """Point a closed pipe's descriptor at /dev/null, so flushing at exit says nothing."""
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)


class Output:
    """Everything a command shows, in the format the user asked for.

    JSON goes to stdout as one document; human text uses rich tables when
    stdout is a terminal and rich is installed, plain aligned text otherwise.
    Errors and notes go to stderr, with every known secret removed; while a
    live display is drawn (``live_console``) and stderr is the same terminal,
    they are printed through it, above the display, so they do not tear it.

    A closed stdout (``mediax batch f | head -2``) is not an error: the first
    write that finds the pipe closed sets ``closed``, points the descriptor at
    /dev/null and calls ``on_closed`` (the command's cancel), and nothing more
    is written.
    """

    def __init__(self, runtime: Runtime, *, json_mode: bool, redactor: Redactor) -> None:
        self.runtime = runtime
        self.json_mode = json_mode
        self.redactor = redactor
        self.terminal = runtime.is_terminal
        self._rich = load_rich() if self.terminal and not json_mode else None
        self._console: Any = None
        self.live_console: Any = None
        """The console of the live display being drawn, if any."""
        self.closed = False
        """Whether stdout (or stderr) turned out to be a closed pipe."""
        self.on_closed: Callable[[], object] | None = None

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

    # -- writing ----------------------------------------------------------------------

    def _write(self, stream: TextIO, text: str) -> None:
        if self.closed:
            return
        try:
            print(text, file=stream, flush=True)
        except BrokenPipeError:
            self._pipe_closed(stream)

    def _print_rich(self, renderable: Any, console: Any = None) -> None:
        if self.closed:
            return
        try:
            (console or self.console).print(renderable)
        except BrokenPipeError:
            self._pipe_closed(self.runtime.out)

    def _pipe_closed(self, stream: TextIO) -> None:
        self.closed = True
        devnull_over(stream)
        if self.on_closed is not None:
            self.on_closed()

    def _stderr(self, text: str) -> None:
        text = self.redactor(text)
        live = self.live_console
        if live is not None and self.runtime.error_is_terminal:
            text_module = importlib.import_module("rich.text")
            self._print_rich(text_module.Text(text), live)
            return
        self._write(self.runtime.err, text)

    # -- plain building blocks ------------------------------------------------------

    def line(self, text: str = "") -> None:
        """One line of human text on stdout."""
        self._write(self.runtime.out, self.redactor(text))

    def message(self, level: str, text: str) -> None:
        """One ``mediax: LEVEL: text`` line on stderr (``note`` and ``error`` are two levels)."""
        self._stderr(f"mediax: {level}: {text}")

    def note(self, text: str) -> None:
        """One line of information on stderr."""
        self._stderr(f"mediax: {text}")

    def error(self, text: str) -> None:
        """One line saying what went wrong, on stderr."""
        self.message("error", text)

    def raw_error(self, text: str) -> None:
        """Text on stderr as it is (redacted): a traceback, a debug log record."""
        self._stderr(text.rstrip("\n"))

    def json(self, data: Any) -> None:
        """One JSON document on stdout."""
        text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        self._write(self.runtime.out, self.redactor(text))

    def json_line(self, data: Any) -> None:
        """One JSON document on one line of stdout (for a reader that reads lines as they come)."""
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
        self._write(self.runtime.out, self.redactor(text))

    def table(
        self,
        title: str | None,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        fit: int | None = None,
    ) -> None:
        """A table: rich on a terminal, aligned columns otherwise.

        Column ``fit`` holds paths (one per line): on a terminal each is
        shortened in the middle to the width left by the other columns, so no
        file name is ever broken across lines.
        """
        if self.rich:
            self._rich_table(title, headers, rows, fit)
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

    def _rich_table(
        self,
        title: str | None,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        fit: int | None,
    ) -> None:
        table_module = importlib.import_module("rich.table")
        table = table_module.Table(title=title, title_justify="left")
        widths = [
            max([len(header), *(len(line) for row in rows for line in row[index].split("\n"))])
            for index, header in enumerate(headers)
        ]
        room, folded, folded_width = 0, None, 0
        if fit is not None:
            # Every column but two keeps its natural width on one line: ``fit`` gets
            # what is left (its paths shortened in the middle to that), and when even
            # its minimum does not fit, the widest other column folds to make room.
            borders = 3 * len(headers) + 1
            others = sum(w for index, w in enumerate(widths) if index != fit)
            width = int(self.console.width)
            room = max(_FILE_COLUMN_MIN, width - others - borders)
            overflow = others + borders + room - width
            if overflow > 0:
                folded = max((i for i in range(len(headers)) if i != fit), key=widths.__getitem__)
                folded_width = max(8, widths[folded] - overflow)
        last = len(headers) - 1
        for index, header in enumerate(headers):
            if index == fit:
                table.add_column(header, no_wrap=True, overflow="ellipsis", width=room)
            elif index == folded:
                table.add_column(header, overflow="fold", max_width=folded_width)
            elif fit is not None:
                table.add_column(header, no_wrap=True)
            else:
                # Short columns stay on one line; the first and last (labels, messages) fold.
                table.add_column(header, overflow="fold", no_wrap=0 < index < last)
        for row in rows:
            cells = list(row)
            if fit is not None:
                cells[fit] = "\n".join(
                    shorten(line, room, head_share=1 / 3) for line in cells[fit].split("\n")
                )
            table.add_row(*(self._styled(cell) for cell in cells))
        self._print_rich(table)

    def _styled(self, cell: str) -> Any:
        text_module = importlib.import_module("rich.text")
        if cell in ("COMPLETED", "ERROR", "CANCELED", "SUBMITTED", "PROCESSING"):
            return text_module.Text(cell, style=state_style(cell))
        return text_module.Text(cell)  # never markup: file names may hold brackets

    # -- jobs and models ------------------------------------------------------------

    def job(self, job: Job) -> None:
        """One job, in detail."""
        if self.json_mode:
            self.json(job_json(job))
            return
        timing = job.timing
        rows = [
            ("id", job.id),
            ("kind", kind_name(job)),
            ("state", job.state.name),
            ("custom id", job.custom_id or "-"),
            ("created", when(timing.created_at if timing else None)),
            ("started", when(timing.started_at if timing else None)),
            ("completed", when(timing.completed_at if timing else None)),
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
            table.add_column(style="bold", no_wrap=True)
            table.add_column(no_wrap=True, overflow="ellipsis")
            # The names' column and the padding of both (box=None: one space each side).
            room = max(_FILE_COLUMN_MIN, int(self.console.width) - max(len(n) for n, _ in rows) - 5)
            for name, value in rows:
                value = "\n".join(shorten(v, room, head_share=1 / 3) for v in value.split("\n"))
                table.add_row(name, self._styled(value))
            self._print_rich(table)
            return
        for name, value in rows:
            first, *rest = value.split("\n")
            self.line(f"{name:<10} {first}")
            for more in rest:
                self.line(f"{'':<10} {more}")

    def jobs(self, jobs: Sequence[Job], *, title: str | None = None) -> None:
        """Several jobs, one row each."""
        if self.json_mode:
            self.json({"jobs": [job_json(job) for job in jobs]})
            return
        self.table(title, ["id", "kind", "state", "files"], [job_row(job) for job in jobs], fit=3)


def job_row(job: Job) -> list[str]:
    """A job's row in a table: id, kind, state, files."""
    return [job.id, kind_name(job), job.state.name, "\n".join(job_files(job)) or "-"]
