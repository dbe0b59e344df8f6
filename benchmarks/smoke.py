"""Run every benchmark once at a small size, so that each keeps working (CI runs this)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
SKIP = {"smoke.py"}
TIME_LIMIT = 120.0
"""Seconds one quick run may take before it is stopped and counted as failed (a hang)."""
BROKEN = ("was never awaited", "Traceback (most recent call last)")
"""Output that means a run went wrong, whatever its exit code (a check a quick run skips)."""


def main() -> int:
    """Run each ``benchmarks/*.py`` with ``--quick``; fail if any fails."""
    failures = []
    for script in sorted(HERE.glob("*.py")):
        if script.name in SKIP or script.name.startswith("_"):  # helpers, not benchmarks
            continue
        started = time.perf_counter()
        try:
            result = subprocess.run(
                [sys.executable, str(script), "--quick"],
                capture_output=True,
                text=True,
                timeout=TIME_LIMIT,
            )
        except subprocess.TimeoutExpired as expired:  # run() has killed it
            status, stdout, stderr = (
                f"FAILED (still running after {TIME_LIMIT:.0f} s)",
                expired.stdout,
                expired.stderr,
            )
        else:
            stdout, stderr = result.stdout, result.stderr
            broken = [sign for sign in BROKEN if sign in stdout + stderr]
            if result.returncode != 0:
                status = f"FAILED ({result.returncode})"
            elif broken:
                status = f"FAILED (printed {broken[0]!r})"
            else:
                status = "ok"
        elapsed = time.perf_counter() - started
        print(f"{script.name}: {status} in {elapsed:.1f} s", flush=True)
        if status != "ok":
            failures.append(script.name)
            print(_text(stdout)[-2000:], _text(stderr)[-4000:], sep="\n", flush=True)
    return 1 if failures else 0


def _text(output: str | bytes | None) -> str:
    """What a run printed, as text (a timed-out run's output may be bytes or nothing)."""
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


if __name__ == "__main__":
    sys.exit(main())
