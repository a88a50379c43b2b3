"""Speed and memory benchmark (not a test): `make bench` or
`python scripts/benchmark.py --scale 10`.

Generates a sample province at `--scale` (cooperatives per district multiplied; scale 10 is
about 29,000 register rows, the size of the whole country's ~30,000 cooperatives), then runs
`coop run` three times in fresh subprocesses against a private warehouse:

1. cold: every file read, validated, loaded, modelled, tested and published;
2. unchanged: nothing changed, so nothing may be read (the incremental path);
3. backfill of one year: that year's files re-read, the rest taken from the cache.

It prints wall time, peak memory (max RSS of the child) and rows per second, and checks the
targets below; exit 1 when a target is missed. Targets are for the 2-core CI machine size.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COOP = [sys.executable, "-m", "coop.cli"]

#: (stage, max seconds, max peak RSS in MiB) at scale 10 (~28,500 rows).
#: Measured 2026-11-27 on the 2-core machine: cold 32 s, unchanged 1.3 s, backfill of one
#: year 24 s, peak RSS 414 MiB (cold includes ~15 s of Prefect ephemeral-server start-up).
TARGETS = {
    "cold": (120.0, 1024.0),
    "unchanged": (10.0, 1024.0),
    "backfill": (90.0, 1024.0),
}


def timed(cmd: list[str]) -> tuple[float, float, int]:
    """Run cmd in a child; return (seconds, largest peak RSS in MiB of any child so far, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
    return secs, rss_mib, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="coop-bench-"))
    raw, wh = work / "raw", work / "warehouse" / "coop.duckdb"
    t0 = time.perf_counter()
    gen = subprocess.run(
        [sys.executable, "-m", "coop.sample", "--out", str(raw), "--scale", str(args.scale)],
        cwd=ROOT, capture_output=True, text=True,
    )
    if gen.returncode != 0:
        sys.stderr.write(gen.stderr)
        return 1
    truth = json.loads((work / "ground_truth.json").read_text(encoding="utf-8"))
    rows = sum(len(v["rows"]) for v in truth["forms"].values())
    print(f"sample: scale {args.scale}, {rows:,} valid rows, generated in {time.perf_counter() - t0:.1f} s")

    results = {}
    for stage, cmd in (
        ("cold", COOP + ["run", "--raw-dir", str(raw), "--warehouse", str(wh)]),
        ("unchanged", COOP + ["run", "--raw-dir", str(raw), "--warehouse", str(wh)]),
        ("backfill", COOP + ["backfill", "--from", "2021", "--to", "2021", "--raw-dir", str(raw), "--warehouse", str(wh)]),
    ):
        secs, rss, rc = timed(cmd)
        results[stage] = (secs, rss, rc)
        rate = f", {rows / secs:,.0f} rows/s" if stage == "cold" else ""
        print(f"{stage:10s} {secs:7.1f} s  peak RSS {rss:7.0f} MiB  exit {rc}{rate}")

    failed = False
    if args.scale == 10:
        for stage, (max_s, max_mib) in TARGETS.items():
            secs, rss, rc = results[stage]
            ok = rc == 0 and secs <= max_s and rss <= max_mib
            failed |= not ok
            print(f"target {stage}: <= {max_s:.0f} s and <= {max_mib:.0f} MiB: {'ok' if ok else 'MISSED'}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
