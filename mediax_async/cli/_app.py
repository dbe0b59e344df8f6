"""``main()``: parse the arguments, run the command, turn errors into exit codes."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TextIO, cast

import anyio

from .. import _constants as C
from .._exceptions import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    JobError,
    MediaXError,
    RequestValidationError,
)
from .._redact import Redactor
from ._batch_cmd import batch
from ._commands import Context, get, jobs, models, submit, wait
from ._demo import demo
from ._listen import callback_token, listen
from ._output import INSTALL_HINT, Output
from ._parser import (
    EXIT_CONFIG,
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_SERVICE,
    EXIT_USAGE,
    JOB_COMMANDS,
    build_parser,
)
from ._runtime import Runtime

__all__ = ["exit_code_for", "main"]

Command = Callable[[Context], Awaitable[int]]

_COMMANDS: dict[str, Command] = {
    **dict.fromkeys(JOB_COMMANDS, submit),
    "demo": demo,
    "get": get,
    "jobs": jobs,
    "models": models,
    "wait": wait,
    "batch": batch,
    "listen": listen,
}


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an error that ended a command."""
    if isinstance(exc, (ConfigurationError, AuthenticationError)):
        return EXIT_CONFIG
    if isinstance(exc, JobError):
        return EXIT_JOB_FAILED
    if isinstance(exc, (RequestValidationError, OSError, ValueError)):
        return EXIT_USAGE
    if isinstance(exc, MediaXError):
        return EXIT_SERVICE
    return EXIT_SERVICE


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RequestValidationError):
        return f"invalid request: {exc}"
    if isinstance(exc, AuthenticationError):
        return f"credentials rejected: {exc}"
    if isinstance(exc, APIError):
        return f"the service answered with an error: {exc}"
    if isinstance(exc, MediaXError):
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc) or type(exc).__name__


def _leaf(exc: BaseException) -> BaseException:
    """The one error inside nested single-error groups (task groups wrap what they raise)."""
    inner = getattr(exc, "exceptions", None)
    while isinstance(inner, tuple) and len(inner) == 1 and isinstance(inner[0], BaseException):
        exc = inner[0]
        inner = getattr(exc, "exceptions", None)
    return exc


@contextlib.contextmanager
def _streams(runtime: Runtime) -> Iterator[None]:
    """Point ``sys.stdout``/``sys.stderr`` at the runtime's (argparse writes to them)."""
    with contextlib.ExitStack() as stack:
        if runtime.stdout is not None:
            stack.enter_context(contextlib.redirect_stdout(runtime.stdout))
        if runtime.stderr is not None:
            stack.enter_context(contextlib.redirect_stderr(runtime.stderr))
        yield


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redactor(record.getMessage())
        record.args = None
        return True


def _debug_logging(stream: TextIO, redactor: Redactor) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.addFilter(_RedactingFilter(redactor))
    logger = logging.getLogger("mediax_async")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return handler


def main(argv: Sequence[str] | None = None, *, runtime: Runtime | None = None) -> int:
    """Run ``mediax`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    ``runtime`` replaces the outside world (the client factory, the poll
    policy, the streams); tests use it to reach the in-process fake service.
    """
    runtime = runtime or Runtime()
    with _streams(runtime):
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit:
            return exit.code if isinstance(exit.code, int) else EXIT_USAGE
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return _run(args, runtime)


def _run(args: argparse.Namespace, runtime: Runtime) -> int:
    debug = getattr(args, "debug", False)
    secrets = [
        os.environ.get(C.ENV_SECRET_KEY, ""),
        getattr(args, "secret_key", None) or "",
        callback_token(args) or "",
    ]
    redactor = Redactor(secrets)
    output = Output(runtime, json_mode=getattr(args, "json", False), redactor=redactor)
    handler = _debug_logging(runtime.err, redactor) if debug else None
    try:
        if args.command == "emulator":
            return _emulator(args, output)
        if output.terminal and not output.json_mode and not output.rich:
            output.note(f"plain output: rich is not installed ({INSTALL_HINT} for live progress)")
        context = Context(args, runtime, output)
        code: int = anyio.run(_COMMANDS[args.command], context, backend=runtime.backend)
        return code
    except BaseException as raised:
        exc = _leaf(raised)
        if isinstance(exc, KeyboardInterrupt):
            output.note("interrupted")
            return EXIT_INTERRUPTED
        if not isinstance(exc, Exception):
            raise
        output.error(_describe(exc))
        if debug:
            text = "".join(traceback.format_exception(exc))
            print(redactor(text), file=runtime.err, end="", flush=True)
        return exit_code_for(exc)
    finally:
        if handler is not None:
            logging.getLogger("mediax_async").removeHandler(handler)


def _emulator(args: argparse.Namespace, output: Output) -> int:
    """Serve the fake over HTTP until Ctrl-C (blocks); the base URL is printed first."""
    if importlib.util.find_spec("uvicorn") is None:
        raise ConfigurationError(f"`mediax emulator` needs uvicorn: {INSTALL_HINT}")
    from ..testing import run_emulator

    options: dict[str, Any] = {"speed": args.speed, "seed": args.seed}
    if args.secret_id:
        options["secret_id"] = args.secret_id
    if args.secret_key:
        options["secret_key"] = args.secret_key
    out = output.runtime.out
    if args.secret_key:
        out = cast(TextIO, _Redacted(out, output.redactor))
    run_emulator(args.host, args.port, out=out, **options)
    return EXIT_OK


class _Redacted:
    """A text stream that removes known secrets from what is written to it."""

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        return self._stream.write(self._redactor(text))

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
