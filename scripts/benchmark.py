"""Speed benchmark (not a test): `make bench`, or `python scripts/benchmark.py --scale 16`.

Generates the sample province ×`--scale` (`python -m sample.generate --out DIR --scale N`), then
measures, side by side in one run, whole processes (interpreter start and imports included):

- floor: a bare fastexcel read of every workbook (every sheet to Arrow; CSV files with
  polars) — what reading the same bytes costs without coop;
- cold: `coop run` on a new warehouse, no Prefect server configured (the temporary local
  API with its pre-migrated database, see coop/run/prefect_env.py);
- one changed file: one file's bytes changed, `coop run` again (its floor: the bare read
  of that one file);
- nothing changed: `coop run` again (its floor: hashing every file);
- the cold run once more under cProfile (every thread of the main process), top 15 by
  cumulative time.

Prints the table and writes it, with the profile, into the generated section of
docs/performance.md (between the `bench:begin`/`bench:end` markers). Each case is the
median of `--repeat` runs (cold: a new warehouse each time).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin (written by `make bench`) -->", "<!-- bench:end -->"
COOP = [sys.executable, "-m", "coop.cli"]
EXCEL = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")

FLOOR_CODE = r"""
import sys, fastexcel, polars
for p in sys.argv[1:]:
    if p.lower().endswith(".csv"):
        try:
            polars.read_csv(p, infer_schema=False, truncate_ragged_lines=True)
        except Exception:
            pass
        continue
    try:
        r = fastexcel.read_excel(p)
        for name in r.sheet_names:
            r.load_sheet(name, header_row=None).to_arrow()
    except Exception:
        pass
"""

HASH_CODE = r"""
import hashlib, sys
for p in sys.argv[1:]:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
"""

#: The profiling child: coop's CLI under cProfile, one profiler per thread, merged at exit.
PROFILE_CODE = r"""
import cProfile, pstats, sys, threading
profs = []
_run = threading.Thread.run
def run(self, *a, **k):
    p = cProfile.Profile(); profs.append(p); p.enable()
    try:
        return _run(self, *a, **k)
    finally:
        p.disable()
threading.Thread.run = run
main = cProfile.Profile(); profs.append(main)
out = sys.argv[1]; sys.argv = ["coop"] + sys.argv[2:]
from coop.cli import main as coop_main
main.enable()
try:
    coop_main()
except SystemExit:
    pass
finally:
    main.disable()
    st = pstats.Stats(main)
    for p in profs:
        if p is not main:
            try:
                st.add(p)
            except TypeError:  # a thread's profiler still enabled or empty
                pass
    st.dump_stats(out)
"""


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """Run cmd in a child: (wall seconds, CPU seconds of the child tree, exit code, output tail)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    secs = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return secs, cpu, proc.returncode, (proc.stdout[-2000:] + proc.stderr[-2000:])


def data_files(raw: Path) -> list[str]:
    return sorted(str(p) for p in raw.rglob("*") if p.is_file() and p.suffix.lower() in (*EXCEL, ".csv"))


def change_one(files: list[str]) -> str:
    """Change one file's bytes without changing its content: a CSV gets a trailing newline
    (else a workbook is re-saved by openpyxl). Returns its path."""
    csvs = [f for f in files if f.lower().endswith(".csv")]
    if csvs:
        with open(csvs[len(csvs) // 2], "ab") as fh:
            fh.write(b"\n")
        return csvs[len(csvs) // 2]
    import openpyxl

    path = [f for f in files if f.lower().endswith(".xlsx")][len(files) // 2]
    wb = openpyxl.load_workbook(path)
    wb.properties.title = f"bench {time.time()}"
    wb.save(path)
    return path


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2, help="runs per case (median)")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--no-doc", action="store_true", help="print only; leave docs/performance.md alone")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--national", action="store_true",
                    help="also a cold run of every province (scripts/national_sample.py, COOP_PROVINCE=VN)")
    args = ap.parse_args()

    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env.setdefault("COOP_LOG_LEVEL", "WARNING")
    work = Path(tempfile.mkdtemp(prefix="coop-bench-"))
    raw = work / "raw"
    t0 = time.perf_counter()
    gen = subprocess.run([sys.executable, "-m", "sample.generate", "--out", str(raw), "--scale", str(args.scale),
                          "--truth", str(work / "ground_truth.json")], cwd=ROOT, capture_output=True, text=True)
    if gen.returncode != 0:
        sys.stderr.write(gen.stdout[-2000:] + gen.stderr[-2000:])
        return 1
    files = data_files(raw)
    truth = json.loads((work / "ground_truth.json").read_text(encoding="utf-8"))
    rows = sum(len(v["rows"]) for v in truth.get("forms", {}).values())
    mib = sum(os.path.getsize(f) for f in files) / 2**20
    print(f"sample ×{args.scale}: {len(files)} files ({mib:.1f} MiB), {rows:,} valid rows, "
          f"generated in {time.perf_counter() - t0:.1f} s", flush=True)

    # One-off per machine and Prefect version: the migrated template of the local API database.
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from coop.run.prefect_env import ensure_template; ensure_template()"],
                   cwd=ROOT, env=env, check=False)
    template_s = time.perf_counter() - t

    res: dict[str, dict[str, list[float]]] = {}

    def note(case: str, wall: float, cpu: float) -> None:
        res.setdefault(case, {"wall": [], "cpu": []})
        res[case]["wall"].append(wall)
        res[case]["cpu"].append(cpu)

    failures = []
    changed = None
    for i in range(args.repeat):
        w, c, _, _ = timed([sys.executable, "-c", FLOOR_CODE, *files], env)
        note("floor", w, c)
        w, c, _, _ = timed([sys.executable, "-c", HASH_CODE, *files], env)
        note("hash", w, c)
        wh = work / f"wh{i}" / "coop.duckdb"
        run = COOP + ["run", "--raw-dir", str(raw), "--warehouse", str(wh)]
        w, c, rc, out = timed(run, env)
        note("cold", w, c)
        if rc != 0:
            failures.append(("cold", out))
        changed = change_one(files)
        w, c, _, _ = timed([sys.executable, "-c", FLOOR_CODE, changed], env)
        note("floor1", w, c)
        w, c, rc, out = timed(run, env)
        note("changed", w, c)
        if rc != 0:
            failures.append(("changed", out))
        w, c, rc, out = timed(run, env)
        note("unchanged", w, c)
        if rc != 0:
            failures.append(("unchanged", out))
        print(f"round {i + 1}: " + ", ".join(f"{k} {v['wall'][-1]:.2f} s" for k, v in res.items()), flush=True)

    if args.national:
        vn = work / "vn" / "raw"
        gen = subprocess.run([sys.executable, str(ROOT / "scripts" / "national_sample.py"), "--out", str(vn)],
                             cwd=ROOT, capture_output=True, text=True, env=env)
        vn_files = data_files(vn)
        if gen.returncode != 0 or not vn_files:
            failures.append(("national sample", gen.stdout[-2000:] + gen.stderr[-2000:]))
        else:
            venv = dict(env, COOP_PROVINCE="VN")
            w, c, _, _ = timed([sys.executable, "-c", FLOOR_CODE, *vn_files], venv)
            note("vn_floor", w, c)
            w, c, rc, out = timed(COOP + ["run", "--raw-dir", str(vn), "--warehouse",
                                          str(work / "whvn" / "coop.duckdb")], venv)
            note("vn_cold", w, c)
            if rc != 0:
                failures.append(("national cold", out))
            print(f"national: {len(vn_files)} files, floor {res['vn_floor']['wall'][-1]:.2f} s, "
                  f"cold {w:.2f} s", flush=True)

    profile = ""
    if not args.no_profile:
        prof = work / "cold.prof"
        wh = work / "whprof" / "coop.duckdb"
        timed([sys.executable, "-c", PROFILE_CODE, str(prof), "run", "--raw-dir", str(raw), "--warehouse", str(wh)],
              env)
        if prof.exists():
            import pstats

            def top(sort: str, *restrict: object) -> str:
                buf = io.StringIO()
                st = pstats.Stats(str(prof), stream=buf)
                if len(restrict) == 1:  # no path filter: short names
                    st.strip_dirs()
                st.sort_stats(sort).print_stats(*restrict)
                text = buf.getvalue()
                return text[text.find("   ncalls"):].rstrip() if "   ncalls" in text else text.rstrip()

            # waits (locks, futures) dominate a merged multi-thread profile: coop's own functions
            # by cumulative time, then where the CPU goes (own time, any code)
            profile = ("-- coop's own functions (coop/, flows/, schemas/), top 15 by cumulative time\n"
                       + top("cumulative", r"/(coop|flows|schemas)/", 15)
                       + "\n\n-- every function, top 15 by own (tottime) time, waits included\n"
                       + top("tottime", 15))

    floor, hash_floor, floor1 = (median(res[k]["wall"]) for k in ("floor", "hash", "floor1"))
    table = [
        "| case | wall (median) | CPU | × floor (bare read of all files) | own floor | × own floor |",
        "|---|---:|---:|---:|---|---:|",
    ]
    own = {"floor": ("—", None), "cold": ("bare read, all files", floor),
           "changed": (f"1.5 s + 3 × bare read of that file = {1.5 + 3 * floor1:.2f} s", 1.5 + 3 * floor1),
           "unchanged": ("hashing every file", hash_floor)}
    labels = {"floor": "floor: bare fastexcel read of every file", "hash": "hashing every file (sha256)",
              "cold": "cold `coop run`, no Prefect server configured", "floor1": "bare read of the changed file",
              "changed": "one file changed, `coop run`", "unchanged": "nothing changed, `coop run`"}
    for case in ("floor", "hash", "floor1", "cold", "changed", "unchanged"):
        wall, cpu = median(res[case]["wall"]), median(res[case]["cpu"])
        what, ref = own.get(case, ("—", None))
        table.append(f"| {labels[case]} | {wall:.2f} s | {cpu:.2f} s | {wall / floor:.1f}× | {what} | "
                     + (f"{wall / ref:.2f}×" if ref else "—") + " |")

    if "vn_cold" in res:
        vf, vw, vc = median(res["vn_floor"]["wall"]), median(res["vn_cold"]["wall"]), median(res["vn_cold"]["cpu"])
        table.append(f"| national (scripts/national_sample.py, every province, {len(vn_files)} files): bare read "
                     f"| {vf:.2f} s | {median(res['vn_floor']['cpu']):.2f} s | — | — | — |")
        table.append(f"| national: cold `coop run`, `COOP_PROVINCE=VN` | {vw:.2f} s | {vc:.2f} s | — | "
                     f"bare read of those files | {vw / vf:.2f}× |")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = (f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by `make bench` "
            f"(`scripts/benchmark.py --scale {args.scale} --repeat {args.repeat}{' --national' if args.national else ''}`): {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}, load average at the end {load:.1f}. "
            f"Sample ×{args.scale}: {len(files)} files, {mib:.1f} MiB, {rows:,} valid register rows. "
            f"Whole processes, medians of {args.repeat}; CPU = user + system of the process tree. "
            f"One-off before timing: the migrated Prefect database template made in {template_s:.1f} s "
            "(once per machine and Prefect version; 0 when it already exists).")
    section = [BEGIN, "", head, "", *table, ""]
    if failures:
        section += ["**Failed runs:** " + ", ".join(c for c, _ in failures), ""]
    if profile:
        section += ["Profile of the cold run (cProfile, every thread of the `coop run` process merged; the "
                    "temporary Prefect server and reader worker processes are other processes):", "",
                    "```", profile, "```", ""]
    section.append(END)
    text = "\n".join(section)
    print(text)
    for case, out in failures:
        sys.stderr.write(f"--- {case} failed:\n{out}\n")
    if not args.no_doc:
        doc = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n\n" + BEGIN + "\n" + END + "\n"
        if BEGIN in doc and END in doc:
            doc = doc[:doc.index(BEGIN)] + text + doc[doc.index(END) + len(END):]
        else:
            doc = doc.rstrip() + "\n\n" + text + "\n"
        DOC.write_text(doc, encoding="utf-8")
        print(f"written: {DOC.relative_to(ROOT)}")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
