"""A fake MediaX over loopback HTTP with faults of every kind, for the multi-process fault tests.

Run as a child process: ``python tests/fault_emulator.py --report FILE [--rate 0.15]``.
It prints one JSON line (base URL and credentials) once it serves; on SIGINT
or SIGTERM it writes every job the fake holds, and the faults it injected, to
``FILE`` as JSON, then exits 0.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

import anyio

from mediax_async.testing import FakeMediaX, Fault, FixedDuration, Profile, Schedule

FAULTS = (
    Fault.RATE_LIMITED,
    Fault.SERVER_ERROR,
    Fault.BAD_GATEWAY,
    Fault.UNAVAILABLE,
    Fault.DROP,
    Fault.SLOW,
    Fault.MALFORMED_JSON,
    Fault.ANSWER_LOST,
)


async def serve(args: argparse.Namespace) -> None:
    schedule = Schedule(
        default=Profile(queue=FixedDuration(args.queue), processing=FixedDuration(args.duration))
    )
    fake = FakeMediaX(
        seed=args.seed,
        schedule=schedule,
        epoch_offset_ms=round((time.time() - time.monotonic()) * 1000),
    )
    fake.faults.slow_delay = args.slow
    for fault in FAULTS:  # the same share of every kind, on every action
        fake.faults.set_rate(fault, args.rate / len(FAULTS))
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with fake.serve("127.0.0.1", 0) as base_url:
            reach = {
                "MEDIAX_BASE_URL": base_url,
                "MEDIAX_SECRET_ID": fake.secret_id,
                "MEDIAX_SECRET_KEY": fake.secret_key,
            }
            print(json.dumps(reach), flush=True)
            async for _ in signals:
                break
            report = {
                "jobs": fake.jobs,
                "faults": {f"{a}:{f.value}": n for (a, f), n in fake.faults.counts.items()},
                "creates": sum(1 for r in fake.requests if r.action == "CreateJob"),
            }
    await anyio.Path(args.report).write_text(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--report", required=True)
    parser.add_argument("--rate", type=float, default=0.15, help="share of requests faulted")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queue", type=float, default=0.5, help="seconds each job queues")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds each job processes")
    parser.add_argument("--slow", type=float, default=1.0, help="seconds a SLOW answer waits")
    anyio.run(serve, parser.parse_args())
    sys.exit(0)


if __name__ == "__main__":
    main()
