"""``main()``: parse the arguments, run the command, turn errors into exit codes."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

import anyio

from .. import _constants as C
from .._exceptions import ConfigurationError
from .._redact import Redactor
from ._batch_cmd import batch
from ._commands import Context, get, jobs, models, submit, wait
from ._demo import demo
from ._emulator import emulator_ready
from ._errors import describe, exit_code_for
from ._listen import callback_token, listen
from ._logs import command_logging
from ._output import INSTALL_HINT, Output, devnull_over
from ._parser import (
    EXIT_CLOSED_PIPE,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    JOB_COMMANDS,
    build_parser,
)
from ._runtime import Runtime
from ._signals import Termination, terminate_as_interrupt
from ._worker import status, worker

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
    "worker": worker,
    "status": status,
}


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


def main(argv: Sequence[str] | None = None, *, runtime: Runtime | None = None) -> int:
    """Run ``mediax`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    ``runtime`` replaces the outside world (the client factory, the poll
    policy, the streams); tests use it to reach the in-process fake service.
    """
    runtime = runtime or Runtime()
    try:
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
    except BrokenPipeError:  # e.g. `mediax --help | head -1`: the reader has gone, say nothing
        devnull_over(runtime.out)
        return EXIT_CLOSED_PIPE


async def _command(ctx: Context) -> int:
    """The command, cancelled when its output turns out to be a closed pipe."""
    with anyio.CancelScope() as scope:
        ctx.output.on_closed = scope.cancel
        return await _COMMANDS[ctx.args.command](ctx)
    return EXIT_CLOSED_PIPE


def _run(args: argparse.Namespace, runtime: Runtime) -> int:
    debug = getattr(args, "debug", False)
    secrets = [
        os.environ.get(C.ENV_SECRET_KEY, ""),
        getattr(args, "secret_key", None) or "",
        callback_token(args) or "",
    ]
    redactor = Redactor(secrets)
    output = Output(runtime, json_mode=getattr(args, "json", False), redactor=redactor)
    with (
        command_logging(output, debug=debug) as logs,
        terminate_as_interrupt() as termination,
    ):
        try:
            if args.command == "emulator":
                return _emulator(args, output, termination)
            if output.terminal and not output.json_mode and not output.rich:
                output.note(
                    f"plain output: rich is not installed ({INSTALL_HINT} for live progress)"
                )
            context = Context(args, runtime, output)
            code: int = anyio.run(
                _command,
                context,
                backend=runtime.backend,
                backend_options=dict(runtime.backend_options) or None,
            )
            return EXIT_CLOSED_PIPE if output.closed else code
        except BaseException as raised:
            exc = _leaf(raised)
            if output.closed or isinstance(exc, BrokenPipeError):
                devnull_over(runtime.out)
                return EXIT_CLOSED_PIPE
            if isinstance(exc, KeyboardInterrupt):
                return _interrupted(output, termination)
            if not isinstance(exc, Exception):
                raise
            if not logs.already_shown(exc):
                output.error(describe(exc))
            if debug:
                output.raw_error("".join(traceback.format_exception(exc)))
            return exit_code_for(exc)


def _interrupted(output: Output, termination: Termination) -> int:
    if termination.received:
        output.note("terminated (SIGTERM)")
        return EXIT_TERMINATED
    output.note("interrupted")
    return EXIT_INTERRUPTED


def _emulator(args: argparse.Namespace, output: Output, termination: Termination) -> int:
    """Serve the fake over HTTP until Ctrl-C or SIGTERM (blocks); how to reach it comes first."""
    if importlib.util.find_spec("uvicorn") is None:
        raise ConfigurationError(f"`mediax emulator` needs uvicorn: {INSTALL_HINT}")
    from ..testing import run_emulator

    options: dict[str, Any] = {"speed": args.speed, "seed": args.seed}
    if args.secret_id:
        options["secret_id"] = args.secret_id
    if args.secret_key:
        options["secret_key"] = args.secret_key
    run_emulator(
        args.host,
        args.port,
        on_ready=emulator_ready(output, key_given=bool(args.secret_key)),
        **options,
    )
    # run_emulator returns once interrupted (it serves until then).
    return _interrupted(output, termination)
