"""A real ``redis-server`` for tests: 127.0.0.1, a free port, a temporary directory, stopped by pid.

``RedisServer(directory)`` starts one (``--appendonly yes`` when asked) and
waits, under a time bound, until it answers PING; leaving the block stops
it (SIGTERM, then SIGKILL after a grace) and waits for it. ``restart()``
stops it and starts it again on the same port and directory (the
append-only file, if on, brings its data back).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

__all__ = ["RedisServer", "redis_server_available"]

START_BOUND = 20.0
"""Seconds a redis-server may take to answer after it starts."""


def redis_server_available() -> bool:
    """Whether ``redis-server`` is on the PATH."""
    return shutil.which("redis-server") is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server child process on 127.0.0.1."""

    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING (AssertionError after a bound)."""
        if not redis_server_available():
            raise AssertionError("redis-server is not installed (.ci/run installs it)")
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            "redis-server",
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--protected-mode", "no",
        ]  # fmt: skip
        log = os.open(self.directory / "redis.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        finally:
            os.close(log)
        deadline = time.monotonic() + START_BOUND
        while not _answers_ping(self.port):
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"redis-server did not answer in {START_BOUND} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server by its pid: SIGTERM, then SIGKILL after 10 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Stop the server and start it again on the same port and directory."""
        self.stop()
        self.start()

    def log_tail(self) -> str:
        """The end of the server's log."""
        path = self.directory / "redis.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
