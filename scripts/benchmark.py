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

`--national` (`make bench NATIONAL=1`) measures instead the national scale of issue 10
(target 4): `scripts/national_sample.py` writes every unit of every province of today
(district era 2023–2024, commune era 2025–2026; `--national-scale`, `--national-provinces`,
`--national-max-units` for a fraction, `--national-dir` to reuse a folder written before,
`--national-full-dir` to measure the whole country's floor beside a fraction's runs),
then, with `COOP_PROVINCE=VN`: the floor, a cold run, nothing changed, one file changed, each
with the peak memory of its process tree (psutil, sampled every 0.25 s), and the rows loaded
checked against the generator's ground truth. Written between the `bench-national:begin`/
`bench-national:end` markers of docs/performance.md.
"""

from __future__ import annotations

import argparse
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin (written by `make bench`) -->", "<!-- bench:end -->"
COOP = [sys.executable, "-m", "coop.cli"]
EXCEL = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")

#: Paths on the command line, or `@FILE` holding one path a line (the national case's 12,000).
ARGS = r"""
import sys
def paths():
    for a in sys.argv[1:]:
        if a.startswith("@"):
            yield from open(a[1:], encoding="utf-8").read().splitlines()
        else:
            yield a
"""

FLOOR_CODE = ARGS + r"""
import fastexcel, polars
for p in paths():
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

HASH_CODE = ARGS + r"""
import hashlib
for p in paths():
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
"""

#: The naive script of the issue's baseline (there: pandas + openpyxl; pandas is not in the lock,
#: so the same readers without it): openpyxl for workbooks, odfpy for .ods, the csv module —
#: every cell into Python lists, as a hand-written reader would. .xls (no reader in the lock
#: but calamine) is read with fastexcel.
NAIVE_CODE = ARGS + r"""
import csv, fastexcel, openpyxl
from odf.opendocument import load as odf_load
from odf.table import Table, TableRow, TableCell
from odf import teletype
for p in paths():
    low = p.lower()
    rows = []
    try:
        if low.endswith(".csv"):
            with open(p, encoding="utf-8-sig", errors="replace", newline="") as f:
                rows = list(csv.reader(f))
        elif low.endswith((".xlsx", ".xlsm")):
            wb = openpyxl.load_workbook(p, data_only=True)
            for ws in wb.worksheets:
                rows += [list(r) for r in ws.iter_rows(values_only=True)]
        elif low.endswith(".ods"):
            for t in odf_load(p).spreadsheet.getElementsByType(Table):
                for r in t.getElementsByType(TableRow):
                    rows.append([teletype.extractText(c) for c in r.getElementsByType(TableCell)])
        else:
            r = fastexcel.read_excel(p)
            for name in r.sheet_names:
                rows += r.load_sheet(name, header_row=None).to_polars().rows()
    except Exception:
        pass
"""

#: The same flow body (flows/nightly.py) with Prefect taken out: `prefect` replaced by identity
#: decorators and a thread pool for `.submit` (the flow's own worker count), so that
#: cold run − this = what orchestration adds (Prefect's API calls, its server, its workers).
NOPREFECT_CODE = r"""
import concurrent.futures as cf, os, sys, types
from pathlib import Path
pool = cf.ThreadPoolExecutor(max_workers=int(os.environ.get("COOP_READ_WORKERS") or 0) or os.cpu_count() or 1)
class _Task:
    def __init__(self, fn):
        self.fn = fn
    def __call__(self, *a, **k):
        return self.fn(*a, **k)
    def submit(self, *a, **k):
        return pool.submit(self.fn, *a, **k)
def task(*a, **k):
    return _Task(a[0]) if a and callable(a[0]) else _Task
def flow(*a, **k):
    return a[0] if a and callable(a[0]) else (lambda fn: fn)
def get_run_logger():
    raise RuntimeError("no Prefect run context")
class TaskRunner:
    def __init__(self, *a, **k):
        pass
prefect = types.ModuleType("prefect")
prefect.flow, prefect.task, prefect.get_run_logger = flow, task, get_run_logger
cache = types.ModuleType("prefect.cache_policies"); cache.NO_CACHE = None
runners = types.ModuleType("prefect.task_runners"); runners.TaskRunner = runners.ThreadPoolTaskRunner = TaskRunner
annot = types.ModuleType("prefect.utilities.annotations"); annot.quote = lambda x: x
sys.modules.update({"prefect": prefect, "prefect.cache_policies": cache, "prefect.task_runners": runners,
                    "prefect.utilities": types.ModuleType("prefect.utilities"), "prefect.utilities.annotations": annot,
                    "prefect.artifacts": types.ModuleType("prefect.artifacts")})  # no artifacts: the report task says so
from flows.nightly import nightly_run
summary = nightly_run(Path(sys.argv[1]), Path(sys.argv[2]))
assert summary.status == "published", summary
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


#: Where coop's code is run from: a copy of the project's code made at the start (snapshot_code).
CODE = ROOT
SNAPSHOT = ("coop", "flows", "schemas", "sql", "pyproject.toml", "coop.toml")


def snapshot_code(dest: Path) -> None:
    """Copy the code and data coop runs from (its package, flows, schemas, SQL, settings) to dest."""
    for name in SNAPSHOT:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    # compiled once, as an installed package is (pip/uv compile at install): with
    # PYTHONDONTWRITEBYTECODE set, every process would otherwise compile coop's modules again
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(dest / d) for d in ("coop", "flows", "schemas"))],
                   check=False, capture_output=True)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """Run cmd in a child: (wall seconds, CPU seconds of the child tree, exit code, output tail)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=CODE, capture_output=True, text=True, env=env)
    secs = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return secs, cpu, proc.returncode, (proc.stdout[-2000:] + proc.stderr[-2000:])


class LongLivedServer:
    """`prefect server start` (no UI) on a copy of the migrated template, for the "with a
    server" case: `PREFECT_API_URL` then points at it, as in production; its CPU is not the run's."""

    def __init__(self, work: Path, env: dict[str, str]):
        import socket
        import urllib.request

        home = work / "prefect-home"
        home.mkdir(parents=True, exist_ok=True)
        tpl = subprocess.run([sys.executable, "-c", "from coop.run.prefect_env import ensure_template; "
                              "print(ensure_template() or '')"], cwd=CODE, env=env, capture_output=True, text=True)
        db = home / "prefect.db"
        senv = {**env, "PREFECT_HOME": str(home), "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{db}"}
        if tpl.stdout.strip():
            shutil.copy(tpl.stdout.strip().splitlines()[-1], db)
            senv.update(PREFECT_API_DATABASE_MIGRATE_ON_START="false", PREFECT_API_BLOCKS_REGISTER_ON_START="false")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                      "--port", str(port), "--no-ui"], env=senv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=CODE)
        self.url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the Prefect server did not start within 180 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


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
    import openpyxl  # type: ignore[import-untyped]

    path = [f for f in files if f.lower().endswith(".xlsx")][len(files) // 2]
    wb = openpyxl.load_workbook(path)
    wb.properties.title = f"bench {time.time()}"
    wb.save(path)
    return path


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# ----------------------------------------------------------------------------- national scale (issue 10, target 4)

NBEGIN, NEND = "<!-- bench-national:begin (written by `make bench NATIONAL=1`) -->", "<!-- bench-national:end -->"
SAMPLE_EVERY = 0.25  # seconds between two memory samples of a process tree


def _proc_children(pid: int) -> list[int]:
    """Descendants of pid from /proc (the fallback when psutil is missing)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as fh:
                    kids = [int(x) for x in fh.read().split()]
                out += kids
                todo += kids
        except OSError:
            pass
    return out


def _proc_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in bytes from /proc (PSS = RSS when smaps_rollup is missing)."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        pss = rss
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return rss, pss


def tree_memory(pid: int) -> tuple[int, int, int, int]:
    """(sum of RSS, sum of PSS, largest single RSS, processes) of pid and its descendants now.
    RSS counts pages shared between the processes once per process; PSS shares them out."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        pids = [pid, *_proc_children(pid)]
        mem = [_proc_memory(p) for p in pids]
        return sum(r for r, _ in mem), sum(p for _, p in mem), max((r for r, _ in mem), default=0), len(pids)
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0, 0, 0
    rss = pss = big = 0
    for q in procs:
        try:
            m = q.memory_full_info()
            r, s_ = m.rss, getattr(m, "pss", m.rss)
        except psutil.AccessDenied:
            try:
                r = s_ = q.memory_info().rss
            except psutil.Error:
                continue
        except psutil.Error:
            continue
        rss, pss, big = rss + r, pss + s_, max(big, r)
    return rss, pss, big, len(procs)


def measured(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run cmd in a child and watch it: wall, CPU of the (waited-for) process tree, exit code,
    output tail, and the peaks of its process tree's memory (sampled every SAMPLE_EVERY s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = {"rss": 0, "pss": 0, "largest": 0, "procs": 0}
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=CODE, env=env, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            rss, pss, big, n = tree_memory(proc.pid)
            peak = {"rss": max(peak["rss"], rss), "pss": max(peak["pss"], pss),
                    "largest": max(peak["largest"], big), "procs": max(peak["procs"], n)}
            time.sleep(SAMPLE_EVERY)
        wall = time.perf_counter() - t0
        log.seek(0)
        out = log.read().decode("utf-8", "replace")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "rc": proc.returncode, "out": out[-3000:], **peak}


def loaded_rows(warehouse: Path) -> tuple[dict[str, dict[str, int]], int | None]:
    """Rows per form and year in the built warehouse's raw.* tables, and the quarantined rows
    of its last run (audit.runs.rows_rejected)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        got: dict[str, dict[str, int]] = {}
        for form, table in (("HTX", "raw.htx"), ("THT", "raw.tht"), ("HO_TRO", "raw.ho_tro")):
            counts = con.execute(f"SELECT year, count(*) FROM {table} GROUP BY year").fetchall()
            got[form] = {str(y): n for y, n in counts}
        row = con.execute("SELECT rows_rejected FROM audit.runs ORDER BY started_at DESC LIMIT 1").fetchone()
        return got, (row[0] if row else None)
    finally:
        con.close()


def finish(args: argparse.Namespace, work: Path, section: list[str], failures: list[tuple[str, str]],
           begin: str, end: str) -> int:
    """Print the section, write it between its markers of docs/performance.md (unless
    --no-doc), report failed runs, remove the work folder (unless --keep); the exit code."""
    text = "\n".join([*section, end])
    print(text)
    for case, out in failures:
        sys.stderr.write(f"--- {case} failed:\n{out}\n")
    if not args.no_doc:
        write_section(begin, end, text)
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


def write_section(begin: str, end: str, text: str) -> None:
    """Replace the generated section between `begin` and `end` in docs/performance.md (append it
    when missing)."""
    doc = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n"
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + text + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + "\n\n" + text + "\n"
    DOC.write_text(doc, encoding="utf-8")
    print(f"written: {DOC.relative_to(ROOT)}")


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def full_unit_years() -> dict[str, int]:
    """Units expected per report year 2023-2026 in the whole country (coop.reference, `VN`)."""
    code = ("from coop.reference import load_reference; import json; r = load_reference(province='VN'); "
            "print(json.dumps({y: len(r.units_expected(y)) for y in (2023, 2024, 2025, 2026)}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=CODE, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(CODE)))
    try:
        return {str(k): int(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}
    except (ValueError, IndexError):
        return {"2023": 696, "2024": 696, "2025": 3321, "2026": 3321}   # the reference of 2025


def national(args: argparse.Namespace, env: dict[str, str]) -> int:
    """The national case: generate (or reuse) the country's raw folder, then floor, cold,
    nothing changed and one file changed with COOP_PROVINCE=VN, each watched for memory."""
    work = Path(tempfile.mkdtemp(prefix="coop-bench-vn-"))
    raw = args.national_dir or work / "raw"
    truth_path = raw.parent / "national_truth.json"
    write_path = raw.parent / "national_write.json"
    # a loaded machine may need more than Prefect's 120 s to start the local API: wait, don't fail
    env = dict(env)
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "900")
    venv = dict(env, COOP_PROVINCE="VN")
    failures: list[tuple[str, str]] = []
    load0 = os.getloadavg()[0]
    gen_cmd = [sys.executable, str(ROOT / "scripts" / "national_sample.py"), "--out", str(raw),
               "--scale", f"{args.national_scale:g}"]
    if args.national_provinces:
        gen_cmd += ["--provinces", args.national_provinces]
    if args.national_max_units:
        gen_cmd += ["--max-units", str(args.national_max_units)]
    if args.national_dir is None or not truth_path.exists() or not raw.is_dir():
        print("writing the national sample: " + " ".join(gen_cmd[1:]), flush=True)
        m = measured(gen_cmd, env)
        if m["rc"] != 0:
            sys.stderr.write(m["out"])
            return 1
        print(m["out"].strip().splitlines()[-1], flush=True)
    else:
        print(f"reusing {raw} ({truth_path.name})", flush=True)
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    written = json.loads(write_path.read_text(encoding="utf-8")) if write_path.exists() else {}
    files = data_files(raw)
    listing = work / "files.txt"
    listing.write_text("\n".join(files) + "\n", encoding="utf-8")
    mib = sum(os.path.getsize(f) for f in files) / 2**20
    print(f"national: {len(files):,} files ({mib:.0f} MiB), {truth['rows_total']:,} rows", flush=True)

    subprocess.run([sys.executable, "-c", "from coop.run.prefect_env import ensure_template; ensure_template()"],
                   cwd=CODE, env=env, check=False)
    res: dict[str, dict[str, Any]] = {}

    def step(case: str, cmd: list[str], environ: dict[str, str]) -> dict[str, Any]:
        m = measured(cmd, environ)
        res[case] = m
        print(f"  {case}: {m['wall']:.1f} s wall, {m['cpu']:.1f} CPU-s, peak tree RSS {_gib(m['rss'])} "
              f"(PSS {_gib(m['pss'])}), exit {m['rc']}", flush=True)
        return m

    wh = work / "wh" / "coop.duckdb"
    run = COOP + ["run", "--raw-dir", str(raw), "--warehouse", str(wh)]
    step("floor", [sys.executable, "-c", FLOOR_CODE, f"@{listing}"], env)
    step("hash", [sys.executable, "-c", HASH_CODE, f"@{listing}"], env)
    if step("cold", run, venv)["rc"] != 0:
        failures.append(("cold", res["cold"]["out"]))
    check = ""
    if wh.exists():
        got, rejected = loaded_rows(wh)
        want = {f: {y: n for y, n in v.items() if n} for f, v in truth["rows"].items()}
        if got == want:
            check = (f"loaded rows = ground truth ({truth['rows_total']:,}: every form and year), "
                     f"{rejected} quarantined")
        else:
            diff = {f: {y: (want[f].get(y, 0), got[f].get(y, 0)) for y in sorted(set(want[f]) | set(got[f]))
                        if want[f].get(y, 0) != got[f].get(y, 0)} for f in want}
            check = f"**loaded rows differ from the ground truth** (form: year: (truth, loaded)): {diff}"
            failures.append(("rows", check))
        print("  " + check, flush=True)
    if step("unchanged", run, venv)["rc"] != 0:
        failures.append(("unchanged", res["unchanged"]["out"]))
    if step("unchanged_quick", run, venv)["rc"] != 0:  # the nights after the first no-op (coop.run.quick)
        failures.append(("unchanged_quick", res["unchanged_quick"]["out"]))
    changed = change_one(files)
    original = None
    if changed.lower().endswith(".csv"):
        original = Path(changed).read_bytes()[:-1]            # change_one appended one newline
    step("floor1", [sys.executable, "-c", FLOOR_CODE, changed], env)
    if step("changed", run, venv)["rc"] != 0:
        failures.append(("changed", res["changed"]["out"]))
    if original is not None and args.national_dir is not None:
        Path(changed).write_bytes(original)                   # leave the reused folder as it was

    # A fraction of the country: a second point, one unit per year of one province (the same
    # scale), to separate the fixed cost of a run from what grows with the units.
    full_uy = sum(full_unit_years().values())
    unit_years = sum(truth["units"].values())
    tiny: dict[str, Any] = {}
    if unit_years < full_uy:
        traw = work / "tiny" / "raw"
        first = truth["provinces"][0]
        m = measured([sys.executable, str(ROOT / "scripts" / "national_sample.py"), "--out", str(traw),
                      "--scale", f"{args.national_scale:g}", "--provinces", first, "--max-units", "1"], env)
        if m["rc"] == 0:
            tfiles = data_files(traw)
            tlist = work / "tiny.txt"
            tlist.write_text("\n".join(tfiles) + "\n", encoding="utf-8")
            tiny["files"] = len(tfiles)
            tiny["units"] = sum(json.loads((traw.parent / "national_truth.json").read_text("utf-8"))["units"].values())
            step("tiny_floor", [sys.executable, "-c", FLOOR_CODE, f"@{tlist}"], env)
            step("tiny_cold", COOP + ["run", "--raw-dir", str(traw), "--warehouse", str(work / "tiny" / "wh" /
                                                                                       "coop.duckdb")], venv)
    full_files: list[str] = []
    if args.national_full_dir is not None and (args.national_full_dir.parent / "national_truth.json").exists():
        # the whole country written before (national_sample.py at scale 1): its floor, measured
        full_files = data_files(args.national_full_dir)
        flist = work / "full.txt"
        flist.write_text("\n".join(full_files) + "\n", encoding="utf-8")
        step("full_floor", [sys.executable, "-c", FLOOR_CODE, f"@{flist}"], env)
        step("full_hash", [sys.executable, "-c", HASH_CODE, f"@{flist}"], env)
    load1 = os.getloadavg()[0]

    floor, hash_floor, floor1 = res["floor"]["wall"], res["hash"]["wall"], res["floor1"]["wall"]
    cfloor = res["floor"]["cpu"]
    targets = {"cold": ("≤ 3 × the floor, peak RSS ≤ 2 GB", 3 * floor),
               "unchanged": ("≤ 1.2 × hashing every file", 1.2 * hash_floor),
               "unchanged_quick": ("≤ 1.2 × hashing every file", 1.2 * hash_floor),
               "changed": (f"≤ 1.5 s + 3 × bare read of that file = {1.5 + 3 * floor1:.2f} s", 1.5 + 3 * floor1)}
    labels = {"floor": "floor: bare fastexcel read of every file", "hash": "hashing every file (sha256)",
              "cold": "cold `coop run` (`COOP_PROVINCE=VN`), new warehouse",
              "unchanged": "nothing changed, `coop run` (the first no-op after a publish: the full check)",
              "unchanged_quick": "nothing changed again (the quick check)", "floor1": "bare read of the changed file",
              "changed": "one file changed, `coop run`"}
    table = ["| case | wall | CPU | × floor (wall) | × floor (CPU) | peak RSS, process tree | PSS | largest process "
             "| target (issue 10) | met |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for case in ("floor", "hash", "floor1", "cold", "unchanged", "unchanged_quick", "changed"):
        m = res[case]
        what, limit = targets.get(case, ("—", None))
        met = "—"
        if limit is not None:
            ok = m["wall"] <= limit and (case != "cold" or m["rss"] <= 2 * 10**9)
            met = "yes" if ok else f"no ({m['wall'] / limit:.1f}× the limit)"
        table.append(f"| {labels[case]} | {m['wall']:.1f} s | {m['cpu']:.1f} s | {m['wall'] / floor:.1f}× | "
                     f"{m['cpu'] / cfloor:.1f}× | {_gib(m['rss'])} | {_gib(m['pss'])} | {_gib(m['largest'])} "
                     f"({m['procs']} proc.) | {what} | {met} |")

    fraction = unit_years / full_uy
    gen = " ".join(["scripts/national_sample.py", *gen_cmd[2:]]).replace(str(raw), "DIR")
    wtext = (f"written in {written['wall_s']:.0f} s wall, {written['cpu_s']:.0f} CPU-s ({written['jobs']} processes, "
             f"load average {written['load']:.1f})" if written else "")
    head = (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench NATIONAL=1` "
            f"(`scripts/benchmark.py --national"
            + (f" --national-scale {args.national_scale:g}" if args.national_scale != 1 else "")
            + (f" --national-provinces {args.national_provinces}" if args.national_provinces else "")
            + (f" --national-max-units {args.national_max_units}" if args.national_max_units else "")
            + f"`): {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
            f"load average {load0:.1f} at the start, {load1:.1f} at the end. Input: `{gen}`: "
            f"{len(truth['provinces'])} provinces of today, units per year {truth['units']} "
            f"({unit_years:,} of the country's {full_uy:,} unit-years), {len(files):,} files "
            f"({mib:.0f} MiB; {truth['formats']}), {truth['rows_total']:,} rows to load "
            f"({truth['register_rows']:,} register rows HTX + THT); {wtext}. Whole processes, one run each; "
            "CPU = user + system of the process tree; memory sampled every "
            f"{SAMPLE_EVERY:g} s over the process tree (coop, its Prefect server, reader workers); coop run "
            "from a copy of its code taken at the start.")
    section = [NBEGIN, "", head, "", *table, ""]
    if check:
        section += [f"Check after the cold run: {check}.", ""]
    if fraction < 1 and "tiny_cold" in res and res["tiny_cold"]["rc"] == 0 and unit_years > tiny["units"]:
        k = (full_uy - tiny["units"]) / (unit_years - tiny["units"])

        def ext(case: str, key: str) -> float:
            a, b = res[f"tiny_{case}"][key], res[case][key]
            return float(a + (b - a) * k)

        t0, tf = res["tiny_cold"], res["tiny_floor"]
        est_floor, est_cold, est_cpu = ext("floor", "wall"), ext("cold", "wall"), ext("cold", "cpu")
        est_cfloor = ext("floor", "cpu")
        section += [
            f"**Measured on a fraction**: {unit_years:,} of the country's {full_uy:,} unit-years "
            f"({fraction:.1%}){'' if args.national_scale == 1 else f', rows per file ×{args.national_scale:g}'}. "
            f"Second point, same session: one unit a year of province {truth['provinces'][0]} ({tiny['units']} "
            f"unit-years, {tiny['files']} files): floor {tf['wall']:.1f} s wall / {tf['cpu']:.1f} CPU-s, cold run "
            f"{t0['wall']:.1f} s wall / {t0['cpu']:.1f} CPU-s, peak tree RSS {_gib(t0['rss'])} (the fixed cost "
            "of a run). **Extrapolated** along the line through the two points to every unit of the country "
            f"(an estimate, not a measurement): floor ≈ {est_floor:.0f} s wall / {est_cfloor:.0f} CPU-s, cold ≈ "
            f"{est_cold:.0f} s wall / {est_cpu:.0f} CPU-s = {est_cold / est_floor:.1f}× the floor in wall, "
            f"{est_cpu / est_cfloor:.1f}× in CPU; peak tree RSS ≈ {_gib(ext('cold', 'rss'))} if it grew in "
            "proportion to the units (it need not: it depends on what a run holds at once).", ""]
        if "full_floor" in res:
            ff, fh = res["full_floor"], res["full_hash"]
            section += [
                f"The whole country's floor, **measured** on a complete folder written before "
                f"(`national_sample.py --scale 1`, {len(full_files):,} files): bare read {ff['wall']:.1f} s wall / "
                f"{ff['cpu']:.1f} CPU-s, hashing {fh['wall']:.1f} s / {fh['cpu']:.1f} CPU-s. Against it the "
                f"extrapolated cold run is ≈ {est_cold / ff['wall']:.0f}× the floor in wall and "
                f"≈ {est_cpu / ff['cpu']:.0f}× in CPU (target: 3×).", ""]
    if failures:
        section += ["**Failed:** " + ", ".join(c for c, _ in failures), ""]
    return finish(args, work, section, failures, NBEGIN, NEND)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2, help="runs per case (median)")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--no-doc", action="store_true", help="print only; leave docs/performance.md alone")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--national", action="store_true",
                    help="the national case instead (scripts/national_sample.py, COOP_PROVINCE=VN; "
                         "make bench NATIONAL=1)")
    ap.add_argument("--national-scale", type=float, default=1.0, help="rows per file ×K (national_sample --scale)")
    ap.add_argument("--national-provinces", default="", help="a fraction: these provinces of today only")
    ap.add_argument("--national-max-units", type=int, default=None, help="a fraction: units per province and year")
    ap.add_argument("--national-dir", type=Path, default=None,
                    help="reuse this raw folder (and national_truth.json beside it) when it exists, "
                         "else write it there")
    ap.add_argument("--national-full-dir", type=Path, default=None,
                    help="with a fraction: a complete national raw folder written before, whose floor is measured too")
    args = ap.parse_args()

    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env.setdefault("COOP_LOG_LEVEL", "WARNING")
    # coop runs from a copy of its code taken now: edits made to the tree while the benchmark
    # runs (a shared tree) neither mix into the figures nor change the build fingerprint
    # between two runs (which would turn "nothing changed" into a rebuild)
    global CODE
    CODE = Path(tempfile.mkdtemp(prefix="coop-bench-code-"))
    snapshot_code(CODE)
    env["PYTHONPATH"] = os.pathsep.join([str(CODE), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    try:
        return national(args, env) if args.national else small(args, env)
    finally:
        shutil.rmtree(CODE, ignore_errors=True)


def _rounds(args: argparse.Namespace, env: dict[str, str], raw: Path, work: Path, files: list[str],
            res: dict[str, dict[str, list[float]]], failures: list[tuple[str, str]],
            server: LongLivedServer | None) -> None:
    """`--repeat` rounds of every case, alternating (each case's runs spread over the machine's load)."""

    def note(case: str, wall: float, cpu: float) -> None:
        res.setdefault(case, {"wall": [], "cpu": []})
        res[case]["wall"].append(wall)
        res[case]["cpu"].append(cpu)

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
        w, c, _, _ = timed([sys.executable, "-c", NAIVE_CODE, *files], env)
        note("naive", w, c)
        w, c, rc, out = timed([sys.executable, "-c", NOPREFECT_CODE, str(raw), str(work / f"whn{i}" / "coop.duckdb")],
                              env)
        note("noprefect", w, c)
        if rc != 0:
            failures.append(("noprefect", out))
        if server is not None:
            w, c, rc, out = timed(COOP + ["run", "--raw-dir", str(raw), "--warehouse", str(work / f"whs{i}" / "coop.duckdb")],
                                  {**env, "PREFECT_API_URL": server.url})
            note("server", w, c)
            if rc != 0:
                failures.append(("server", out))
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
        w, c, rc, out = timed(run, env)  # the nights after the first no-op: the quick check (coop.run.quick)
        note("unchanged_quick", w, c)
        if rc != 0:
            failures.append(("unchanged_quick", out))
        if server is not None:  # the same two reruns in the production setting (a long-lived server)
            run_s = COOP + ["run", "--raw-dir", str(raw), "--warehouse", str(work / f"whs{i}" / "coop.duckdb")]
            for case in ("changed_server", "unchanged_server"):
                w, c, rc, out = timed(run_s, {**env, "PREFECT_API_URL": server.url})
                note(case, w, c)
                if rc != 0:
                    failures.append((case, out))
        print(f"round {i + 1}: " + ", ".join(f"{k} {v['wall'][-1]:.2f} s" for k, v in res.items()), flush=True)


def small(args: argparse.Namespace, env: dict[str, str]) -> int:
    """The sample ×`--scale` cases (`make bench`)."""
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
                   cwd=CODE, env=env, check=False)
    template_s = time.perf_counter() - t

    res: dict[str, dict[str, list[float]]] = {}
    failures: list[tuple[str, str]] = []
    try:
        server: LongLivedServer | None = LongLivedServer(work, env)
    except (RuntimeError, OSError) as e:
        print(f"no long-lived Prefect server for the 'with a server' case: {e}", flush=True)
        server = None
    try:
        _rounds(args, env, raw, work, files, res, failures, server)
    finally:
        if server is not None:
            server.stop()
    profile = ""
    if not args.no_profile:
        prof = work / "cold.prof"
        wh = work / "whprof" / "coop.duckdb"
        timed([sys.executable, "-c", PROFILE_CODE, str(prof), "run", "--raw-dir", str(raw), "--warehouse", str(wh)],
              env)
        if prof.exists():
            import pstats

            def top(sort: str, *restrict: str | int) -> str:
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
    own["changed_server"], own["unchanged_server"] = own["changed"], own["unchanged"]
    own["unchanged_quick"] = (f"1.2 × hashing every file = {1.2 * hash_floor:.2f} s", 1.2 * hash_floor)
    labels = {"floor": "floor: bare fastexcel read of every file", "hash": "hashing every file (sha256)",
              "cold": "cold `coop run`, no Prefect server configured", "floor1": "bare read of the changed file",
              "changed": "one file changed, `coop run`",
              "unchanged": "nothing changed, `coop run` (the first no-op after a publish: the full check)",
              "unchanged_quick": "nothing changed again, `coop run` (the quick check of coop.run.quick)"}
    own["cold"] = (f"bare read + 2.5 s = {floor + 2.5:.2f} s", floor + 2.5)
    labels.update(naive="naive script: openpyxl / odfpy / csv into Python lists (the issue's pandas + openpyxl)",
                  noprefect="the same flow body with Prefect taken out (identity decorators, a thread pool)",
                  server="cold `coop run` with a long-lived Prefect server "
                         "(`PREFECT_API_URL` set; its CPU not counted)",
                  changed_server="one file changed, with the long-lived server",
                  unchanged_server="nothing changed, with the long-lived server (the flow runs: no fast path with a server)")
    for case in ("floor", "hash", "floor1", "naive", "noprefect", "cold", "server", "changed", "unchanged",
                 "unchanged_quick", "changed_server", "unchanged_server"):
        if case not in res:
            continue
        wall, cpu = median(res[case]["wall"]), median(res[case]["cpu"])
        what, ref = own.get(case, ("—", None))
        table.append(f"| {labels[case]} | {wall:.2f} s | {cpu:.2f} s | {wall / floor:.1f}× | {what} | "
                     + (f"{wall / ref:.2f}×" if ref else "—") + " |")
    cold_w, cold_c = median(res["cold"]["wall"]), median(res["cold"]["cpu"])
    derived = [f"- cold run against the naive script: {median(res['naive']['wall']) / cold_w:.2f}× faster "
               f"(target ≥ 5×); against the floor: {cold_w / floor:.1f}× (target ≤ 3× + 2.5 s fixed)."]
    if "noprefect" in res:
        np_w, np_c = median(res["noprefect"]["wall"]), median(res["noprefect"]["cpu"])
        derived.append(f"- Prefect's share of a cold run with no server configured: {cold_w - np_w:+.2f} s wall "
                       f"({(cold_w - np_w) / cold_w:.0%}), {cold_c - np_c:+.2f} CPU-s ({(cold_c - np_c) / cold_c:.0%}; "
                       "the temporary API's start included) (target ≤ 10 %).")
        if "server" in res:
            sv_w, sv_c = median(res["server"]["wall"]), median(res["server"]["cpu"])
            derived.append(f"- with a long-lived server: {sv_w - np_w:+.2f} s wall ({(sv_w - np_w) / sv_w:.0%}), "
                           f"{sv_c - np_c:+.2f} CPU-s of the run's own processes ({(sv_c - np_c) / sv_c:.0%}).")
    table += ["", *derived]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    head = (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` "
            f"(`scripts/benchmark.py --scale {args.scale} --repeat {args.repeat}`): {os.cpu_count()} cores, "
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
    return finish(args, work, section, failures, BEGIN, END)


if __name__ == "__main__":
    raise SystemExit(main())
