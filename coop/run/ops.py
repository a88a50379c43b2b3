"""Operating coop like a data platform: `coop plan`, `coop check`, `coop runs`, `coop --version`
and the warehouse's own metadata tables `meta.schema_version` / `meta.build_info`.

Built on the pipeline's own pieces, never a second implementation of them:

- `plan_report` (`coop plan`): discovery (`coop.ingest.discover.discover`), the run plan
  (`coop.run.planning.plan_from_discovery`: hashes with the stat cache, statuses against the published
  ledger `audit.files`, what to read, the build fingerprint) and the no-op test
  (`coop.run.planning.is_unchanged`), then resubmissions (`coop.ingest.normalize.select_submissions`, on the
  cached parsed files, reading in memory only the files of a folder holding several files that
  are not cached yet), the models (`coop.warehouse.models.discover_models`) and the publish guards
  (`coop.warehouse.guards`: the start-of-run checks as they are, and `check_publish` against a
  prediction of the build's ledger). It writes nothing: the planner's stat cache update goes
  to a throwaway copy of `.state/` in a temporary folder (the parsed-file cache is only read),
  the published warehouse is opened READ_ONLY, the run lock is not taken.
- `check_report` (`coop check`): `coop.warehouse.datatests.run_data_tests` against the published
  warehouse opened READ_ONLY; exit 1 when an error-level test fails.
- `list_runs` (`coop runs`): `audit.runs` of the published warehouse plus the runs it does not
  record yet (`.state/pending_runs.jsonl`: no-op, failed and refused runs), the data test counts
  from each run report (`<warehouse folder>/reports/run-<run_id>.md`), the run going now (the
  lock file, never taken). `coop runs show RUN_ID` prints that report.

Times shown to people are in the `timezone` setting with the zone named
(`coop.settings.local_time`); the warehouse stores naive UTC.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coop.warehouse import queries

if TYPE_CHECKING:
    import duckdb
    from rich.console import Console, JustifyMethod

    from coop.ingest.normalize import FileResult
    from coop.reference import Reference
    from coop.run.planning import Plan, PlannedFile

log = logging.getLogger(__name__)


def escape(text: object) -> str:
    """`text` safe inside rich markup (file names and reasons hold [brackets])."""
    from rich.markup import escape as _escape

    return _escape(str(text))

EXIT_OK = 0
EXIT_FAILED = 1

#: Version of the public tables (core.*, marts.*, the documented ref.* and audit.* columns).
#: Bump it, with a line in SCHEMA_HISTORY, whenever a public table or column changes meaning,
#: is renamed or removed, so that an analyst's script can check what it reads.
SCHEMA_VERSION = 2
SCHEMA_HISTORY = {
    1: "district reports (district_code), 2018-2024",
    2: "units over time (2025 reform)",
}


# =========================================================================== version
def coop_version() -> str:
    """The installed package's version (pyproject), else `coop.__version__`."""
    try:
        from importlib.metadata import version

        return version("coop")
    except Exception:  # noqa: BLE001 — not installed as a package (a plain checkout)
        from coop import __version__

        return __version__


def git_describe(root: Path | None = None) -> str | None:
    """`git describe --tags --always --dirty` of the checkout coop runs from; None without git
    or outside a repository. Never takes git's index lock (`--no-optional-locks`)."""
    from coop.paths import PROJECT_ROOT

    root = Path(root or PROJECT_ROOT)
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "--no-optional-locks", "-C", str(root), "describe", "--tags", "--always",
                              "--dirty"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _package_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 — not installed (or broken metadata): the version line leaves it out
        return None


def version_text() -> str:
    """`coop --version`: 'coop 0.1.0 (git 383cacd-dirty)' and the versions it runs on."""
    g = git_describe()
    head = f"coop {coop_version()}" + (f" (git {g})" if g else "")
    parts = [f"{n} {v}" for n in ("duckdb", "prefect", "polars") if (v := _package_version(n))]
    parts.append(f"python {sys.version.split()[0]}")
    return (head + "\n" + ", ".join(parts)
            + f"\nwarehouse schema version {SCHEMA_VERSION}: {SCHEMA_HISTORY[SCHEMA_VERSION]}")


# =========================================================================== meta.* tables
_META_DDL: dict[str, str] = {
    "meta.schema_version": "(version INTEGER, description VARCHAR)",
    "meta.build_info": """(
    run_id VARCHAR, built_at TIMESTAMP, coop_version VARCHAR, git_describe VARCHAR, duckdb_version VARCHAR,
    province_setting VARCHAR, province_code VARCHAR, province_name VARCHAR)""",
}

_META_COMMENTS: dict[str, tuple[str, dict[str, str]]] = {
    "meta.schema_version": (
        "Phiên bản lược đồ — version of the public tables (core.*, marts.*, documented ref.* and audit.* "
        "columns): one row. Raised whenever a public table or column changes meaning, is renamed or removed; "
        "an analyst's script can check it before reading (2 = units over time, the 2025 reform)", {
            "version": "Phiên bản — schema version (integer, only ever raised)",
            "description": "Mô tả — what this version changed",
        }),
    "meta.build_info": (
        "Thông tin bản dựng — the build this warehouse file is: one row, written by the run that built and "
        "published it (compare run_id with audit.runs to see whether your connection shows the latest publish)", {
            "run_id": "Mã lần chạy — run that built this file (audit.runs.run_id)",
            "built_at": "Thời điểm dựng — when the build was finished, just before publish (UTC)",
            "coop_version": "Phiên bản coop — version of the coop package that built it",
            "git_describe": "Phiên bản mã — git describe of the code that built it (NULL outside a git checkout)",
            "duckdb_version": "Phiên bản DuckDB — DuckDB library that wrote the file",
            "province_setting": "Thiết lập tỉnh — the province setting as given "
                                "(coop.toml / COOP_PROVINCE / --province)",
            "province_code": "Mã tỉnh — today's province served (GSO code; VN = the whole country)",
            "province_name": "Tên tỉnh — its name",
        }),
}


def create_meta_tables(con: duckdb.DuckDBPyConnection) -> None:
    """meta.schema_version (its one row) and an empty meta.build_info, with comments.
    Called by `coop.warehouse.load.create_tables`; the run fills meta.build_info (`write_build_info`)."""
    from coop.warehouse.db import comment_statements, run_in_transaction, sql_literal

    stmts = ["CREATE SCHEMA IF NOT EXISTS meta"]
    stmts += [f"CREATE TABLE IF NOT EXISTS {name} {cols}" for name, cols in _META_DDL.items()]
    stmts += comment_statements(_META_COMMENTS)
    stmts += ["DELETE FROM meta.schema_version",
              f"INSERT INTO meta.schema_version VALUES "
              f"({SCHEMA_VERSION}, {sql_literal(SCHEMA_HISTORY[SCHEMA_VERSION])})"]
    run_in_transaction(con, stmts)


def build_info(run_id: str, built_at: datetime | None = None) -> dict[str, Any]:
    """The meta.build_info row of a build made now by this process."""
    import duckdb

    from coop.reference import load_reference
    from coop.settings import load_settings

    t = built_at or datetime.now(UTC)
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    ref = load_reference()
    return {"run_id": run_id, "built_at": t, "coop_version": coop_version(), "git_describe": git_describe(),
            "duckdb_version": duckdb.__version__, "province_setting": load_settings().province,
            "province_code": ref.province_code, "province_name": ref.province_name}


def write_build_info(con: duckdb.DuckDBPyConnection, run_id: str, built_at: datetime | None = None) -> None:
    """Replace meta.build_info with this build's row (called by `coop.warehouse.load.finish_run`)."""
    from coop.warehouse.db import transaction

    row = build_info(run_id, built_at)
    cols = list(row)
    with transaction(con):
        con.execute("CREATE SCHEMA IF NOT EXISTS meta").fetchall()
        con.execute(f"CREATE TABLE IF NOT EXISTS meta.build_info {_META_DDL['meta.build_info']}").fetchall()
        con.execute("DELETE FROM meta.build_info").fetchall()
        con.execute(f"INSERT INTO meta.build_info ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                    [row[c] for c in cols]).fetchall()


def read_build_info(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """meta.build_info of an open warehouse; None for a file built before it existed."""
    try:
        cur = con.execute("SELECT * FROM meta.build_info LIMIT 1")
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    except Exception:  # noqa: BLE001 — duckdb.CatalogException on older files
        return None
    return dict(zip(cols, rows[0], strict=True)) if rows else None


# =========================================================================== small helpers
def _utc(value: object) -> datetime | None:
    """Aware UTC datetime from a naive-UTC datetime (warehouse) or ISO text (pending runs)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_local(value: object) -> str | None:
    from coop.settings import to_local

    t = to_local(_utc(value))
    return t.isoformat(timespec="seconds") if t else None


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    tty = (sys.stderr if stderr else sys.stdout).isatty()
    return Console(stderr=stderr, highlight=False, width=None if tty else 160, soft_wrap=not tty)


# =========================================================================== coop plan
@contextmanager
def _throwaway_state(warehouse: Path) -> Iterator[Path]:
    """A stand-in warehouse path in a temporary folder whose `.state/` is a copy of the real
    one's files (the stat cache the planner updates, published.json, retry.json...) with its
    folders (the parsed-file cache) linked, only read, and whose warehouse file is a link to
    the published one (opened READ_ONLY by `read_ledger`). Planning with it writes nothing
    under the warehouse folder."""
    from coop.run.store import state_dir

    warehouse = Path(warehouse)
    real = state_dir(warehouse)
    with tempfile.TemporaryDirectory(prefix="coop-plan-") as tmp:
        stand_in = Path(tmp) / warehouse.name
        if warehouse.exists():
            os.symlink(warehouse.resolve(), stand_in)
        state = state_dir(stand_in)
        state.mkdir()
        if real.is_dir():
            for entry in real.iterdir():
                if entry.name.startswith((".", "prefect.db")):  # temp files; Prefect's own database
                    continue
                if entry.is_dir():  # the parsed-file cache: only listed and read
                    os.symlink(entry.resolve(), state / entry.name)
                elif entry.is_file():  # hashes.json, published.json, retry.json, pending runs...
                    shutil.copyfile(entry, state / entry.name)
        yield stand_in


def _superseded(plan: Plan, reference: Reference, state: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Resubmissions the run would resolve: for each (year, unit) with several readable files,
    their parsed results (cache, else read in memory: nothing is stored) through the run's own
    `select_submissions`. -> (superseded sheets/files, files read to decide)."""
    from coop.ingest.normalize import ingest_file, select_submissions
    from coop.run import store

    groups: dict[tuple[int | None, str | None], list[PlannedFile]] = defaultdict(list)
    for f in plan.files:
        groups[(f.year, f.unit_code)].append(f)
    results: list[FileResult] = []
    read_now: list[str] = []
    for files in groups.values():
        if len(files) < 2:
            continue
        for f in files:
            r = None if f.read else store.load_result(state, f.cache_key, modified_at=f.modified_at)
            if r is None:
                try:
                    r = ingest_file(f.raw, reference)
                except Exception as e:  # noqa: BLE001 — the run would reject it (unreadable_file)
                    log.warning("coop plan: cannot read %s: %s", f.source_file, e)
                    continue
                read_now.append(f.source_file)
            results.append(r)
    if not results:
        return [], read_now
    selected = select_submissions(results)
    kept = {r.source_file for r in selected}
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None]] = set()
    for r in selected:
        for i in r.file_issues or []:
            if getattr(i, "reason_code", None) != "superseded":
                continue
            key = (i.source_file, i.sheet)
            if key in seen:
                continue
            seen.add(key)
            out.append({"source_file": i.source_file, "sheet": i.sheet, "whole_file": i.source_file not in kept,
                        "reason": i.reason})
    for r in results:  # dropped whole without a sheet-level note (defensive: the run adds one)
        if r.source_file not in kept and not any(o["source_file"] == r.source_file for o in out):
            out.append({"source_file": r.source_file, "sheet": None, "whole_file": True,
                        "reason": "Tệp đã được thay thế bởi bản nộp lại mới hơn trong cùng thư mục [superseded]"})
    out.sort(key=lambda o: (o["source_file"], o["sheet"] or ""))
    return out, read_now


def _predicted_build(folder: Path, warehouse: Path, plan: Plan, ledger: Mapping[str, Mapping[str, Any]],
                     superseded_files: set[str]) -> Path:
    """A small DuckDB file standing for the build the run would make, as far as the publish
    guards look at it before reading anything: the ledger (audit.files: file, status, year,
    unit) predicted from the plan, and the register row count of the published warehouse
    (rows are only known after reading: the rows guard is checked by the run)."""
    import duckdb

    from coop.run.planning import in_years
    from coop.warehouse.guards import REGISTER_TABLES

    rows: list[tuple[str, str | None, int | None, str | None]] = []  # audit.files: file, status, year, unit
    in_plan: set[str] = set()
    for f in plan.files:
        rows.append((f.source_file, "superseded" if f.source_file in superseded_files else f.status, f.year,
                     f.unit_code))
        in_plan.add(f.source_file)
    for s in plan.issue_files:
        y, u = plan.issue_where.get(s, (None, None))
        rows.append((s, "rejected", y, u))
        in_plan.add(s)
    for s in plan.removed:
        r = ledger.get(s) or {}
        rows.append((s, "removed", r.get("year"), r.get("unit_code")))
        in_plan.add(s)
    for s, r in ledger.items():  # a --years plan: the other years are carried over as published
        if s not in in_plan and not in_years(r.get("year"), plan.years):
            rows.append((s, r.get("status"), r.get("year"), r.get("unit_code")))
    con = queries.connect_read_only(warehouse)
    try:
        have = {f"{a}.{b}" for a, b in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}
        register = sum(int(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]) for t in REGISTER_TABLES
                       if t in have)
    finally:
        con.close()
    path = folder / "predicted.duckdb"
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA audit").fetchall()
        con.execute("CREATE TABLE audit.files (source_file VARCHAR, status VARCHAR, year INTEGER, unit_code VARCHAR)")
        if rows:
            con.executemany("INSERT INTO audit.files VALUES (?, ?, ?, ?)", rows)
        for t in REGISTER_TABLES:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {t.split('.')[0]}").fetchall()
        first, *rest = REGISTER_TABLES
        con.execute(f"CREATE TABLE {first} AS SELECT range AS n FROM range({register})").fetchall()
        for t in rest:
            con.execute(f"CREATE TABLE {t} (n BIGINT)").fetchall()
        con.execute("CHECKPOINT").fetchall()
    finally:
        con.close()
    return path


def _guards(raw_dir: Path, warehouse: Path, plan: Plan, ledger: Mapping[str, Mapping[str, Any]],
            superseded_files: set[str], allow_shrink: bool) -> dict[str, Any]:
    """The publish guards' verdict on this plan (`coop.warehouse.guards`): the start-of-run checks as the
    run makes them, and `check_publish` against the predicted ledger. A guard module that is
    missing or fails is reported, never fatal: the plan is only advice."""
    try:
        import coop.warehouse.guards as g
    except ImportError:
        return {"available": False, "failures": [], "refused": False,
                "note": "publish guards not installed (hook: coop.warehouse.guards.check_publish)"}
    try:
        settings = g.GuardSettings.load(allow_shrink=allow_shrink)
        failures = list(g.start_failures(raw_dir, warehouse))
        fatal = any(not f.overridable for f in failures)
        if Path(warehouse).exists() and not fatal:
            with tempfile.TemporaryDirectory(prefix="coop-plan-guards-") as tmp:
                predicted = _predicted_build(Path(tmp), Path(warehouse), plan, ledger, superseded_files)
                failures += list(g.check_publish(predicted, Path(warehouse), settings))
        refused = {id(f) for f in g.blocking(failures, settings)}
    except Exception as e:  # noqa: BLE001 — the plan is only advice: a guard that fails is reported, never fatal
        return {"available": True, "failures": [], "refused": False,
                "note": f"the guards could not be evaluated: {type(e).__name__}: {e}"}
    return {
        "available": True,
        "refused": bool(refused),
        "allow_shrink": allow_shrink,
        "failures": [{"code": f.code, "message_vi": f.message_vi, "message_en": f.message_en,
                      "overridable": f.overridable, "blocking": id(f) in refused, "items": list(f.items)}
                     for f in failures],
        "note": "the register rows guard is checked by the run, after reading (rows are not known before)",
    }


def plan_report(raw_dir: Path, warehouse: Path, years: tuple[int, int] | None = None,
                allow_shrink: bool = False) -> dict[str, Any]:
    """What `coop run` would do now, without doing any of it (see the module doc)."""
    from coop.ingest.discover import discover
    from coop.paths import SQL_DIR
    from coop.reference import load_reference
    from coop.run import planning, store
    from coop.warehouse.load import read_ledger
    from coop.warehouse.models import discover_models

    raw_dir, warehouse = Path(raw_dir), Path(warehouse)
    reference = load_reference()
    raw_files, issues = discover(raw_dir, reference, years)
    with _throwaway_state(warehouse) as stand_in:
        plan = planning.plan_from_discovery(raw_files, issues, raw_dir, stand_in, years)
        ledger = read_ledger(stand_in)
    unchanged = planning.is_unchanged(plan, warehouse)
    published = store.read_published(store.state_dir(warehouse))

    superseded, read_now = ([], []) if unchanged else _superseded(plan, reference, store.state_dir(warehouse))
    whole = {s["source_file"] for s in superseded if s["whole_file"]}

    by_status: dict[str, list[str]] = {"new": [], "changed": [], "unchanged": []}
    for f in plan.files:
        by_status[f.status].append(f.source_file)
    reasons: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in issues:
        reasons[i.source_file].append({"reason_code": i.reason_code, "reason": i.reason})
    rejected = [{"source_file": s, "status": plan.issue_status.get(s, "new"), **(reasons[s][0] if reasons[s] else {})}
                for s in sorted(plan.issue_files)]

    changed_years: set[int] = set()
    for f in plan.files:
        if f.status != "unchanged" and f.year is not None:
            changed_years.add(f.year)
    for s in plan.removed:
        y = (ledger.get(s) or {}).get("year")
        if y is not None:
            changed_years.add(int(y))
    for r in rejected:
        y = plan.issue_where.get(r["source_file"], (None, None))[0]
        if r["status"] != "unchanged" and y is not None:
            changed_years.add(int(y))
    all_years = sorted({f.year for f in plan.files if f.year is not None} | {int(r["year"]) for r in ledger.values()
                                                                              if r.get("year") is not None})
    if unchanged:
        why = f"the inputs are those of the build published by run {published.get('run_id')}"
    elif not warehouse.exists():
        why = "nothing is published yet: first build"
    elif years is not None:
        why = f"a run limited to {years[0]}–{years[1]} always rebuilds those years"
    elif changed_years:
        why = "files were added, changed or removed"
    elif not published or published.get("identity") is None:
        why = "the published warehouse was not built by a run this state knows (rolled back or copied in)"
    else:
        why = "the reading code, SQL models, data tests, reference data or settings changed since the published build"

    models = sorted(discover_models(SQL_DIR))
    guards = {"available": False, "failures": [], "refused": False, "note": "nothing to publish"} if unchanged \
        else _guards(raw_dir, warehouse, plan, ledger, whole, allow_shrink)
    outcome = "unchanged" if unchanged else ("refused" if guards.get("refused") else "publish")
    from coop.run.lock import read_holder

    holder = read_holder(warehouse)
    return {
        "raw_dir": str(raw_dir), "warehouse": str(warehouse), "years": list(years) if years else None,
        "published_run_id": published.get("run_id"), "published_at": published.get("published_at"),
        "outcome": outcome, "why": why,
        "files": {**{k: sorted(v) for k, v in by_status.items()}, "removed": sorted(plan.removed),
                  "superseded": superseded, "rejected": rejected},
        "read": sorted(f.source_file for f in plan.to_read) if not unchanged else [],
        "from_cache": 0 if unchanged else len(plan.from_cache),
        "read_to_plan": read_now,
        "rebuild": {
            "years_changed": sorted(changed_years),
            "years": [] if unchanged else (list(range(years[0], years[1] + 1)) if years
                                           else sorted(set(all_years) | changed_years)),
            "models": [] if unchanged else models,
        },
        "guards": guards,
        "running": holder.describe() if holder else None,
    }


def _show_names(console: Console, label: str, names: Sequence[str], limit: int = 20) -> None:
    if not names:
        return
    console.print(f"  {label}:")
    for n in names[:limit]:
        console.print(f"    {n}", markup=False)
    if len(names) > limit:
        console.print(f"    … and {len(names) - limit} more (--format json lists them all)")


def render_plan(p: Mapping[str, Any], console: Console) -> None:
    from coop.settings import local_time

    f = p["files"]
    console.print(f"[bold]coop plan[/bold]: {p['raw_dir']} → {p['warehouse']} — a preview, nothing is changed")
    if p.get("running"):
        console.print(f"[yellow]Đang có lần chạy (a run is going now): {escape(p['running'])}[/yellow]")
    if p.get("published_run_id"):
        console.print(f"Published now: run {p['published_run_id']} ({local_time(p.get('published_at'))})", markup=False)
    seen = len(f["new"]) + len(f["changed"]) + len(f["unchanged"]) + len(f["rejected"])
    sup_files = sorted({s["source_file"] for s in f["superseded"]})
    console.print(f"Files: {seen} seen — {len(f['new'])} new, {len(f['changed'])} changed, "
                  f"{len(f['unchanged'])} unchanged, {len(f['removed'])} removed; {len(f['rejected'])} rejected, "
                  f"{len(sup_files)} superseded")
    _show_names(console, "new", f["new"])
    _show_names(console, "changed", f["changed"])
    _show_names(console, "removed", f["removed"])
    _show_names(console, "superseded (by a newer resubmission in the same folder)",
                [f"{s['source_file']}" + (" (whole file)" if s["whole_file"] else f" sheet '{s['sheet']}'")
                 for s in f["superseded"]])
    _show_names(console, "rejected (would not be read)",
                [f"{r['source_file']} [{r.get('reason_code', '?')}]" + ("" if r["status"] == "unchanged" else
                                                                        f" ({r['status']})") for r in f["rejected"]])
    if p["outcome"] == "unchanged":
        console.print(f"[green]Nothing to rebuild[/green]: {p['why']}. `coop run` would record an 'unchanged' run "
                      "and leave the warehouse as it is.")
        return
    rb = p["rebuild"]
    console.print(f"Reading: {len(p['read'])} file(s) to read, {p['from_cache']} from the cache"
                  + (f" ({len(p['read_to_plan'])} read now, in memory, to resolve resubmissions)"
                     if p["read_to_plan"] else ""))
    years = rb["years"]
    console.print(f"Rebuild: years {_years_text(years)}"
                  + (f", data changed in {_years_text(rb['years_changed'])}" if rb["years_changed"] else "")
                  + f" ({p['why']})")
    by_layer: dict[str, list[str]] = defaultdict(list)
    for m in rb["models"]:
        layer, _, name = m.partition(".")
        by_layer[layer].append(name)
    console.print(f"Models: all {len(rb['models'])} rebuilt (every build recomputes staging, core and marts): "
                  + "; ".join(f"{layer} ({len(v)}): {', '.join(v)}" for layer, v in sorted(by_layer.items())),
                  markup=False)
    g = p["guards"]
    if not g.get("available"):
        console.print(f"Publish guards: — ({g.get('note')})")
    elif not g["failures"]:
        console.print(f"Publish guards: [green]pass[/green] ({g.get('note')})")
    else:
        head = ("[red]the publish would be REFUSED[/red]" if g["refused"]
                else "[yellow]allowed by --allow-shrink[/yellow]")
        console.print(f"Publish guards: {head}")
        for x in g["failures"]:
            mark = "✗" if x["blocking"] else "!"
            console.print(f"  {mark} {x['message_vi']}\n    ({x['message_en']})", markup=False)
        if g["refused"] and any(x["overridable"] for x in g["failures"] if x["blocking"]):
            console.print("  Nếu việc giảm này là đúng, chạy với --allow-shrink "
                          "(if intended, run with --allow-shrink).")
    verdict = {"publish": "`coop run` would read, rebuild and publish (if the data tests pass).",
               "refused": "`coop run` would stop before publishing (exit 1); the published warehouse would stay."}
    console.print(verdict[p["outcome"]])


def _years_text(years: Sequence[int]) -> str:
    if not years:
        return "—"
    ys = sorted(years)
    if ys == list(range(ys[0], ys[-1] + 1)) and len(ys) > 2:
        return f"{ys[0]}–{ys[-1]}"
    return ", ".join(str(y) for y in ys)


def plan_command(raw_dir: Path, warehouse: Path, years: tuple[int, int] | None = None, fmt: str = "text",
                 allow_shrink: bool = False) -> int:
    """`coop plan`: exit 0 (a preview), 1 when it cannot plan (raw folder missing, unreadable warehouse)."""
    raw_dir, warehouse = Path(raw_dir), Path(warehouse)
    err = _console(stderr=True)
    if not raw_dir.is_dir():
        err.print(f"[red]Không thấy thư mục dữ liệu {raw_dir} (raw folder not found).[/red]")
        return EXIT_FAILED
    try:
        report = plan_report(raw_dir, warehouse, years, allow_shrink)
    except Exception as e:  # noqa: BLE001 — e.g. a damaged warehouse, a settings error
        err.print(f"[red]Không lập được kế hoạch (cannot plan): {escape(f'{type(e).__name__}: {e}')}[/red]")
        return EXIT_FAILED
    if fmt == "json":
        print(json.dumps(report, ensure_ascii=False, indent=1, default=str))
    else:
        render_plan(report, _console())
    return EXIT_OK


# =========================================================================== coop check
def check_report(warehouse: Path, tests_dir: Path | None = None) -> dict[str, Any]:
    """Run the data tests on the published warehouse, READ_ONLY. Raises OSError/duckdb.Error
    when it cannot be opened, DataTestDefinitionError on a bad test file."""
    from coop.paths import SQL_DIR
    from coop.warehouse.datatests import run_data_tests

    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise FileNotFoundError(warehouse)
    con = queries.connect_read_only(warehouse)
    try:
        results = run_data_tests(con, Path(tests_dir) if tests_dir else SQL_DIR / "tests")
        info = read_build_info(con) or {}
        if not info.get("run_id"):
            try:
                last = con.execute("SELECT run_id, finished_at FROM audit.runs WHERE status = 'published' "
                                   "ORDER BY started_at DESC LIMIT 1").fetchall()
                if last:
                    info = {"run_id": last[0][0], "built_at": last[0][1]}
            except Exception:  # noqa: BLE001 — no audit.runs (an old or foreign file): the report names no run
                pass
    finally:
        con.close()
    errors = [r for r in results if r.blocking]
    warns = [r for r in results if not r.passed and not r.blocking]
    return {"warehouse": str(warehouse), "run_id": info.get("run_id"),
            "built_at": _iso_local(info.get("built_at")), "ok": not errors,
            "tests_run": len(results), "passed": len(results) - len(errors) - len(warns),
            "errors": len(errors), "warnings": len(warns), "tests": [r.to_dict() for r in results],
            "_results": results}


def check_command(warehouse: Path, fmt: str = "text", tests_dir: Path | None = None) -> int:
    """`coop check`: 0 when no error-level data test fails, 1 otherwise (or when the warehouse
    cannot be read)."""
    from coop.settings import local_time
    from coop.warehouse.datatests import DataTestDefinitionError, summary

    warehouse = Path(warehouse)
    try:
        rep = check_report(warehouse, tests_dir)
    except FileNotFoundError:
        msg = f"Không tìm thấy kho dữ liệu {warehouse} (chạy `coop run` trước). (No published warehouse.)"
        rep = None
    except DataTestDefinitionError as e:
        msg = f"Tệp kiểm thử dữ liệu không hợp lệ (bad data test file): {e}"
        rep = None
    except Exception as e:  # noqa: BLE001 — duckdb.Error: damaged or held for writing
        msg = queries.open_problem(warehouse, e)
        rep = None
    if rep is None:
        if fmt == "json":
            print(json.dumps({"warehouse": str(warehouse), "ok": False, "error": msg}, ensure_ascii=False, indent=1))
        else:
            _console(stderr=True).print(f"[red]{escape(msg)}[/red]")
        return EXIT_FAILED
    results = rep.pop("_results")
    if fmt == "json":
        print(json.dumps(rep, ensure_ascii=False, indent=1, default=str))
    else:
        console = _console()
        built = f", built by run {rep['run_id']} at {local_time(rep['built_at'])}" if rep.get("run_id") else ""
        console.print(f"[bold]coop check[/bold]: {warehouse} (read-only{built})")
        for i, line in enumerate(summary(results).splitlines()):
            console.print(line, markup=False, style="bold" if i == 0 else None)
        if rep["ok"]:
            console.print("[green]OK[/green]: không có kiểm thử mức lỗi nào thất bại (no error-level test failed).")
        else:
            console.print(f"[red]FAILED[/red]: {rep['errors']} kiểm thử mức lỗi thất bại "
                          f"({rep['errors']} error-level test(s) failed).")
    return EXIT_OK if rep["ok"] else EXIT_FAILED


# =========================================================================== coop runs
_TEST_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*(error|warn)\s*\|\s*(pass|FAIL|WARN)\s*\|", re.M)


def report_tests(path: Path | None) -> dict[str, int] | None:
    """Data test counts from a run report: {passed, warned, failed} (failed = error level);
    None when the report is missing or the tests were not run."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    part = text.split("## Data tests", 1)
    if len(part) < 2:
        return None
    section = part[1].split("\n## ", 1)[0]
    rows = _TEST_ROW.findall(section)
    if not rows:
        return None
    out = {"passed": 0, "warned": 0, "failed": 0}
    for _name, sev, res in rows:
        if res == "pass":
            out["passed"] += 1
        elif sev == "error":
            out["failed"] += 1
        else:
            out["warned"] += 1
    return out


def report_files(warehouse: Path) -> list[Path]:
    from coop.outputs.run_report import reports_dir

    folder = reports_dir(Path(warehouse))
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("run-*.md") if p.is_file())


def find_report(warehouse: Path, run_id: str, files: Sequence[Path] | None = None) -> list[Path]:
    """Report files of `run_id`: the exact id, else every report whose name contains it."""
    files = report_files(warehouse) if files is None else files
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in run_id)
    exact = [p for p in files if p.stem == f"run-{safe}" or p.stem.endswith(f"-{safe}")]
    return exact or [p for p in files if safe and safe in p.stem[4:]]


def list_runs(warehouse: Path, limit: int | None = 10) -> dict[str, Any]:
    """The latest runs, newest first: audit.runs of the published warehouse and the pending
    runs it does not record yet, each with its duration, counts, data tests and report."""
    from coop.run.lock import read_holder
    from coop.run.store import read_pending_runs, state_dir

    warehouse = Path(warehouse)
    runs: dict[str, dict[str, Any]] = {}
    problem = None
    current = None
    if warehouse.exists():
        try:
            con = queries.connect_read_only(warehouse)
        except Exception as e:  # noqa: BLE001 — duckdb.Error, OSError: reported as the listing's problem
            problem = queries.open_problem(warehouse, e)
        else:
            try:
                cur = con.execute("SELECT * FROM audit.runs")
                cols = [d[0] for d in cur.description]
                for row in cur.fetchall():
                    r = dict(zip(cols, row, strict=True))
                    runs[r["run_id"]] = {**r, "recorded": "warehouse"}
                info = read_build_info(con)
                current = info.get("run_id") if info else None
            except Exception as e:  # noqa: BLE001 — damaged or foreign file: reported, the pending runs still listed
                problem = queries.open_problem(warehouse, e)
            finally:
                con.close()
    if current is None:
        pub = [r for r in runs.values() if r.get("status") == "published"]
        if pub:
            current = max(pub, key=lambda r: _utc(r.get("started_at")) or datetime.min.replace(tzinfo=UTC))["run_id"]
    for r in read_pending_runs(state_dir(warehouse)):
        if r.get("run_id") and r["run_id"] not in runs:
            runs[r["run_id"]] = {**r, "recorded": "pending"}
    files = report_files(warehouse)
    out = []
    epoch = datetime.min.replace(tzinfo=UTC)
    for r in sorted(runs.values(), key=lambda r: (_utc(r.get("started_at")) or epoch, r["run_id"]), reverse=True):
        started, finished = _utc(r.get("started_at")), _utc(r.get("finished_at"))
        reports = find_report(warehouse, r["run_id"], files)
        report = reports[0] if len(reports) == 1 else None
        out.append({
            "run_id": r["run_id"], "kind": r.get("kind"), "status": r.get("status"),
            "current": r["run_id"] == current, "recorded": r["recorded"],
            "started_at": _iso_local(started), "finished_at": _iso_local(finished),
            "started_at_utc": started.isoformat(timespec="seconds") if started else None,
            "duration_seconds": round((finished - started).total_seconds(), 3) if started and finished else None,
            "files_seen": r.get("files_seen"), "files_loaded": r.get("files_loaded"),
            "files_rejected": r.get("files_rejected"), "rows_loaded": r.get("rows_loaded"),
            "rows_rejected": r.get("rows_rejected"), "years": r.get("years"), "backfill_years": r.get("backfill_years"),
            "tests": report_tests(report), "message": r.get("message"),
            "report": str(report) if report else None,
        })
    holder = read_holder(warehouse)
    from coop.settings import local_zone

    return {"warehouse": str(warehouse), "timezone": local_zone(), "problem": problem,
            "running": ({"pid": holder.pid, "host": holder.host, "started_at": _iso_local(holder.started_at),
                         "command": holder.command, "text": holder.describe()} if holder else None),
            "total": len(out), "runs": out[:limit] if limit else out}


def _n(v: float | None) -> str:
    return "—" if v is None else f"{int(v):,}"


def _tests_text(t: Mapping[str, int] | None, status: str | None) -> str:
    if not t:
        return "not run" if status == "unchanged" else "—"
    parts = [f"{t['passed']} passed"]
    if t["warned"]:
        parts.append(f"[yellow]{t['warned']} warned[/yellow]")  # the words of run_report.data_tests_phrase
    if t["failed"]:
        parts.append(f"[red]{t['failed']} failed[/red]")
    return ", ".join(parts)


def render_runs(data: Mapping[str, Any], console: Console) -> None:
    from rich.table import Table

    from coop.settings import local_time, zone_label

    if data.get("problem"):
        console.print(f"[red]{escape(data['problem'])}[/red]")
    if data.get("running"):
        console.print(f"[yellow]Đang chạy (running now):[/yellow] {escape(data['running']['text'])}")
    runs = data["runs"]
    if not runs:
        console.print(f"Chưa có lần chạy nào (no runs yet) for {data['warehouse']}.")
        return
    zone = zone_label(data.get("timezone"))
    t = Table(title=f"coop runs — {data['warehouse']} ({len(runs)} of {data['total']}, newest first)",
              title_justify="left", caption=f"Times: {zone}. ● = the build published now. "
              "`coop runs show RUN_ID` prints a run's report.", caption_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("run", "left"), ("kind", "left"), ("status", "left"), (f"started ({zone})", "left"), ("duration", "right"),
        ("files", "right"), ("rows", "right"), ("quarantined", "right"), ("data tests", "left"))
    for col, just in columns:
        t.add_column(col, justify=just, no_wrap=col == "run")
    style = {"published": "green", "failed": "red", "unchanged": "cyan"}
    for r in runs:
        st = r["status"] or "?"
        status = f"[{style.get(st, 'white')}]{st}[/{style.get(st, 'white')}]" + (" ●" if r["current"] else "")
        if r.get("years") or r.get("backfill_years"):
            status += f" ({r.get('backfill_years') or r.get('years')})"
        files = _n(r["files_seen"]) + (f" ({r['files_rejected']} rejected)" if r.get("files_rejected") else "")
        t.add_row(r["run_id"], r["kind"] or "", status, local_time(r["started_at"], data.get("timezone"), marker=False),
                  duration_text(r["duration_seconds"]), files, _n(r["rows_loaded"]), _n(r["rows_rejected"]),
                  _tests_text(r["tests"], st))
    console.print(t)
    failed = [r for r in runs if r["status"] == "failed" and r.get("message")]
    for r in failed[:5]:
        first = str(r["message"]).strip().splitlines()[0]
        console.print(f"[red]{r['run_id']}[/red]: {escape(first[:300])}")


def runs_command(warehouse: Path, limit: int = 10, fmt: str = "text") -> int:
    """`coop runs`: exit 0 (a report), 1 when the warehouse exists but cannot be read."""
    data = list_runs(Path(warehouse), limit)
    if fmt == "json":
        print(json.dumps(data, ensure_ascii=False, indent=1, default=str))
    else:
        render_runs(data, _console())
    return EXIT_FAILED if data.get("problem") and not data["runs"] else EXIT_OK


def runs_show_command(warehouse: Path, run_id: str) -> int:
    """`coop runs show RUN_ID` (or `latest`): print the run's markdown report; exit 1 when
    there is none (or several runs match)."""
    warehouse = Path(warehouse)
    err = _console(stderr=True)
    if run_id.lower() in ("latest", "last"):
        runs = list_runs(warehouse, limit=1)["runs"]
        if not runs:
            err.print(f"Chưa có lần chạy nào (no runs yet) for {warehouse}.")
            return EXIT_FAILED
        run_id = runs[0]["run_id"]
    found = find_report(warehouse, run_id)
    if len(found) == 1:
        sys.stdout.write(found[0].read_text(encoding="utf-8"))
        sys.stdout.flush()
        return EXIT_OK
    if len(found) > 1:
        err.print(f"[yellow]'{run_id}' khớp với nhiều lần chạy (matches several runs):[/yellow]")
        for p in found[:20]:
            err.print(f"  {p.stem[4:]}", markup=False)
        return EXIT_FAILED
    known = [r for r in list_runs(warehouse, limit=None)["runs"] if r["run_id"] == run_id]
    if known:
        from coop.outputs.run_report import reports_dir

        err.print(f"[yellow]Không có báo cáo cho lần chạy {run_id} (no report file in {reports_dir(warehouse)}); "
                  "what the run records say:[/yellow]")
        print(json.dumps(known[0], ensure_ascii=False, indent=1, default=str))
    else:
        err.print(f"[red]Không tìm thấy lần chạy {run_id} (no such run; `coop runs` lists them).[/red]")
    return EXIT_FAILED
