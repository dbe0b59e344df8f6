"""Decoding cost: ``parse_job`` and ``converter.unstructure`` of a finished job of each kind.

For a finished job of each capability (image to music, humming, singing
generation, singing training, separation), as the fake service writes it:

- ``json.loads`` of its JSON bytes alone (the floor);
- ``parse_job`` of the same bytes (JSON, then the cattrs hooks into a ``Job``);
- ``converter.unstructure`` of the parsed job (back to wire dicts).

Then the share of a request's CPU time that decoding takes: ``parse_job`` of
the job ``benchmarks/requests_per_second.py`` serves, divided by the client's
CPU time per ``client.get_job`` over loopback (measured here the same way,
against the same separate-process server), for each transport and
concurrency. Target: under 5%. Beside it, as a diagnostic, the same share
measured in place: ``get_job`` with and without building the ``Job``, in
alternating runs (under load the decoder's code and data are cold, so it
costs more than in a tight loop).

    python benchmarks/decoding.py            # ~1 min
    python benchmarks/decoding.py --quick    # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

from mediax_async import (
    HummingOutputType,
    Job,
    MusicSeparateMethod,
    converter,
    humming_request,
    image_to_music_request,
    parse_job,
    separation_request,
    singing_request,
    singing_training_request,
)
from mediax_async._protocol import Answer, parse_payload
from mediax_async._redact import Redactor
from mediax_async.testing import FakeMediaX, Schedule

sys.path.insert(0, str(Path(__file__).resolve().parent))
import requests_per_second as rps  # a sibling script, not a package

SHARE_TARGET = 0.05
URL = "https://media.example.com/uploads/2024/07"


def finished_jobs() -> dict[str, bytes]:
    """The wire JSON of a COMPLETED job of each capability, every request field set."""
    common: dict[str, Any] = {"callback": "https://hooks.example.com/mediax/done"}
    requests = {
        "image to music": image_to_music_request(
            f"{URL}/cover.png",
            content_id="music-repo-1251000000",
            destination="/mediax/bgm",
            song_quantity=3,
            custom_id="bgm-cover-0042",
            **common,
        ),
        "humming": humming_request(
            f"{URL}/hum.wav",
            content_id="music-repo-1251000000",
            destination="/mediax/humming",
            song_quantity=3,
            use_sieve=True,
            output_type=HummingOutputType.MP3,
            custom_id="hum-0042",
            **common,
        ),
        "singing generation": singing_request(
            f"{URL}/song.mp3",
            content_id="music-repo-1251000000",
            destination="/mediax/singing",
            use_separate=True,
            custom_id="sing-0042",
            **common,
        ),
        "singing training": singing_training_request(
            [f"{URL}/voice-{n}.wav" for n in range(5)],
            model_name="alto_0042",
            total_epoch=50,
            custom_id="train-0042",
            **common,
        ),
        "separation (4 stems)": separation_request(
            f"{URL}/track-07.mp3",
            content_id="music-repo-1251000000",
            method=MusicSeparateMethod.FOUR_STEMS,
            destination="/mediax/separated",
            custom_id="sep-0042",
            **common,
        ),
    }

    async def make() -> dict[str, bytes]:
        fake = FakeMediaX(schedule=Schedule.instant(), record_requests=False)
        created = {
            name: fake.state.create_job(fake.secret_id, converter.unstructure(request), 0.0)
            for name, request in requests.items()
        }
        fake.advance()
        return {name: fake.state.encode(job) for name, job in created.items()}

    jobs = anyio.run(make)
    for name, data in jobs.items():
        job = parse_job(data)
        assert job.state.name == "COMPLETED", (name, job.state)
    return jobs


def per_call_us(fn: Callable[[], object], repeats: int, min_time: float) -> float:
    """Best of ``repeats`` timings of ``fn``, in CPU us per call (gc on).

    CPU time, not wall time: on a shared machine another process on the same core
    would otherwise count as ours.
    """
    timer = timeit.Timer(fn, setup="gc.enable()", timer=time.process_time, globals={"gc": gc})
    number = 1
    while timer.timeit(number) < min_time:
        number *= 2
    return min(timer.repeat(repeats, number)) / number * 1e6


@contextlib.contextmanager
def job_decoding_skipped() -> Iterator[None]:
    """Within, ``client.get_job`` stops at the answer's JSON: no ``Job`` is built (an ablation).

    Everything else (encoding, deadline, ``json.loads``, the error checks) runs
    as usual, so the difference in CPU time is what building the ``Job`` costs
    in place, under load, rather than in a tight loop.
    """
    import mediax_async._calls as calls_module

    # Patched by name where the client looks it up: the replacement returns the
    # answer's JSON where a Job would be, which no declared type allows.
    name = "parse_job_answer"
    real = getattr(calls_module, name)

    def json_only(
        action: str, answer: Answer, redactor: Redactor, *, job_id: str | None = None
    ) -> tuple[Any, str | None]:
        payload, request_id = parse_payload(action, answer, redactor)
        job = payload["job"]
        if job_id is not None and job.get("id") != job_id:  # the check the real parser makes
            raise AssertionError(f"answer about {job.get('id')!r}, not {job_id!r}")
        return job, request_id

    setattr(calls_module, name, json_only)
    try:
        yield
    finally:
        setattr(calls_module, name, real)


def in_place(server: rps.Server, requests: int, repeats: int) -> dict[int, tuple[float, float]]:
    """Median CPU us per ``get_job`` on aiohttp with and without building the ``Job``, per cell.

    The two are measured alternately, ``repeats`` times, so that drift in the
    machine's speed falls on both alike. Only aiohttp: an httpx request costs
    0.6-2.5 ms and varies by more than the decoder's whole cost between runs.
    """
    with_job: dict[int, list[float]] = {c: [] for c in rps.CONCURRENCIES}
    without: dict[int, list[float]] = {c: [] for c in rps.CONCURRENCIES}
    for _ in range(repeats):
        for concurrency in rps.CONCURRENCIES:
            run = rps.measure_once("mediax-aiohttp", server, concurrency, requests)
            with_job[concurrency].append(run.cpu_us)
            with job_decoding_skipped():
                run = rps.measure_once("mediax-aiohttp", server, concurrency, requests)
            without[concurrency].append(run.cpu_us)
    return {
        c: (statistics.median(with_job[c]), statistics.median(without[c]))
        for c in rps.CONCURRENCIES
    }


def served_job(server: rps.Server) -> bytes:
    """The job JSON inside the GetJob answer the benchmark server sends."""

    async def fetch() -> bytes:
        async with rps.open_caller("bare-aiohttp", server, 1) as call:
            answer = await call()  # the bare loop's decoded JSON
        assert isinstance(answer, dict)
        job = answer["getJobResponse"]["job"]
        return json.dumps(job, separators=(",", ":")).encode()

    return anyio.run(fetch, backend="asyncio")


def main() -> None:
    """Measure and print the tables (with --check, exit 1 if a target fails)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run (seconds)")
    parser.add_argument("--requests", type=int, default=3_000, help="requests per CPU run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    repeats, min_time, requests = (3, 0.02, 300) if args.quick else (7, 0.2, args.requests)

    print(f"decoding a finished job, CPU us per job (best of {repeats}, gc on)\n")
    print(f"{'job':<22}{'bytes':>7}{'json.loads':>12}{'parse_job':>11}{'unstructure':>13}")
    for name, data in finished_jobs().items():
        job: Job = parse_job(data)
        loads = per_call_us(functools.partial(json.loads, data), repeats, min_time)
        parse = per_call_us(functools.partial(parse_job, data), repeats, min_time)
        unstructure = per_call_us(functools.partial(converter.unstructure, job), repeats, min_time)
        print(f"{name:<22}{len(data):>7}{loads:>12.1f}{parse:>11.1f}{unstructure:>13.1f}")

    pin = not args.no_pin
    with rps.loopback_server("raw", pin=pin) as server:
        data = served_job(server)
        parse_us = per_call_us(functools.partial(parse_job, data), repeats, min_time)
        runs = rps.measure(server, ("mediax-httpx",), rps.CONCURRENCIES, requests, 1)
        aiohttp = in_place(server, requests, 1 if args.quick else 7)
    # (CPU us per request, the same without the Job or None where not measured)
    cells: dict[tuple[str, int], tuple[float, float | None]] = {
        ("httpx", c): (rps.median_cpu_us(runs["mediax-httpx", c]), None) for c in rps.CONCURRENCIES
    }
    cells.update({("aiohttp", c): aiohttp[c] for c in rps.CONCURRENCIES})
    print(
        f"\nshare of a request's CPU that building the Job takes, client.get_job over loopback "
        f"({rps.pinned_description(pin)}; {requests} requests per cell)"
    )
    print(
        f"- tight loop: parse_job of the served job ({len(data)} bytes) on its own, "
        f"{parse_us:.1f} us, over the CPU per request;"
    )
    print(
        "- in place (diagnostic): CPU per request, minus the same with the Job not built (the\n"
        "  answer's JSON returned instead), over the CPU per request; medians of alternating\n"
        "  runs, so noisy: a difference of a few us is within the spread of the runs.\n"
    )
    print(
        f"{'transport':<10}{'c':>5}{'CPU us/req':>12}{'tight loop':>12}"
        f"{'without Job':>13}{'in place':>10}"
    )
    passed = True
    for (transport, concurrency), (full, without) in cells.items():
        tight = parse_us / full
        ok = tight < SHARE_TARGET
        passed = passed and ok
        placed = "-" if without is None else f"{(full - without) / full:.1%}"
        print(
            f"{transport:<10}{concurrency:>5}{full:>12.0f}{tight:>12.1%}"
            f"{'-' if without is None else f'{without:.0f}':>13}{placed:>10}"
            f"  (tight loop < {SHARE_TARGET:.0%}) {rps.verdict(ok)}"
        )
    sys.exit(0 if passed or not args.check else 1)


if __name__ == "__main__":
    main()
