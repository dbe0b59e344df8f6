"""Child processes for tests: always stopped, under a time bound, whatever the test does.

``child(argv)`` starts a process and, on leaving the block (an assertion
failed, the test was cancelled, or it simply ended), asks it to stop with
``stop_signal``, waits ``grace`` seconds, then kills it. Reads are bounded
too: ``Child.line`` fails after ``timeout`` seconds instead of hanging.
Nothing here sleeps: waits are on the child or on its pipes.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO

__all__ = ["SAFETY", "Child", "child", "mediax"]

SAFETY = 30.0
"""Seconds a child may take to answer before the test fails (never slept)."""


def mediax(*argv: str) -> list[str]:
    """The command line that runs ``mediax ARGV`` with this interpreter."""
    return [sys.executable, "-m", "mediax_async.cli", *argv]


class Child:
    """A running child with unbuffered pipes, read a line at a time under a deadline."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self._buffers: dict[str, bytes] = {"out": b"", "err": b""}

    def _pipe(self, name: str) -> IO[bytes]:
        pipe = self.process.stdout if name == "out" else self.process.stderr
        assert pipe is not None, f"std{name} is not a pipe"
        return pipe

    def line(self, name: str = "out", timeout: float = SAFETY) -> str:
        """The next line on stdout (``"out"``) or stderr (``"err"``); AssertionError if none."""
        pipe = self._pipe(name)
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(pipe, selectors.EVENT_READ)
            while b"\n" not in self._buffers[name]:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise AssertionError(f"the child wrote no line on std{name} in {timeout} s")
                chunk = os.read(pipe.fileno(), 65536)
                if not chunk:
                    raise AssertionError(f"std{name} ended: {self._buffers[name]!r}")
                self._buffers[name] += chunk
        line, _, self._buffers[name] = self._buffers[name].partition(b"\n")
        return line.decode()

    def finish(self, signum: int | None = None, timeout: float = SAFETY) -> tuple[int, str, str]:
        """Send ``signum`` (if any); the exit code and the rest of stdout and stderr.

        Raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds (leaving
        the ``child`` block then kills the process).
        """
        if signum is not None:
            self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=timeout)
        rest_out = self._buffers["out"] + (out or b"")
        rest_err = self._buffers["err"] + (err or b"")
        self._buffers = {"out": b"", "err": b""}
        return self.process.returncode, rest_out.decode(), rest_err.decode()


@contextmanager
def child(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdout: int = subprocess.PIPE,
    stderr: int = subprocess.PIPE,
    stop_signal: int = signal.SIGINT,
    grace: float = SAFETY,
) -> Iterator[Child]:
    """A child process, stopped on the way out (signal, ``grace`` seconds, then kill).

    A child that writes much and is not read should get a file for ``stdout``
    and ``stderr`` (a full pipe would block it).
    """
    process = subprocess.Popen(
        list(argv),
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        bufsize=0,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    try:
        yield Child(process)
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
        try:
            process.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=SAFETY)
