"""A benchmark's server in a child process: started, its first line read, always stopped."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def child_server(command: list[str], what: str) -> Iterator[tuple[subprocess.Popen[str], Any]]:
    """Run ``command``; yield the child and the JSON of its first line (where it listens).

    The child is told to stop by closing its stdin when the block ends, and is
    killed if it lingers past 10 s.
    """
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the {what} did not start (exit code {child.wait()})")
        yield child, json.loads(line)
    finally:
        with contextlib.suppress(BrokenPipeError):
            child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
