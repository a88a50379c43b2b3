"""`coop run` / `coop backfill`: glue around the Prefect flow, and the console summary.

- No `PREFECT_API_URL`: coop starts Prefect's API server for the run, on a pre-migrated
  database of the warehouse's own, before Prefect is imported (coop.run.prefect_env; nothing to
  configure). A run whose inputs are identical to the published build is recognised *before*
  Prefect starts (discovery + hashing from the stat cache, no spreadsheet read) and finishes
  in a second or two; it is recorded in `.state/pending_runs.jsonl` and in the run report.
  What it found is kept for the quick check of the next `coop run` (coop.run.quick, run by the
  `coop` command before this module is imported: ≈ 0.1 s when the inputs' stat is the same).
- `PREFECT_API_URL` set: every run goes through the flow on that server (visible in the UI).

Prefect's own console output (server start/stop lines, flow/task state lines, tracebacks of
a failed flow) is silenced through its settings, set before Prefect is imported; its logs
still go to the API. The operator sees only the summary printed here.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coop.context import run_context

# The Prefect settings and workarounds live in coop.run.prefect_env (names kept here for callers).
from coop.run.prefect_env import (  # noqa: F401  # noqa: F401  # noqa: F401
    LOOPBACK_HOSTS,
    PREFECT_OFFLINE,
    PREFECT_QUIET,
    after_local_api,
    offline_prefect,
    prefect_api_url,
    prepare_local_api,
    private_ephemeral_database,
    quiet_prefect,
)
from coop.warehouse import queries

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1


class _NoTraceback(logging.Formatter):
    """One line per record: the operator gets the message, not a Python traceback
    (COOP_LOG_LEVEL=DEBUG shows them)."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and logging.getLogger("coop").level > logging.DEBUG:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(record)


def _setup_logging() -> None:
    """coop's own log lines on stderr: WARNING in a terminal (where a progress bar shows the
    reading), INFO elsewhere (cron, CI: plain progress lines). COOP_LOG_LEVEL overrides."""
    default = "WARNING" if sys.stderr.isatty() else "INFO"
    level = os.environ.get("COOP_LOG_LEVEL", default).upper()
    logger = logging.getLogger("coop")
    if not any(getattr(h, "_coop", False) for h in logger.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(_NoTraceback("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        h._coop = True  # type: ignore[attr-defined]
        logger.addHandler(h)
    logger.setLevel(level)
    logger.propagate = False


def run_command(raw_dir: Path, warehouse: Path, years: tuple[int, int] | None, wait: bool,
                allow_shrink: bool = False) -> int:
    """`coop run`: exit 0 when published (or nothing changed), 1 when nothing could be
    published (a publish guard included: see coop.warehouse.guards), 75 when another run holds the lock."""
    return _run(Path(raw_dir), Path(warehouse), years=years, backfill_years=None, wait=wait,
                allow_shrink=allow_shrink)


def backfill_command(raw_dir: Path, warehouse: Path, years: tuple[int, int] | None, wait: bool,
                     allow_shrink: bool = False, fresh: bool = False) -> int:
    """`coop backfill --from A --to B`: re-read every file of those years, rebuild, publish.
    `fresh` (`--all`): rebuild from nothing, every year, ignoring the published file."""
    from rich.console import Console

    if not fresh and years is None:
        Console(stderr=True).print("[red]Give --from and --to, or --all.[/red]")
        return 2
    if years is not None and years[0] > years[1]:
        Console(stderr=True).print(f"[red]--from {years[0]} is after --to {years[1]}[/red]")
        return 2
    return _run(Path(raw_dir), Path(warehouse), years=None, backfill_years=None if fresh else years, wait=wait,
                allow_shrink=allow_shrink, fresh=fresh)


def _run(raw_dir: Path, warehouse: Path, years: tuple[int, int] | None, backfill_years: tuple[int, int] | None,
         wait: bool, allow_shrink: bool = False,
         fresh: bool = False) -> int:
    quiet_prefect()
    _setup_logging()
    from rich.console import Console

    from coop.run.lock import EXIT_BUSY, RunLockBusy, RunLockUnavailable, cleanup_stale, run_lock

    console = Console() if sys.stdout.isatty() else Console(width=110)
    err = Console(stderr=True)
    tables: dict[str, str] | None = None  # a no-op run's console tables, when the check made them
    try:
        with run_lock(warehouse, wait=wait):
            cleanup_stale(warehouse)  # leftovers of a killed run, also when nothing else changed
            from coop.context import ALL_YEARS
            from coop.warehouse.guards import refuse_at_start

            # raw folder missing/unreadable/empty, published file damaged: refused and recorded, no Prefect
            summary = refuse_at_start(raw_dir, warehouse, kind="backfill" if backfill_years or fresh else "nightly",
                                      years=years, backfill_years=ALL_YEARS if fresh else backfill_years,
                                      allow_shrink=allow_shrink, fresh=fresh)
            if summary is None and backfill_years is None and not fresh and not prefect_api_url():
                noop = _fast_unchanged(raw_dir, warehouse, years)
                if noop is not None:
                    summary, tables = noop
            if summary is None:
                summary = _run_flow(raw_dir, warehouse, years, backfill_years, wait, allow_shrink, fresh)
    except RunLockBusy as e:
        err.print(f"[yellow]{e}[/yellow]", soft_wrap=True, highlight=False)
        return EXIT_BUSY
    except RunLockUnavailable as e:  # a read-only warehouse mount: nothing can be published there
        from rich.markup import escape

        err.print(f"[red]{escape(str(e))}[/red]", soft_wrap=True, highlight=False)
        return EXIT_FAILED
    print_summary(summary, console, tables)
    return EXIT_OK if summary.status in ("published", "unchanged") else EXIT_FAILED


def _fast_unchanged(raw_dir: Path, warehouse: Path,
                    years: tuple[int, int] | None) -> tuple[Any, dict[str, str]] | None:
    """Without Prefect: if the inputs equal the published build's, record a no-op run and
    return its summary and console tables; else None (the flow runs). Never reads a
    spreadsheet. What it found is recorded for the quick check of the next `coop run`
    (coop.run.quick)."""
    if years is not None or not warehouse.exists():
        return None
    from coop.outputs.run_report import stage_line

    stage_line("check")  # console line (docs/operations.md, "What the console shows")
    from coop.run import planning, quick, steps

    ctx = run_context(raw_dir, warehouse)
    try:
        snap: quick.Snapshot | None = quick.snapshot(raw_dir, warehouse)  # before planning: never newer than it
    except quick.Unusable:
        snap = None
    plan = planning.plan_now(ctx)
    if not planning.is_unchanged(plan, ctx.warehouse):
        quick.forget_record(warehouse)
        return None
    outcome = steps.noop_outcome(plan, warehouse)
    outcome.tables = noop_tables(outcome.current.get("districts", []), warehouse)
    if snap is not None:
        quick.write_record(snap, outcome, warehouse)
    return quick.record_noop(outcome, warehouse, raw_dir, ctx.run_id, ctx.started_at), outcome.tables


def _run_flow(raw_dir: Path, warehouse: Path, years: tuple[int, int] | None,
              backfill_years: tuple[int, int] | None, wait: bool, allow_shrink: bool = False,
              fresh: bool = False) -> Any:
    from coop.run import prefect_env
    from coop.settings import SettingsError, check_dask_address, load_settings

    try:  # where the reading tasks run (threads, local:N, tcp://; docs/scale-out.md): checked before any start
        dask_address = check_dask_address(load_settings().dask_address)
    except SettingsError as e:
        from coop.outputs.run_report import RunSummary

        now = datetime.now(UTC)
        return RunSummary(status="failed", started_at=now, finished_at=now, raw_dir=str(raw_dir),
                          warehouse=str(warehouse), error=str(e))
    from coop.outputs.run_report import stage_line

    stage_line("orchestrator")  # the API server's start and Prefect's import take seconds: say so first
    saved = prepare_local_api(warehouse)  # before Prefect is imported: a pre-migrated local API database
    server = prefect_env.start_local_server()  # starts while this process imports Prefect and the flow
    warm = WarmUp.start(raw_dir, warehouse, years) if (
        not dask_address and backfill_years is None and not fresh) else None
    state = None
    try:
        from flows.nightly import RunFailed, nightly_run
        from flows.task_runners import ReadingTaskRunner

        if server is not None:
            prefect_env.preload_engine()  # while the API starts: what the flow's start would import
        ready = server is None or server.wait_ready(prefect_env.startup_timeout())
        if warm is not None:
            warm.finish()  # the flow plans after the last file the warm-up read is in the cache
        if not ready and server is not None:
            from coop.outputs.run_report import RunSummary

            now = datetime.now(UTC)
            return RunSummary(status="failed", started_at=now, finished_at=now, raw_dir=str(raw_dir),
                              warehouse=str(warehouse),
                              error=f"Không khởi động được Prefect API cục bộ (the local Prefect API server "
                                    f"did not start: exit code {server.proc.poll()}, {server.url})")
        runner = nightly_run.task_runner
        assert isinstance(runner, ReadingTaskRunner)
        run_flow = nightly_run.with_options(task_runner=runner.for_address(dask_address))  # type: ignore[arg-type]
        with prefect_env.no_heartbeats() if server is not None else nullcontext():
            state = run_flow(raw_dir=raw_dir, warehouse=warehouse, years=years, backfill_years=backfill_years,
                             wait=wait, allow_shrink=allow_shrink, fresh=fresh, return_state=True)
        if state.is_completed():
            return state.result()
        exc = state.result(raise_on_failure=False)
        if isinstance(exc, RunFailed):
            return exc.summary
    finally:
        if warm is not None:
            warm.finish()
        if server is not None:
            prefect_env.drain_prefect_workers()  # logs and events sent before the server stops
        prefect_env.stop_local_server(server)
        after_local_api(warehouse, saved, server_started=state is not None)  # stamp; don't leak in-process
    from coop.outputs.run_report import RunSummary

    now = datetime.now(UTC)
    return RunSummary(status="failed", started_at=now, finished_at=now, raw_dir=str(raw_dir), warehouse=str(warehouse),
                      error=f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(state.message))


# --------------------------------------------------------------------------- console summary
class WarmUp:
    """Reading while the orchestrator starts (docs/performance.md): with no Prefect server
    configured, the temporary API takes seconds to start, on one core, while this process
    imports Prefect and waits; with a server configured, importing Prefect and the flow alone
    takes 2–3 s. Meanwhile one thread plans the run as the flow will (discover,
    hashes, cache) and reads the files to read into the per-file cache (`steps.warm_up`, the
    reader worker pool the flow uses next); `finish()` stops it after its current file, before
    the flow starts. The flow's plan then finds those files cached: the same results, the same
    build. Any failure here only means the flow reads more itself. `COOP_WARM_UP=0` turns it off."""

    def __init__(self, raw_dir: Path, warehouse: Path, years: tuple[int, int] | None) -> None:
        import threading

        self.stop = threading.Event()
        self.read = 0
        self.thread = threading.Thread(target=self._run, args=(raw_dir, warehouse, years), name="coop-warm-up",
                                       daemon=True)

    @classmethod
    def start(cls, raw_dir: Path, warehouse: Path, years: tuple[int, int] | None) -> WarmUp | None:
        if os.environ.get("COOP_WARM_UP", "1").strip() == "0":
            return None
        warm = cls(raw_dir, warehouse, years)
        warm.thread.start()
        return warm

    def _run(self, raw_dir: Path, warehouse: Path, years: tuple[int, int] | None) -> None:
        try:
            from coop.run import planning, steps

            ctx = run_context(raw_dir, warehouse, years=years)
            plan = planning.plan_now(ctx)
            self.read = steps.warm_up(plan.to_read, ctx.reference, ctx.state, self.stop)
        except Exception as e:  # noqa: BLE001 — only a head start: the flow reads what is not cached
            log.warning("Reading ahead while the orchestrator starts stopped: %s: %s", type(e).__name__, e)

    def finish(self) -> None:
        """Stop after the current file and wait for it (idempotent)."""
        if not self.stop.is_set():
            self.stop.set()
            self.thread.join()
            if self.read:
                log.info("Read %d file(s) into the cache while the orchestrator started.", self.read)


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def noop_tables(districts: list[dict[str, Any]], warehouse: Path) -> dict[str, str]:
    """The two tables of a no-op run's console summary as plain text (110 columns): rows per
    area and year, and the province's indicators. Recorded by the full check for the quick one."""
    import io

    from rich.console import Console

    def text(draw: Callable[[Console], None]) -> str:
        buf = io.StringIO()
        draw(Console(file=buf, width=110, color_system=None, force_terminal=False, highlight=False))
        return buf.getvalue()

    return {"areas": text(lambda c: _print_rows_per_area(districts, c)) if districts else "",
            "province": text(lambda c: _print_province_table(Path(warehouse), c))}


def print_summary(summary: Any, console: Any, tables: dict[str, str] | None = None) -> None:
    from rich.text import Text

    status = summary.status
    if status == "unchanged":  # one printer for every no-op run, the quick check's too
        from coop.run.quick import print_noop

        if tables is None:
            tables = noop_tables(summary.districts or [], Path(summary.warehouse))
        print_noop(summary, tables, console.file)
        return
    from coop.outputs.run_report import rejected_files, summary_lines

    rejected = rejected_files(summary)
    head = {"published": "[green]Published[/green]",
            "failed": "[red]FAILED[/red] — nothing published"}.get(status, status)
    console.print(f"[bold]coop {summary.kind} run {summary.run_id}[/bold]: {head}")
    for line in summary_lines(summary):
        console.print(line)

    units = summary.districts
    if units:
        _print_rows_per_area(units, console)
    if rejected:
        console.print("Rejected files: " + "; ".join(rejected))

    tests = summary.tests or []
    if tests:
        from coop.outputs.run_report import data_tests_phrase

        console.print(data_tests_phrase(tests), highlight=False)  # the run report's and the artifact's words
        for x in tests:
            if not x["passed"]:  # as text: '[warn] name: …' is the message, not rich markup
                first = (x.get("message") or x["name"]).splitlines()[0]
                console.print(Text(first, style="red" if x["severity"] == "error" else "yellow"), soft_wrap=True)

    if status == "failed":
        console.print(Text.assemble(("Why:", "red"), " ", str(summary.error)), highlight=False)  # '[error] …' as text
        console.print(f"The last published warehouse is unchanged: {summary.warehouse}")
    else:
        console.print(f"Warehouse: {summary.warehouse}")
        _print_province_table(Path(summary.warehouse), console)
    if summary.report_path:
        console.print(f"Run report: {summary.report_path}", highlight=False)


def _print_rows_per_area(units: list[dict[str, Any]], console: Any) -> None:
    """Rows loaded / quarantined per former-province area × year, with the number of units
    (districts up to 2024, communes from 2025) that sent a file; per unit in the run report."""
    from rich.table import Table

    from coop.reference import load_reference

    ref = load_reference()
    by_code = {u.code: u for u in ref.units}
    cells: dict[str, dict[int, list[int]]] = {}
    for d in units:
        y, code = d.get("year"), d.get("unit_code")
        if y is None:
            continue
        unit = by_code.get(code or "")
        area = f"{unit.area_code} {ref.area_name(unit.area_code)}" if unit else ("province" if code is None else "?")
        c = cells.setdefault(area, {}).setdefault(y, [0, 0, 0])
        c[0] += int(d.get("rows_loaded") or 0)
        c[1] += int(d.get("rows_rejected") or 0)
        c[2] += 1 if code else 0
    yrs = sorted({y for v in cells.values() for y in v})
    console.print("Rows per former-province area (loaded / [red]quarantined[/red], units reporting; "
                  "per unit in the run report):")
    t = Table(box=None, pad_edge=False)
    t.add_column("area")
    for y in yrs:
        t.add_column(str(y), justify="right")
    for area in sorted(cells, key=lambda a: (a == "province", a)):
        row = []
        for y in yrs:
            got = cells[area].get(y)
            row.append("—" if got is None else f"{got[0]:,}" + (f" / [red]{got[1]}[/red]" if got[1] else "")
                       + (f" ({got[2]})" if got[2] else ""))
        t.add_row(area, *row)
    console.print(t)


_TABLE_COLS = ["entity_type", "new_formed", "active_count", "members", "workers", "avg_revenue_mvnd",
               "avg_profit_mvnd", "avg_income_mvnd_month", "revenue_growth_pct", "income_growth_pct"]
_TABLE_LABELS = ["type", "new", "active", "members", "workers", "revenue", "profit", "income/month", "rev. Δ%",
                 "inc. Δ%"]


def _print_province_table(warehouse: Path, console: Any) -> None:
    """Today's province in the latest COMPLETE year (every unit expected that year reported:
    marts.current_province_indicators.complete; the latest year when none is), a line on a
    later incomplete year, the series per former-province area (marts.area_indicators: active
    HTX, new in brackets) and the funding backlog of the year shown, with the window the mart
    used (ref.settings backlog_window_years, default 3), read back from the published file."""
    import duckdb
    from rich.table import Table

    try:
        con = queries.connect_read_only(warehouse)
    except duckdb.Error:
        return
    try:
        coverage = con.execute(
            "SELECT year, bool_and(complete), sum(units_reported), sum(units_expected), "
            "string_agg(DISTINCT areas_missing, ',') FROM (SELECT DISTINCT year, province_code, complete, "
            "units_reported, units_expected, areas_missing FROM marts.current_province_indicators) "
            "GROUP BY year ORDER BY year").fetchall()
        if not coverage:
            return
        latest = coverage[-1]
        complete_years = [c for c in coverage if c[1]]
        shown = complete_years[-1] if complete_years else latest
        year = shown[0]
        rows = con.execute(f"SELECT {', '.join(_TABLE_COLS)}, province_name FROM marts.current_province_indicators "
                           "WHERE year = ? ORDER BY province_code, entity_type", [year]).fetchall()
        series = con.execute("SELECT area_code, area_name, year, active_count, new_formed "
                             "FROM marts.area_indicators WHERE entity_type = 'HTX' ORDER BY area_code, year").fetchall()
        backlog = con.execute("SELECT count(*) FROM marts.funding_backlog WHERE year = ?", [year]).fetchall()[0][0]
        window = backlog_window(con)
    except duckdb.Error:
        return
    finally:
        con.close()
    names = ", ".join(dict.fromkeys(r[10] for r in rows if r[10])) if rows else ""
    what = "latest complete year" if shown[1] else "latest year, incomplete"
    t = Table(title=f"{names} {year} ({what}; marts.current_province_indicators; money in million VND)",
              title_justify="left")
    for c, label in zip(_TABLE_COLS, _TABLE_LABELS, strict=True):
        t.add_column(label, justify="left" if c == "entity_type" else "right")
    for r in rows:
        t.add_row(*[_fmt(v, 2 if i == 7 else 1) if isinstance(v, float) else _fmt(v) for i, v in enumerate(r[:10])])
    console.print(t)
    if shown[1]:
        console.print(f"Complete: every unit reported in {year} ({shown[2]:,} of {shown[3]:,})", highlight=False)
    else:
        console.print(f"[yellow]Incomplete[/yellow]: {shown[2]:,} of {shown[3]:,} units reported in {year}"
                      f" (areas with missing units: {shown[4]}); no year is complete yet", highlight=False)
    for y, _, got, expected, missing in (c for c in coverage if c[0] > year):
        console.print(f"[yellow]{y} incomplete[/yellow]: {got:,} of {expected:,} units reported (areas with missing "
                      f"units: {missing}); its figures are in marts.current_province_indicators", highlight=False)
    years = sorted({y for _, _, y, _, _ in series})
    s = Table(title="Active HTX per former-province area (new in brackets; marts.area_indicators)",
              title_justify="left")
    s.add_column("area")
    for y in years:
        s.add_column(str(y), justify="right")
    for code in sorted({a for a, *_ in series}):
        vals = {y: (act, new) for a, _, y, act, new in series if a == code}
        label = next(f"{a} {n}" for a, n, *_ in series if a == code)
        s.add_row(label, *[f"{vals[y][0]:,} ({vals[y][1]})" if y in vals else "—" for y in years])
    console.print(s)
    formed = f"{year - window + 1}–{year}" if window > 1 else f"in {year}"
    console.print(f"Funding backlog at 31/12/{year}: [bold]{backlog}[/bold] HTX formed {formed} "
                  f"still without establishment support (window {window} year{'s' if window > 1 else ''}; "
                  "marts.funding_backlog)", highlight=False)


def backlog_window(con: Any) -> int:
    """The funding backlog window (years) the warehouse was built with: ref.settings
    `backlog_window_years`, read as marts.funding_backlog reads it (default 3)."""
    return int(con.execute("SELECT coalesce(max(TRY_CAST(trim(value) AS INTEGER)), 3) FROM ref.settings "
                           "WHERE key = 'backlog_window_years'").fetchall()[0][0])
