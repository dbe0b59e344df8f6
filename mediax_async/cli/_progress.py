"""Live progress while jobs are watched: rich on a terminal, plain lines otherwise."""

from __future__ import annotations

import collections
import importlib
import time
from types import TracebackType
from typing import Any

from .._enums import State
from .._models import Job
from ._errors import describe, shorten
from ._output import Output

__all__ = ["JobProgress", "PlainProgress", "RichProgress", "make_progress"]

_MAX_ROWS = 24
"""Jobs shown one per row (fewer on a short terminal); the rest are counted in a last row."""
_LABEL_CHARS = 40
_BAR_WIDTH = 16


class JobProgress:
    """Shows jobs moving through their states; this base shows nothing (``--json``).

    Keys are job ids, or any unique text for a line that has no job.
    """

    def __init__(self, total: int = 0) -> None:
        self.total = total
        self.counts: collections.Counter[str] = collections.Counter()
        self._labels: dict[str, str] = {}

    def __enter__(self) -> JobProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def set_total(self, total: int) -> None:
        """How many jobs (or lines) there will be."""
        self.total = total

    def track(self, key: str, label: str, state: str) -> None:
        """Start showing ``key`` under ``label`` in ``state``."""
        self._labels[key] = label

    def update(self, key: str, state: str) -> None:
        """``key`` is now in ``state``."""

    def finish(self, key: str, state: str, detail: str = "") -> None:
        """``key`` ended in ``state`` (a job state, or ``FAILED`` for an error)."""
        self.counts[state] += 1

    def fail(self, key: str, label: str, message: str) -> None:
        """Something that never became a job (a bad batch line) failed."""
        self._labels[key] = label
        self.finish(key, "FAILED", message)

    def on_state_change(self, job: Job, old: State | None, new: State) -> None:
        """A waiter hook: a watched job moved."""
        if job.id in self._labels and not new.is_terminal:
            self.update(job.id, new.name)

    def on_settled(self, job_id: str, outcome: Job | BaseException) -> None:
        """A waiter hook: a watched job ended, or its wait failed."""
        if job_id not in self._labels:
            return
        if isinstance(outcome, Job):
            files = len(outcome.output_files())
            self.finish(job_id, outcome.state.name, f"{files} file(s)" if files else "")
        else:
            self.finish(job_id, "FAILED", describe(outcome))

    def summary(self) -> str:
        """How many ended in each state, e.g. ``3 completed, 1 error``."""
        done = ", ".join(f"{n} {state.lower()}" for state, n in sorted(self.counts.items()))
        return done or "0 done"


class PlainProgress(JobProgress):
    """One line per change, for logs and pipes."""

    def __init__(self, output: Output, total: int = 0) -> None:
        super().__init__(total)
        self._output = output
        self._started = time.monotonic()

    def _say(self, key: str, text: str) -> None:
        elapsed = time.monotonic() - self._started
        self._output.line(f"[{elapsed:6.1f}s] {self._labels.get(key, key)}: {text}")

    def track(self, key: str, label: str, state: str) -> None:
        """Start showing ``key``: one line."""
        super().track(key, label, state)
        self._say(key, state)

    def update(self, key: str, state: str) -> None:
        """One line for the new state."""
        self._say(key, state)

    def finish(self, key: str, state: str, detail: str = "") -> None:
        """One line for the end, with the count so far."""
        super().finish(key, state, detail)
        done = sum(self.counts.values())
        of = f"/{self.total}" if self.total else ""
        self._say(key, f"{state}{' (' + detail + ')' if detail else ''} [{done}{of} done]")


class _OverallBar:
    """A bar for the overall row only: a job's own row shows its state and elapsed time."""

    def __init__(self, bar: Any, text: Any) -> None:
        self._bar = bar
        self._text = text

    def get_table_column(self) -> Any:
        """The bar's table column (rich asks every column for one)."""
        return self._bar.get_table_column()

    def __call__(self, task: Any) -> Any:
        return self._bar(task) if task.fields.get("overall") else self._text("")


class RichProgress(JobProgress):
    """A live rich display: an overall bar and a row per job (state, elapsed time).

    When there are more jobs than rows, a last row says how many are not
    shown. Labels and messages are shortened in the middle, never folded
    mid-word. Notes and errors printed while it runs go through its console
    (``Output.live_console``), above the display.
    """

    def __init__(self, output: Output, total: int = 0) -> None:
        super().__init__(total)
        self._output = output
        progress = importlib.import_module("rich.progress")
        table = importlib.import_module("rich.table")
        self._text = importlib.import_module("rich.text").Text
        self._escape = importlib.import_module("rich.markup").escape

        def text_column(template: str) -> Any:
            column = table.Column(no_wrap=True, overflow="ellipsis")
            return progress.TextColumn(template, table_column=column)

        self._progress: Any = progress.Progress(
            progress.SpinnerColumn(finished_text="[bold]•"),
            text_column("{task.description}"),
            _OverallBar(progress.BarColumn(bar_width=_BAR_WIDTH), self._text),
            text_column("{task.fields[state]}"),
            progress.TimeElapsedColumn(),
            console=output.console,
        )
        self._overall = self._progress.add_task(
            "[bold]all jobs", total=total or None, state=self.summary(), overall=True
        )
        height = int(getattr(output.console, "height", 0) or 0)
        self._max_rows = max(1, min(_MAX_ROWS, height - 3)) if height else _MAX_ROWS
        # What a row's text may take so that a row never passes the terminal's width:
        # spinner, label, bar, state and time, with a space between columns.
        width = int(getattr(output.console, "width", 80) or 80)
        self._label_chars = max(12, min(_LABEL_CHARS, width // 3))
        self._detail_chars = max(12, width - self._label_chars - _BAR_WIDTH - 30)
        self._tasks: dict[str, Any] = {}
        self._hidden: set[str] = set()
        self._more: Any = None

    def set_total(self, total: int) -> None:
        """Size the overall bar."""
        super().set_total(total)
        self._progress.update(self._overall, total=total or None)

    def __enter__(self) -> RichProgress:
        self._progress.start()
        self._output.live_console = self._output.console
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._output.live_console = None
        self._progress.stop()

    def track(self, key: str, label: str, state: str) -> None:
        """Add a row for ``key``, or count it in the ``+N more`` row once the rows are full."""
        super().track(key, label, state)
        if key in self._tasks or key in self._hidden:
            return
        if len(self._tasks) < self._max_rows:
            self._tasks[key] = self._progress.add_task(
                self._escape(shorten(label, self._label_chars)), total=None, state=state
            )
            return
        self._hidden.add(key)
        self._show_more()

    def _show_more(self) -> None:
        text = f"[dim]+{len(self._hidden)} more[/]"
        if self._more is None:
            self._more = self._progress.add_task(text, total=None, start=False, state="")
        else:
            self._progress.update(self._more, description=text)

    def fail(self, key: str, label: str, message: str) -> None:
        """A finished row for something that never became a job."""
        self.track(key, label, "")
        self.finish(key, "FAILED", message)

    def update(self, key: str, state: str) -> None:
        """Show the new state in ``key``'s row."""
        task = self._tasks.get(key)
        if task is not None:
            self._progress.update(task, state=self._escape(state))

    def finish(self, key: str, state: str, detail: str = "") -> None:
        """Show how ``key`` ended, stop its clock, and advance the overall bar."""
        super().finish(key, state, detail)
        style = {"COMPLETED": "green", "ERROR": "red", "CANCELED": "yellow"}.get(state, "red")
        detail = shorten(detail, self._detail_chars)
        text = f"[{style}]{state}[/]{' ' + self._escape(detail) if detail else ''}"
        task = self._tasks.get(key)
        if task is not None:
            self._progress.update(task, total=1, completed=1, state=text)  # spinner: •
            self._progress.stop_task(task)
        self._progress.update(self._overall, advance=1, state=self.summary())


def make_progress(output: Output, total: int = 0) -> JobProgress:
    """The progress display that suits ``output``."""
    if output.json_mode:
        return JobProgress(total)
    if output.rich:
        return RichProgress(output, total)
    return PlainProgress(output, total)
