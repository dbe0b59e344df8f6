"""Run every benchmark once at a small size, so that each keeps working (CI runs this)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
SKIP = {"smoke.py"}


def main() -> int:
    """Run each ``benchmarks/*.py`` with ``--quick``; fail if any fails."""
    failures = []
    for script in sorted(HERE.glob("*.py")):
        if script.name in SKIP:
            continue
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, str(script), "--quick"], capture_output=True, text=True
        )
        elapsed = time.perf_counter() - started
        status = "ok" if result.returncode == 0 else f"FAILED ({result.returncode})"
        print(f"{script.name}: {status} in {elapsed:.1f} s")
        if result.returncode != 0:
            failures.append(script.name)
            print(result.stdout[-2000:], result.stderr[-4000:], sep="\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
