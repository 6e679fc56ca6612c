"""The mutation run: apply each mutation of the catalog in turn (one line of production code
broken the way a plausible bug would break it), run the tests that must catch it, put the line
back, and report which mutations survived. Run it after the suite passes:

    python -m tests.mutations.run            # every mutation
    python -m tests.mutations.run --fast     # the subset CI runs
    python -m tests.mutations.run --only "JSON of any depth"

The stores are the suite's (OPSGRAPH_TEST_DATABASE_URL / OPSGRAPH_TEST_REDIS_URL, or embedded).
The last line printed is one JSON object with the figures; the exit status is 1 when a
mutation survived."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.mutations.catalog import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 600


def apply(m: Mutation) -> str:
    """Break the line; answer the file's original text (to put back)."""
    path = ROOT / m.file
    original = path.read_text()
    found = original.count(m.old)
    if found != 1:
        raise SystemExit(f"{m.name}: the line occurs {found} times in {m.file}, not once")
    path.write_text(original.replace(m.old, m.new))
    return original


def run_one(m: Mutation) -> tuple[str, float]:
    original = apply(m)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *m.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
        )
        code = done.returncode
    except subprocess.TimeoutExpired:
        code = -1  # hung: the tests did not pass, the mutation is caught
    finally:
        (ROOT / m.file).write_text(original)
    elapsed = time.monotonic() - started
    if code == 0:
        return "SURVIVED", elapsed
    if code in (2, 3, 4, 5):  # interrupted, internal error, usage error, no tests
        return f"ERROR (pytest exit {code})", elapsed
    return "killed", elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="only the subset CI runs")
    parser.add_argument("--only", help="one mutation, by name")
    args = parser.parse_args()
    chosen = [
        m
        for m in MUTATIONS
        if (not args.fast or m.fast) and (args.only is None or m.name == args.only)
    ]
    if not chosen:
        print("no mutation matches", file=sys.stderr)
        return 2
    width = max(len(m.name) for m in chosen)
    print(f"{'mutation':<{width}}  {'outcome':<22} seconds")
    outcomes: dict[str, str] = {}
    total = time.monotonic()
    for m in chosen:
        outcome, elapsed = run_one(m)
        outcomes[m.name] = outcome
        print(f"{m.name:<{width}}  {outcome:<22} {elapsed:7.1f}", flush=True)
    survived = [n for n, o in outcomes.items() if o != "killed"]
    print(
        json.dumps(
            {
                "mutations": len(chosen),
                "killed": len(chosen) - len(survived),
                "survived": survived,
                "seconds": round(time.monotonic() - total, 1),
            }
        )
    )
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
