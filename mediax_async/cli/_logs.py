"""The command line's own handler for the library's log records.

Without it, a WARNING from ``mediax_async`` reaches Python's last-resort
handler and shows up on stderr unprefixed, beside the command's own error
line. With it, each record is one ``mediax: warning: ...`` line (redacted,
long values shortened, through the live display when there is one), and an
error the command is about to report is not said twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from ._errors import describe, shorten_values, summary
from ._output import Output

__all__ = ["LOGGER_NAME", "CommandLogHandler", "command_logging"]

LOGGER_NAME = "mediax_async"


def _fingerprint(exc: BaseException) -> tuple[type[BaseException], str]:
    return type(exc), str(exc)


class CommandLogHandler(logging.Handler):
    """Shows ``mediax_async`` records as ``mediax:`` lines; ``--debug``: every level, in full."""

    def __init__(self, output: Output, *, debug: bool) -> None:
        super().__init__(logging.DEBUG if debug else logging.WARNING)
        self._output = output
        self._debug = debug
        self._shown: set[tuple[type[BaseException], str]] = set()
        if debug:
            self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))

    def already_shown(self, exc: BaseException) -> bool:
        """Whether a record already told the user of ``exc`` (or an error just like it)."""
        return _fingerprint(exc) in self._shown

    def emit(self, record: logging.LogRecord) -> None:
        """One line per record (``--debug``: the formatted record, traceback included)."""
        try:
            errors = [a for a in _args(record) if isinstance(a, BaseException)]
            if record.exc_info and record.exc_info[1] is not None:
                errors.append(record.exc_info[1])
            if self._debug:
                self._output.raw_error(self.format(record))
                return
            text = shorten_values(_message(record))
            if record.exc_info and record.exc_info[1] is not None:
                text += f": {describe(record.exc_info[1])}"
            level = "warning" if record.levelno < logging.ERROR else "error"
            self._output.message(level, text)
            self._shown.update(_fingerprint(exc) for exc in errors)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def _message(record: logging.LogRecord) -> str:
    """The record's message, with each exception argument in the command line's own words."""
    args = _args(record)
    if not args or not any(isinstance(a, BaseException) for a in args):
        return record.getMessage()
    shown = tuple(summary(a) if isinstance(a, BaseException) else a for a in args)
    try:
        return str(record.msg) % shown
    except (TypeError, ValueError):
        return record.getMessage()


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    if isinstance(record.args, tuple):
        return record.args
    return ()


@contextmanager
def command_logging(output: Output, *, debug: bool) -> Iterator[CommandLogHandler]:
    """Install the handler on the ``mediax_async`` loggers for one command."""
    logger = logging.getLogger(LOGGER_NAME)
    handler = CommandLogHandler(output, debug=debug)
    previous_level = logger.level
    logger.addHandler(handler)
    if debug:
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
