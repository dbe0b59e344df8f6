"""Requests per second over loopback: ``MediaXClient.get_job`` beside bare HTTP loops.

A server process started here (127.0.0.1, port 0) answers every request with
the GetJob answer of a finished four-stem separation job, taken from the fake
service. Against it, on one client core, for concurrency 1, 16 and 128 (the
connection pool sized to the concurrency):

- ``mediax httpx``: ``client.get_job`` with the default transport;
- ``bare httpx``: ``httpx.AsyncClient.post`` of the same body, and
  ``json.loads`` of the answer (the least a GetJob loop must do to read the
  job's state);
- ``mediax aiohttp``: ``client.get_job`` with ``http_backend="aiohttp"``;
- ``bare aiohttp``: ``aiohttp.ClientSession.post`` of the same body, and
  ``json.loads`` of the answer;
- ``httpx-aiohttp``: ``HttpxAiohttpClient.post`` (the httpx API over aiohttp,
  what the aiohttp backend sent through until 2026-12-02) and ``json.loads``,
  a diagnostic of what that adapter costs.

Targets: each client at least 85% of the bare loop on its transport; the
aiohttp backend at least twice the default at concurrency 128.

The server is a minimal asyncio HTTP/1.1 keep-alive server (``--server raw``,
the default) in its own process, pinned to another core than the client when
there are two: it answers one fixed body and costs a few microseconds per
request, so the client is what is measured. ``--server uvicorn`` serves the
fake's ASGI app instead: real answers, but uvicorn's pure-Python h11 parser
tops out below what the aiohttp client can ask for.

    python benchmarks/requests_per_second.py            # 3 repeats of 5,000 requests (~3 min)
    python benchmarks/requests_per_second.py --quick    # a smoke run (seconds)
    python benchmarks/requests_per_second.py --profile mediax-aiohttp --concurrency 128
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import pstats
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import IO, Any, Literal

import aiohttp
import attrs
import httpx
from _child_server import child_server
from httpx_aiohttp import HttpxAiohttpClient

from mediax_async import MediaXClient, MusicSeparateMethod, converter, separation_request
from mediax_async.testing import FakeMediaX, Schedule

VARIANTS = ("mediax-httpx", "bare-httpx", "mediax-aiohttp", "bare-aiohttp", "httpx-aiohttp")
LABELS = {
    "mediax-httpx": "mediax get_job, httpx",
    "bare-httpx": "bare httpx post + json.loads",
    "mediax-aiohttp": "mediax get_job, aiohttp",
    "bare-aiohttp": "bare aiohttp post + json.loads",
    "httpx-aiohttp": "HttpxAiohttpClient + json (diag)",
}
SHORT = {
    "mediax-httpx": "mediax get_job, httpx",
    "bare-httpx": "bare httpx",
    "mediax-aiohttp": "mediax get_job, aiohttp",
    "bare-aiohttp": "bare aiohttp",
    "httpx-aiohttp": "HttpxAiohttpClient",
}
CONCURRENCIES = (1, 16, 128)
HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": "mediax-async",
}
TIMEOUT = 30.0
SAME_TRANSPORT_TARGET = 0.85
AIOHTTP_SPEEDUP_TARGET = 2.0
NATIVE_AIOHTTP_CPU_TARGET = 0.70
"""Our get_job on aiohttp: at least this share of a bare aiohttp loop (issue 15: at c=128).

It replaced 0.85, the target against ``HttpxAiohttpClient``, the adapter the
backend ran on before it went straight to aiohttp."""

Caller = Callable[[], Awaitable[object]]


@attrs.frozen
class Server:
    """Where the benchmark server listens, and what to ask it."""

    base_url: str
    job_id: str
    secret_id: str
    secret_key: str
    body_bytes: int
    kind: str

    @property
    def url(self) -> str:
        """The URL GetJob is posted to."""
        return f"{self.base_url}/job"

    def request_body(self) -> bytes:
        """The GetJob body, byte for byte as the client encodes it."""
        body = {
            "action": "GetJob",
            "secretId": self.secret_id,
            "secretKey": self.secret_key,
            "getJobRequest": {"id": self.job_id},
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@attrs.frozen
class Run:
    """One timed run: ``requests`` sent in ``wall_s`` seconds using ``cpu_s`` of client CPU."""

    requests: int
    wall_s: float
    cpu_s: float

    @property
    def rps(self) -> float:
        """Requests per second (wall clock)."""
        return self.requests / self.wall_s

    @property
    def cpu_us(self) -> float:
        """Client CPU time per request, in microseconds."""
        return self.cpu_s / self.requests * 1e6


# -- the server (a child process) ----------------------------------------------------


def finished_job_request() -> dict[str, Any]:
    """The createJobRequest of a realistic job: a four-stem separation with every field set."""
    request = separation_request(
        "https://songs.example.com/albums/2024/track-07.mp3",
        content_id="music-repo-1251000000",
        method=MusicSeparateMethod.FOUR_STEMS,
        destination="/mediax/separated/2024",
        custom_id="batch-2024-07-track-07",
        callback="https://hooks.example.com/mediax/done",
    )
    data: dict[str, Any] = converter.unstructure(request)
    return data


async def _fake_with_finished_job() -> tuple[FakeMediaX, str, bytes]:
    """A fake holding one finished job; its id and the fake's GetJob answer body."""
    fake = FakeMediaX(schedule=Schedule.instant(), record_requests=False)
    job = fake.state.create_job(fake.secret_id, finished_job_request(), 0.0)
    fake.advance()
    body = {
        "action": "GetJob",
        "secretId": fake.secret_id,
        "secretKey": fake.secret_key,
        "getJobRequest": {"id": job.id},
    }
    reply = await fake.exchange("POST", "/job", json.dumps(body).encode())
    assert reply.status == 200, reply.body
    return fake, job.id, reply.body


class _FixedAnswer(asyncio.Protocol):
    """HTTP/1.1 keep-alive: answers each request (headers, Content-Length body) with one reply."""

    def __init__(self, response: bytes) -> None:
        self._response = response
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            start = head.find(b"\r\ncontent-length:")
            length = 0
            if start >= 0:
                stop = head.find(b"\r\n", start + 2)
                length = int(head[start + 17 : stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(buffer) < total:
                return
            del buffer[:total]
            assert self._transport is not None
            self._transport.write(self._response)


def _stop_on_stdin_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` once stdin closes: the parent ended or exited."""

    def watch() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch, daemon=True).start()


def _announce(base_url: str, fake: FakeMediaX, job_id: str, body: bytes, kind: str) -> None:
    info = {
        "base_url": base_url,
        "job_id": job_id,
        "secret_id": fake.secret_id,
        "secret_key": fake.secret_key,
        "body_bytes": len(body),
        "kind": kind,
    }
    print(json.dumps(info), flush=True)


async def _serve_raw() -> None:
    fake, job_id, body = await _fake_with_finished_job()
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _FixedAnswer(head + body), "127.0.0.1", 0, backlog=1024
    )
    stop = asyncio.Event()
    _stop_on_stdin_eof(loop, stop)
    async with server:
        host, port = server.sockets[0].getsockname()[:2]
        _announce(f"http://{host}:{port}", fake, job_id, body, "raw")
        await stop.wait()


async def _serve_uvicorn() -> None:
    import uvicorn

    fake, job_id, body = await _fake_with_finished_job()
    stop = asyncio.Event()
    _stop_on_stdin_eof(asyncio.get_running_loop(), stop)
    # uvicorn binds the port itself: a socket bound by hand with proto 0 (as
    # ``fake.serve()`` does today) gets no TCP_NODELAY from asyncio, and every answer
    # then waits ~40 ms for a delayed ACK.
    config = uvicorn.Config(
        fake.app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_level="warning",
        access_log=False,
        ws="none",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    _announce(f"http://{host}:{port}", fake, job_id, body, "uvicorn")
    await stop.wait()
    server.should_exit = True
    await serving


def serve(kind: str, cpu: int | None) -> None:
    """Run the benchmark server until stdin closes (the child process's entry point)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    asyncio.run(_serve_raw() if kind == "raw" else _serve_uvicorn())


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


@contextlib.contextmanager
def loopback_server(kind: str = "raw", *, pin: bool = True) -> Iterator[Server]:
    """Start the server in a child process; pin it and this process to separate cores.

    The child stops when this block ends (its stdin closes), or is killed if it lingers.
    """
    cpus = _cpus()
    command = [sys.executable, __file__, "--serve", kind]
    if pin and len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[0]})
        command += ["--cpu", str(cpus[1])]
    try:
        with child_server(command, f"{kind} server") as (_, info):
            yield Server(**info)
    finally:
        if pin and len(cpus) >= 2:
            os.sched_setaffinity(0, set(cpus))


def pinned_description(pin: bool) -> str:
    """Where the client and the server run, for the table's heading."""
    cpus = _cpus()
    if pin and len(cpus) >= 2:
        return f"client pinned to CPU {cpus[0]}, server to CPU {cpus[1]}"
    return f"unpinned ({len(cpus) or '?'} CPUs)"


# -- the client side --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_caller(variant: str, server: Server, concurrency: int) -> AsyncIterator[Caller]:
    """A zero-argument coroutine function sending one GetJob the way ``variant`` does."""
    url = server.url
    body = server.request_body()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(TIMEOUT, connect=10.0)
    if variant in ("mediax-httpx", "mediax-aiohttp"):
        backend: Literal["httpx", "aiohttp"] = "httpx" if variant == "mediax-httpx" else "aiohttp"
        client = MediaXClient(
            server.secret_id,
            server.secret_key,
            base_url=server.base_url,
            http_backend=backend,
            max_connections=concurrency,
        )
        job_id = server.job_id
        async with client:
            yield lambda: client.get_job(job_id)
    elif variant in ("bare-httpx", "httpx-aiohttp"):
        kind = httpx.AsyncClient if variant == "bare-httpx" else HttpxAiohttpClient
        async with kind(limits=limits, timeout=timeout) as http:

            async def post_httpx() -> object:
                response = await http.post(url, content=body, headers=HEADERS)
                if response.status_code != 200:
                    raise RuntimeError(f"status {response.status_code}")
                return json.loads(response.content)

            yield post_httpx
    elif variant == "bare-aiohttp":
        connector = aiohttp.TCPConnector(limit=concurrency)
        session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT, sock_connect=10.0)
        )
        async with session:

            async def post_aiohttp() -> object:
                async with session.post(url, data=body, headers=HEADERS) as response:
                    if response.status != 200:
                        raise RuntimeError(f"status {response.status}")
                    return json.loads(await response.read())

            yield post_aiohttp
    else:
        raise ValueError(f"unknown variant {variant!r}")


async def drive(call: Caller, concurrency: int, count: int) -> Run:
    """Send ``count`` requests from ``concurrency`` tasks; time them (wall and CPU)."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(count, time.perf_counter() - wall, time.process_time() - cpu)


def warmup_count(concurrency: int, requests: int) -> int:
    """Requests sent before timing: every connection opened, and the code paths warm."""
    return max(concurrency * 2, min(requests // 10, 500))


def measure_once(
    variant: str,
    server: Server,
    concurrency: int,
    requests: int,
    profiler: cProfile.Profile | None = None,
) -> Run:
    """One run of ``variant`` on a fresh client: warm up, then time ``requests`` requests."""

    async def main() -> Run:
        async with open_caller(variant, server, concurrency) as call:
            await drive(call, concurrency, warmup_count(concurrency, requests))
            gc.collect()
            if profiler is not None:
                profiler.enable()
            try:
                return await drive(call, concurrency, requests)
            finally:
                if profiler is not None:
                    profiler.disable()

    return asyncio.run(main())


def measure(
    server: Server,
    variants: tuple[str, ...],
    concurrencies: tuple[int, ...],
    requests: int,
    repeats: int,
    *,
    progress: IO[str] | None = None,
) -> dict[tuple[str, int], list[Run]]:
    """Every (variant, concurrency) ``repeats`` times, interleaved so drift hits all alike."""
    runs: dict[tuple[str, int], list[Run]] = {}
    for repeat in range(repeats):
        for concurrency in concurrencies:
            for variant in variants:
                run = measure_once(variant, server, concurrency, requests)
                runs.setdefault((variant, concurrency), []).append(run)
                if progress is not None:
                    print(
                        f"  [{repeat + 1}/{repeats}] {variant:<15} c={concurrency:<4}"
                        f" {run.rps:>8.0f} req/s {run.cpu_us:>7.0f} CPU us/req",
                        file=progress,
                        flush=True,
                    )
    return runs


def median_rps(runs: list[Run]) -> float:
    """The median requests per second of several runs."""
    return statistics.median(run.rps for run in runs)


def median_cpu_us(runs: list[Run]) -> float:
    """The median client CPU microseconds per request of several runs."""
    return statistics.median(run.cpu_us for run in runs)


# -- report -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def print_report(
    server: Server,
    runs: dict[tuple[str, int], list[Run]],
    concurrencies: tuple[int, ...],
    requests: int,
    repeats: int,
    pin: bool,
) -> bool:
    """Print the table and the targets; return whether every target passed."""
    variants = [v for v in VARIANTS if any((v, c) in runs for c in concurrencies)]
    print(
        f"\nserver: {server.kind}, {server.body_bytes}-byte GetJob answer; "
        f"{pinned_description(pin)}; Python {sys.version.split()[0]}, httpx {httpx.__version__},"
        f" aiohttp {aiohttp.__version__}"
    )
    print(f"median of {repeats} run(s) of {requests} requests each, after a warm-up\n")
    cols = "".join(f"{f'c={c}':>9}" for c in concurrencies)
    print(f"{'requests/s':<32}{cols}   {'CPU us/request':>14}{cols}")
    for variant in variants:
        rps = "".join(f"{median_rps(runs[variant, c]):>9.0f}" for c in concurrencies)
        cpu = "".join(f"{median_cpu_us(runs[variant, c]):>9.0f}" for c in concurrencies)
        print(f"{LABELS[variant]:<32}{rps}   {'':>14}{cpu}")

    print(
        "\ntargets: ratio of requests/s (PASS/FAIL), and of CPU time per request"
        " (bare / ours: what the ratio would be on a quiet, CPU-bound core)"
    )
    passed = True

    def check(name: str, mine: str, other: str, c: int, target: float, *, diag: bool) -> None:
        nonlocal passed
        ratio = median_rps(runs[mine, c]) / median_rps(runs[other, c])
        by_cpu = median_cpu_us(runs[other, c]) / median_cpu_us(runs[mine, c])
        if diag:
            print(f"  (diag) {name:<44} {ratio:>6.2f}  cpu {by_cpu:>5.2f}")
            return
        ok = ratio >= target
        passed = passed and ok
        print(f"  {name:<51} {ratio:>6.2f}  cpu {by_cpu:>5.2f}  (>= {target:.2f})  {verdict(ok)}")

    # Against bare httpx, the httpx client's target; against bare aiohttp (a floor with
    # no HTTP machinery of ours at all), the native backend's.
    pairs = [
        ("mediax-httpx", "bare-httpx", SAME_TRANSPORT_TARGET),
        ("mediax-aiohttp", "bare-aiohttp", NATIVE_AIOHTTP_CPU_TARGET),
    ]
    for mine, bare, pair_target in pairs:
        for c in concurrencies:
            if (mine, c) in runs and (bare, c) in runs:
                name = f"{SHORT[mine]} / {SHORT[bare]}, c={c}"
                check(name, mine, bare, c, pair_target, diag=False)
    top = max(concurrencies)
    if ("mediax-aiohttp", top) in runs and ("mediax-httpx", top) in runs:
        name = f"mediax aiohttp / mediax httpx, c={top}"
        check(name, "mediax-aiohttp", "mediax-httpx", top, AIOHTTP_SPEEDUP_TARGET, diag=False)
    for c in concurrencies:
        if ("httpx-aiohttp", c) in runs and ("bare-aiohttp", c) in runs:
            name = f"HttpxAiohttpClient / bare aiohttp, c={c}"
            check(name, "httpx-aiohttp", "bare-aiohttp", c, 0, diag=True)
        if ("mediax-aiohttp", c) in runs and ("httpx-aiohttp", c) in runs:
            name = f"mediax aiohttp / HttpxAiohttpClient, c={c}"
            check(name, "mediax-aiohttp", "httpx-aiohttp", c, 0, diag=True)
    print_rounds(runs, concurrencies)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average at the end: {load} (above ~1 another process shared the cores)")
    return passed


def print_rounds(runs: dict[tuple[str, int], list[Run]], concurrencies: tuple[int, ...]) -> None:
    """Each round's CPU ratio (bare / ours) for each client beside its bare loop, and their median.

    A round ran both variants back to back (A B A B ...), so a burst of load
    from elsewhere tends to hit both of one round: the median of the rounds'
    ratios is steadier than the ratio of two medians.
    """
    pairs = [("mediax-httpx", "bare-httpx"), ("mediax-aiohttp", "bare-aiohttp")]
    lines = []
    for mine, bare in pairs:
        for c in concurrencies:
            if (mine, c) not in runs or (bare, c) not in runs or len(runs[mine, c]) < 2:
                continue
            ratios = [
                b.cpu_us / m.cpu_us for m, b in zip(runs[mine, c], runs[bare, c], strict=True)
            ]
            shown = " ".join(f"{r:.2f}" for r in ratios)
            median = statistics.median(ratios)
            target = ""
            if mine == "mediax-aiohttp" and c == 128:
                ok = median >= NATIVE_AIOHTTP_CPU_TARGET
                target = f"  (>= {NATIVE_AIOHTTP_CPU_TARGET:.2f}) {'PASS' if ok else 'MISS'}"
            lines.append(
                f"  {SHORT[mine]} / {SHORT[bare]}, c={c:<4} median {median:.2f}{target}"
                f"  (rounds: {shown})"
            )
    if lines:
        print("\nCPU ratio per alternating round (bare CPU us / ours):")
        print("\n".join(lines))


def profile(server: Server, variant: str, concurrency: int, requests: int, top: int) -> None:
    """Profile one run of ``variant`` (cProfile): the heaviest functions, in us per request."""
    profiler = cProfile.Profile()
    run = measure_once(variant, server, concurrency, requests, profiler)
    print(
        f"\nprofile of {LABELS[variant]}, c={concurrency}, {requests} requests "
        f"({run.rps:.0f} req/s, {run.cpu_us:.0f} CPU us/request under cProfile)"
    )
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]  # pstats keeps its table undeclared

    def where(key: tuple[str, int, str]) -> str:
        filename, line, name = key
        for marker in ("site-packages/", "mediax_async/", "lib/python"):
            if marker in filename:
                filename = filename[filename.index(marker) :].removeprefix("site-packages/")
                break
        return f"{filename}:{line}({name})"

    rows = [(key, value[2], value[3], value[1]) for key, value in entries.items()]
    print(f"\n  top {top} by own time: own us/req, cumulative us/req, calls/req")
    for key, own, cum, calls in sorted(rows, key=lambda r: r[1], reverse=True)[:top]:
        per = 1e6 / requests
        print(f"  {own * per:>8.1f} {cum * per:>9.1f} {calls / requests:>6.1f}  {where(key)}")
    print("\n  mediax_async functions by cumulative time: own us/req, cumulative us/req, calls/req")
    ours = [row for row in rows if "mediax_async" in row[0][0]]
    for key, own, cum, calls in sorted(ours, key=lambda r: r[2], reverse=True)[:top]:
        per = 1e6 / requests
        print(f"  {own * per:>8.1f} {cum * per:>9.1f} {calls / requests:>6.1f}  {where(key)}")


def main() -> None:
    """Parse the command line; serve, measure, or profile."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 x 300 requests")
    parser.add_argument("--requests", type=int, default=5_000, help="requests per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (median shown)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCIES))
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--server", choices=["raw", "uvicorn"], default="raw")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--profile", choices=VARIANTS, help="profile one variant instead")
    parser.add_argument("--top", type=int, default=25, help="rows of the profile")
    parser.add_argument("--json", help="also write the medians to this JSON file")
    parser.add_argument("--serve", choices=["raw", "uvicorn"], help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt):
            serve(args.serve, args.cpu)
        return
    requests, repeats = (300, 1) if args.quick else (args.requests, args.repeats)
    concurrencies = tuple(args.concurrency)
    pin = not args.no_pin
    with loopback_server(args.server, pin=pin) as server:
        if args.profile:
            for concurrency in concurrencies:
                profile(server, args.profile, concurrency, requests, args.top)
            return
        runs = measure(
            server, tuple(args.variants), concurrencies, requests, repeats, progress=sys.stderr
        )
    passed = print_report(server, runs, concurrencies, requests, repeats, pin)
    if args.json:
        medians = {
            f"{variant}@{c}": {"rps": median_rps(r), "cpu_us": median_cpu_us(r)}
            for (variant, c), r in runs.items()
        }
        with open(args.json, "w") as out:
            json.dump(medians, out, indent=1)
    sys.exit(0 if passed or not args.check else 1)


if __name__ == "__main__":
    main()
