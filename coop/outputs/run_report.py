"""Run reports (a markdown file per run, and the same text as a Prefect artifact) and the
reading progress display.

Everything here is plain Python: the flow builds a `RunSummary` (or a dict with the same
keys), calls `write_run_report(summary, warehouse)` for the file under
`<warehouse folder>/reports/`, and passes `render_run_report(summary)` /
`summary_table(summary)` to Prefect's `create_markdown_artifact` / `create_table_artifact`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from coop.console import console_line
from coop.context import WarehouseFiles

if TYPE_CHECKING:
    from coop.warehouse.datatests import DataTestResult

log = logging.getLogger(__name__)

FILE_CHANGE_KINDS = ("new", "changed", "removed", "unchanged")


@dataclass
class RunSummary:
    """What one run did. Every field has a default so a failed run can still be reported.

    - `status`: `published`, `failed` (nothing published; the previous warehouse stays) or
      `busy` (another run held the lock).
    - `files`: change kind (`new`, `changed`, `removed`, `unchanged`) -> source files
      (paths relative to the raw folder).
    - `districts`: one dict per year x district (x form, optional):
      `{"year", "unit_code", "unit_name", "form", "rows_loaded", "rows_rejected"}`.
    - `quarantine`: reason_code -> number of quarantined row records (one per bad cell).
    - `skipped`: kind (title, column_numbers, section, total, signature, no_data) -> non-blank
      rows below a header neither loaded nor quarantined (audit.sheets `rows_skipped_<kind>`).
    - `file_issues`: `{"source_file", "sheet", "reason_code", "reason", "severity"}`.
    - `tests`: `{"name", "severity" (error|warn), "passed" (bool), "failing_rows" (int),
      "message"}`.
    - `timings`: stage -> seconds (e.g. discover, reading, loading, models, tests, publish).
    """

    run_id: str = ""
    kind: str = "nightly"  # nightly | backfill
    status: str = "failed"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    raw_dir: str | None = None
    warehouse: str | None = None
    years: tuple[int, int] | None = None
    files: dict[str, list[str]] = field(default_factory=dict)
    districts: list[dict[str, Any]] = field(default_factory=list)
    quarantine: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    file_issues: list[dict[str, Any]] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    rows_loaded: int | None = None
    rows_rejected: int | None = None
    error: str | None = None
    report_path: str | None = None


def _as_dict(summary: RunSummary | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(summary, RunSummary):  # its fields hold plain dicts and lists: no deep copy needed
        return {f.name: getattr(summary, f.name) for f in fields(summary)}
    return dict(summary)


# --------------------------------------------------------------------------- data test wording
#: Result words of one data test, the same everywhere (console, run report, Prefect artifacts,
#: `coop check`): an error-level test with offending rows (or SQL that could not run) FAILED and
#: blocks publishing; a warn-level one WARNED and is only reported.
TEST_RESULT_WORDS = {"pass": "pass", "warn": "WARN", "error": "FAIL"}


def _test_field(t: DataTestResult | Mapping[str, Any], name: str) -> object:
    return t.get(name) if isinstance(t, Mapping) else getattr(t, name, None)


def data_test_counts(tests: Iterable[DataTestResult | Mapping[str, Any]] | None) -> dict[str, int]:
    """{total, passed, warned, failed} of data test results (`coop.warehouse.datatests.DataTestResult`s
    or their dicts as in `RunSummary.tests`): warned = warn-level tests that did not pass,
    failed = error-level tests that did not pass (these block publishing)."""
    out = {"total": 0, "passed": 0, "warned": 0, "failed": 0}
    for t in tests or []:
        out["total"] += 1
        if _test_field(t, "passed"):
            out["passed"] += 1
        elif _test_field(t, "severity") == "error":
            out["failed"] += 1
        else:
            out["warned"] += 1
    return out


def data_tests_phrase(tests: Iterable[DataTestResult | Mapping[str, Any]] | None) -> str:
    """The one sentence every place that reports data tests prints:
    '32 data tests: 30 passed, 1 warned, 1 failed' (failed = error level, blocks publishing)."""
    c = data_test_counts(tests)
    return f"{c['total']} data tests: {c['passed']} passed, {c['warned']} warned, {c['failed']} failed"


def data_test_word(t: DataTestResult | Mapping[str, Any]) -> str:
    """'pass', 'WARN' (warn level, did not pass) or 'FAIL' (error level, did not pass)."""
    if _test_field(t, "passed"):
        return TEST_RESULT_WORDS["pass"]
    return TEST_RESULT_WORDS["error" if _test_field(t, "severity") == "error" else "warn"]


# --------------------------------------------------------------------------- markdown
def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return out


def _ts(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def render_run_report(summary: RunSummary | Mapping[str, Any]) -> str:
    """The run report in markdown: outcome, files new/changed/removed/unchanged, rows per
    district, quarantine by reason, rejected files, data tests, timings per stage."""
    s = _as_dict(summary)
    status = s.get("status") or "failed"
    kind = s.get("kind") or "nightly"
    lines: list[str] = [f"# coop {kind} run {s.get('run_id') or ''}".rstrip(), ""]

    outcome = {
        "published": "✅ published",
        "failed": "❌ failed — nothing published, the previous warehouse is unchanged",
        "busy": "⏸ not started — another run was going",
    }.get(status, status)
    years = s.get("years")
    started, finished = s.get("started_at"), s.get("finished_at")
    lines += [
        f"- **Outcome:** {outcome}",
        f"- **Started:** {_ts(started)}",
        f"- **Finished:** {_ts(finished)}",
    ]
    if isinstance(started, datetime) and isinstance(finished, datetime):
        lines.append(f"- **Duration:** {(finished - started).total_seconds():.1f} s")
    if years:
        lines.append(f"- **Years:** {years[0]}–{years[1]}" if years[0] != years[1] else f"- **Years:** {years[0]}")
    if s.get("raw_dir"):
        lines.append(f"- **Raw folder:** `{s['raw_dir']}`")
    if s.get("warehouse"):
        lines.append(f"- **Warehouse:** `{s['warehouse']}`")
    rows_loaded, rows_rejected = s.get("rows_loaded"), s.get("rows_rejected")
    districts = s.get("districts") or []
    if rows_loaded is None and districts:
        rows_loaded = sum(int(d.get("rows_loaded") or 0) for d in districts)
    if rows_rejected is None and districts:
        rows_rejected = sum(int(d.get("rows_rejected") or 0) for d in districts)
    if rows_loaded is not None:
        lines.append(f"- **Rows loaded:** {rows_loaded:,}")
    if rows_rejected is not None:
        lines.append(f"- **Rows quarantined:** {rows_rejected:,}")
    if s.get("error"):
        lines += ["", "## Error", "", "```", str(s["error"]).strip(), "```"]

    # files
    files = s.get("files") or {}
    lines += ["", "## Files", ""]
    lines += _table(["change", "files"], [[k, len(files.get(k) or [])] for k in FILE_CHANGE_KINDS])
    for k in ("new", "changed", "removed"):
        names = files.get(k) or []
        if names:
            lines += ["", f"**{k.capitalize()}:**", ""]
            lines += [f"- `{n}`" for n in sorted(names)]

    # rows per reporting unit (district up to 2024, commune from 2025)
    lines += ["", "## Rows per reporting unit", ""]
    if districts:
        has_form = any(d.get("form") for d in districts)
        headers = ["year", "unit", "name"] + (["form"] if has_form else []) + ["rows loaded", "rows quarantined"]
        rows = []
        for d in sorted(
            districts,
            key=lambda d: (d.get("year") or 0, d.get("unit_code") is None, d.get("unit_code") or "",
                           d.get("form") or ""),
        ):
            row = [str(d.get("year") or ""), d.get("unit_code") or "province", d.get("unit_name")]
            if has_form:
                row.append(d.get("form"))
            row += [int(d.get("rows_loaded") or 0), int(d.get("rows_rejected") or 0)]
            rows.append(row)
        lines += _table(headers, rows)
    else:
        lines.append("Nothing read in this run.")

    # quarantine
    quarantine = s.get("quarantine") or {}
    lines += ["", "## Quarantine by reason", ""]
    if quarantine:
        lines += _table(
            ["reason", "records"], [[k, v] for k, v in sorted(quarantine.items(), key=lambda kv: (-kv[1], kv[0]))]
        )
    else:
        lines.append("No row quarantined.")

    # layout rows skipped, by kind (every non-blank row is loaded, quarantined or counted here)
    skipped = {k: int(v) for k, v in (s.get("skipped") or {}).items() if v}
    lines += ["", "## Rows skipped by kind", ""]
    if skipped:
        lines.append("Non-blank rows below a header that are layout, not data (per sheet: audit.sheets).")
        lines.append("")
        lines += _table(["kind", "rows"], [[k, v] for k, v in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))])
    else:
        lines.append("None.")

    issues = s.get("file_issues") or []
    lines += ["", "## Rejected, ignored and superseded files/sheets", ""]
    if issues:
        lines += _table(
            ["file", "sheet", "severity", "reason"],
            [
                [f"`{i.get('source_file')}`", i.get("sheet") or "(whole file)", i.get("severity"), i.get("reason")]
                for i in sorted(issues, key=lambda i: (str(i.get("source_file")), str(i.get("sheet") or "")))
            ],
        )
    else:
        lines.append("None.")

    # tests
    tests = s.get("tests") or []
    lines += ["", "## Data tests", ""]
    if tests:
        failed = [t for t in tests if not t.get("passed")]
        lines.append(f"{data_tests_phrase(tests)}.")
        lines.append("")
        lines += _table(
            ["test", "severity", "result", "failing rows"],
            [
                [t.get("name"), t.get("severity"), data_test_word(t), t.get("failing_rows") or 0]
                for t in sorted(tests, key=lambda t: (bool(t.get("passed")), str(t.get("name"))))
            ],
        )
        for t in failed:
            if t.get("message"):
                lines += ["", f"**{t.get('name')}:** {t['message']}"]
    else:
        lines.append("Not run.")

    # timings
    timings = s.get("timings") or {}
    lines += ["", "## Timings", ""]
    if timings:
        rows = [[k, f"{float(v):.2f} s"] for k, v in timings.items()]
        rows.append(["total", f"{sum(float(v) for v in timings.values()):.2f} s"])
        lines += _table(["stage", "time"], rows)
    else:
        lines.append("—")
    return "\n".join(lines) + "\n"


def summary_table(summary: RunSummary | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows per reporting unit as a list of dicts (for `create_table_artifact`)."""
    s = _as_dict(summary)
    return [
        {
            "year": d.get("year"),
            "unit": d.get("unit_code") or "province",
            "name": d.get("unit_name"),
            **({"form": d.get("form")} if d.get("form") else {}),
            "rows_loaded": int(d.get("rows_loaded") or 0),
            "rows_quarantined": int(d.get("rows_rejected") or 0),
        }
        for d in s.get("districts") or []
    ]


def reports_dir(warehouse: Path) -> Path:
    return WarehouseFiles(warehouse).reports


def report_file_name(summary: RunSummary | Mapping[str, Any]) -> str:
    s = _as_dict(summary)
    started = s.get("started_at")
    if not isinstance(started, datetime):
        started = datetime.now(UTC)
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = "".join(c if c.isalnum() or c in "-_" else "-" for c in str(s.get("run_id") or "unknown"))
    if run_id.startswith(stamp):  # coop's run ids already begin with their start time
        return f"run-{run_id}.md"
    return f"run-{stamp}-{run_id}.md"


def write_run_report(summary: RunSummary | Mapping[str, Any], warehouse: Path) -> Path:
    """Write `<warehouse folder>/reports/run-<UTC timestamp>-<run_id>.md` (atomically) and
    return its path. Sets `summary.report_path` when given a RunSummary."""
    folder = reports_dir(warehouse)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / report_file_name(summary)
    tmp = folder / f".{path.name}.tmp-{os.getpid()}"
    tmp.write_text(render_run_report(summary), encoding="utf-8")
    tmp.replace(path)
    if isinstance(summary, RunSummary):
        summary.report_path = str(path)
    return path


def rejected_files(summary: RunSummary) -> list[str]:
    """Files rejected whole (a file issue with no sheet), sorted: the console summary's."""
    return sorted({i["source_file"] for i in (summary.file_issues or [])
                   if i.get("sheet") is None and i.get("severity") == "rejected"})


def summary_lines(summary: RunSummary) -> list[str]:
    """The console summary's "Files:" line and, when known, its "Rows:" line (every run's,
    the no-op's of coop.run.quick too)."""
    files = summary.files or {}
    n = {k: len(files.get(k) or []) for k in ("new", "changed", "unchanged", "removed")}
    lines = [f"Files: {n['new'] + n['changed'] + n['unchanged']} seen — {n['new']} new, {n['changed']} changed, "
             f"{n['unchanged']} unchanged, {n['removed']} removed; {len(rejected_files(summary))} rejected"]
    if summary.rows_loaded is not None:
        def count(v: int | None) -> str:
            return "—" if v is None else f"{v:,}"

        lines.append(f"Rows: {count(summary.rows_loaded)} loaded, {count(summary.rows_rejected)} quarantined")
    return lines


def quarantine_by_reason(reason_codes: Iterable[object]) -> dict[str, int]:
    """Count reason codes (e.g. the `reason_code` column of the rejected rows)."""
    return dict(Counter(str(r) for r in reason_codes))


# --------------------------------------------------------------------------- progress
# What the console shows while a command works (docs/operations.md, "What the console shows"):
# every line on stderr (stdout keeps the summary and `--format json` clean), each line
# `HH:MM:SS <Vietnamese> (<English>)`, whether stderr is a terminal or a cron log. The first
# line ("Đang khởi động… (starting…)") is printed by coop/cli.py before anything heavy is
# imported; then one line per stage of a run (`stage_line`, called by
# `coop.run.lock.stage_checkpoint`), and while files are read a counter (`progress`).

#: Stage -> (Vietnamese, English) of its console line; `{n}` = files.
STAGE_WORDS: dict[str, tuple[str, str]] = {
    "check": ("Đang kiểm tra tệp mới và tệp đã thay đổi…", "checking for new and changed files…"),
    "orchestrator": ("Đang khởi động bộ điều phối…", "starting the orchestrator…"),
    "discover": ("Đang tìm tệp…", "discovering files…"),
    "hashing": ("Đang tính mã băm {n} tệp…", "hashing {n} files…"),
    "reading": ("Đang đọc {n} tệp…", "reading {n} files…"),
    "loading": ("Đang nạp dữ liệu vào kho…", "loading the build…"),
    "models": ("Đang tính các bảng chỉ tiêu…", "building the SQL models…"),
    "tests": ("Đang kiểm tra dữ liệu…", "running the data tests…"),
    "publish": ("Đang công bố kho dữ liệu…", "publishing the warehouse…"),
    "report": ("Đang ghi báo cáo lần chạy…", "writing the run report…"),
}
#: Plain counter lines (not a terminal): at most one per this many seconds, and the last one.
PROGRESS_INTERVAL = 1.0

def stage_text(stage: str, files: int | None = None) -> str | None:
    """The console line of a stage ('Đang đọc 320 tệp… (reading 320 files…)'), None for a
    stage without one (e.g. `rename`, a test-only pause point)."""
    words = STAGE_WORDS.get(stage)
    if words is None:
        return None
    vi, en = (w.replace("{n} ", "" if files is None else f"{files:,} ") for w in words)
    if files == 1:
        en = en.replace(" files…", " file…")  # "reading 1 file…"
    return f"{vi} ({en})"


def stage_line(stage: str, files: int | None = None) -> None:
    """Print the console line of `stage` on stderr (nothing for a stage without one)."""
    text = stage_text(stage, files)
    if text is not None:
        console_line(text)


def _interactive(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    if os.environ.get("CI") or os.environ.get("COOP_NO_PROGRESS"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_current: list[Callable[[str | None], None]] = []  # stack of active progress displays
_current_guard = threading.Lock()


def progress_tick(label: str | None = None) -> None:
    """Advance the innermost active `progress(...)` display by one item (no-op when none).

    For code that does not know about the display: e.g. a reader called from several
    worker threads inside the flow's `with progress(n):` block."""
    with _current_guard:
        advance = _current[-1] if _current else None
    if advance is not None:
        advance(label)


@contextmanager
def _registered(advance: Callable[[str | None], None]) -> Iterator[Callable[[str | None], None]]:
    with _current_guard:
        _current.append(advance)
    try:
        yield advance
    finally:
        with _current_guard:
            _current.remove(advance)


@contextmanager
def progress(
    total: int,
    description: str = "Đang đọc tệp",
    english: str = "reading files",
    interactive: bool | None = None,
    interval: float = PROGRESS_INTERVAL,
) -> Iterator[Callable[[str | None], None]]:
    """Show progress of a long loop. Yields `advance(label=None)`, to call once per item
    (from any thread; `progress_tick` reaches it from code that does not hold it).

    In a terminal: a rich progress bar on stderr. Elsewhere (not a TTY, `CI` set,
    `COOP_NO_PROGRESS` set): plain lines on stderr (`console_line`),
    'Đang đọc tệp 120/320 (reading files) — 2024/148/a.xlsx, 12.3 s', at most one every
    `interval` seconds, and always the last one (n/n).
    """
    if interactive is None:
        interactive = _interactive()
    if interactive and total > 0:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[label]}", style="dim"),
            console=Console(stderr=True),
            transient=False,
            refresh_per_second=4,
        )
        with bar:
            task = bar.add_task(f"{description} ({english})", total=total, label="")

            def advance_bar(label: str | None = None) -> None:
                bar.update(task, advance=1, label=label or "")

            with _registered(advance_bar):
                yield advance_bar
        return

    done = 0
    start = last = time.monotonic()
    guard = threading.Lock()

    def advance(label: str | None = None) -> None:
        nonlocal done, last
        with guard:  # the line is written under the lock too: lines from worker threads stay in order
            done += 1
            now = time.monotonic()
            if done == total or now - last >= interval:
                last = now
                console_line(f"{description} {done:,}/{total:,} ({english})"
                             + (f" — {label}" if label else "") + f", {now - start:.1f} s")

    with _registered(advance):
        yield advance
