"""The `coop` command line: the operator's and the clerk's interface.

Each command is a thin wrapper: parse options, call a plain function, turn its outcome
into console output and an exit code. Heavy imports happen inside the commands so that
`coop --help` and `coop validate` stay fast.

The first thing the process does, before importing typer (≈ 0.1 CPU-s) and long before
polars, DuckDB or Prefect (seconds), is print "Đang khởi động… (starting…)" on stderr when
the command line names a command (not for `--help` / `--version`): see `announce_start` and
docs/operations.md, "What the console shows".
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import Annotated, TextIO

from coop.console import console_line

#: The first console line of every command (stderr, `HH:MM:SS ` first like every progress line).
STARTING_LINE = "Đang khởi động… (starting…)"
#: The commands that print it: all of them — each one imports polars, DuckDB or Prefect and
#: takes 1-9 s (wall) on the 2-core machine (docs/operations.md, "What the console shows").
#: tests/test_progress_lines.py checks this is every command the app has.
ANNOUNCED_COMMANDS = frozenset({
    "validate", "run", "backfill", "rollback", "status", "serve", "plan", "check", "runs", "report",
    "dictionary", "template", "feedback",
})
_OPTIONS_WITH_VALUE = ("--province",)  # the global options that take a value (see `global_options`)


def command_of(argv: list[str]) -> str | None:
    """The command a coop command line (without the program name) runs, or None when it runs
    none that works: no command, `--help` anywhere after it, `--version`, an unknown name."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] in _OPTIONS_WITH_VALUE:
            i += 2
        elif argv[i].startswith(tuple(f"{o}=" for o in _OPTIONS_WITH_VALUE)):
            i += 1
        else:
            return None  # --version, --help, or an option typer refuses at once
    if i >= len(argv) or argv[i] not in ANNOUNCED_COMMANDS or "--help" in argv[i + 1:]:
        return None
    return argv[i]


def announce_start(argv: list[str], stream: TextIO | None = None) -> bool:
    """Print `HH:MM:SS Đang khởi động… (starting…)` on stderr (flushed) when `argv` runs a
    command; True when printed. Called at import by the `coop` console script and by
    `python -m coop.cli`, before any other import."""
    if command_of(argv) is None:
        return False
    return console_line(STARTING_LINE, stream)  # no usable stderr: False, the command runs all the same


if __name__ == "__main__" or os.path.basename(sys.argv[0] if sys.argv else "") == "coop":
    announce_start(sys.argv[1:])
    from coop.run.quick import quick_run  # a plain `coop run` with nothing changed ends here, in ≈ 0.1 s

    _quick = quick_run(sys.argv[1:])
    if _quick is not None:
        sys.exit(_quick)

from enum import StrEnum  # noqa: E402 - after the starting line, on purpose
from pathlib import Path  # noqa: E402

import typer  # noqa: E402

from coop.paths import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE  # noqa: E402

app = typer.Typer(
    name="coop",
    help="Province collective-economy warehouse: district (to 2024) and commune (from 2025) spreadsheets in, "
         "DuckDB indicators out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


FormatOption = Annotated[OutputFormat, typer.Option("--format", help="text for people, json for machines.")]
RawDir = Annotated[Path, typer.Option("--raw-dir", help="Folder of unit files: <year>/<district or commune>/<file>.")]
Warehouse = Annotated[Path, typer.Option("--warehouse", help="Published DuckDB file.")]


def _show_version(value: bool) -> None:
    if value:
        from coop.run.ops import version_text

        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def global_options(
    province: Annotated[str | None, typer.Option(
        "--province", envvar="COOP_PROVINCE",
        help="Today's province served: GSO code or name (default from coop.toml: 25 Phú Thọ); VN = whole country.",
    )] = None,
    version: Annotated[bool | None, typer.Option(
        "--version", is_eager=True, callback=_show_version,
        help="Print coop's version (and git describe), DuckDB's and Prefect's, and exit.")] = None,
) -> None:
    """Options for every command."""
    import os

    from coop.run.prefect_env import offline_prefect

    offline_prefect()  # no telemetry, no notice, loopback never through a proxy: every command, `serve` too
    if province:
        # one setting for the whole command, Prefect flows and child processes included
        os.environ["COOP_PROVINCE"] = province


def parse_years(spec: str | None) -> tuple[int, int] | None:
    """`2019-2021` -> (2019, 2021); `2020` -> (2020, 2020); None -> None."""
    if not spec:
        return None
    part = spec.replace("–", "-").split("-")
    try:
        if len(part) == 1:
            y = int(part[0])
            return (y, y)
        if len(part) == 2:
            a, b = int(part[0]), int(part[1])
            if a <= b:
                return (a, b)
    except ValueError:
        pass
    raise typer.BadParameter(f"expected YEAR or YEAR-YEAR, got {spec!r}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Spreadsheets to check (.xlsx .xls .ods .csv).")],
    district: Annotated[str | None, typer.Option(
        "--unit", "--district",
        help="Reporting unit (code or name: a commune from 2025, a district up to 2024) "
             "when the path does not say.")] = None,
    year: Annotated[int | None, typer.Option(help="Report year when the path does not say.")] = None,
    format: FormatOption = OutputFormat.text,
) -> None:
    """Check spreadsheets as the province would, before sending them. Loads nothing."""
    from coop.ingest.preflight import run_validate

    raise typer.Exit(run_validate(files, district=district, year=year, fmt=format.value))


AllowShrink = Annotated[bool, typer.Option(
    "--allow-shrink",
    help="Publish even when files, units or register rows vanish at once, or the raw folder is empty "
         "(the publish guards, docs/operations.md).")]


@app.command()
def run(
    raw_dir: RawDir = DEFAULT_RAW_DIR,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    years: Annotated[str | None, typer.Option(help="Only these report years, e.g. 2019-2021.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for a run already going instead of exiting.")] = False,
    allow_shrink: AllowShrink = False,
) -> None:
    """The nightly run: pick up new and changed files, rebuild, test and publish."""
    from coop.run.runner import run_command

    raise typer.Exit(run_command(raw_dir=raw_dir, warehouse=warehouse, years=parse_years(years), wait=wait,
                                 allow_shrink=allow_shrink))


@app.command()
def backfill(
    from_year: Annotated[int | None, typer.Option("--from", help="First report year to reprocess.")] = None,
    to_year: Annotated[int | None, typer.Option("--to", help="Last report year to reprocess.")] = None,
    all_years: Annotated[bool, typer.Option(
        "--all",
        help="Rebuild from nothing: every year re-read, the published warehouse ignored (e.g. damaged).")] = False,
    raw_dir: RawDir = DEFAULT_RAW_DIR,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for a run already going instead of exiting.")] = False,
    allow_shrink: AllowShrink = False,
) -> None:
    """Reprocess these years (--from/--to) or everything (--all) whether or not their files changed."""
    from coop.run.runner import backfill_command

    years: tuple[int, int] | None
    if all_years:
        if from_year is not None or to_year is not None:
            raise typer.BadParameter("--all rebuilds every year: leave out --from/--to")
        years = None
    else:
        if from_year is None or to_year is None:
            raise typer.BadParameter("give --from and --to, or --all")
        years = (from_year, to_year)
    raise typer.Exit(backfill_command(raw_dir=raw_dir, warehouse=warehouse, years=years, wait=wait,
                                      allow_shrink=allow_shrink, fresh=all_years))


@app.command()
def rollback(
    to: Annotated[str | None, typer.Option(
        "--to", help="Run id (or a unique beginning of it) whose warehouse to publish again; default: the one "
                     "before the published one.")] = None,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    list_versions: Annotated[bool, typer.Option("--list", help="Only list the versions kept.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for a run already going instead of exiting.")] = False,
) -> None:
    """Publish a previous warehouse again (kept in data/warehouse/versions/), atomically."""
    from coop.warehouse.guards import rollback_command

    raise typer.Exit(rollback_command(warehouse, to=to, wait=wait, list_only=list_versions))


@app.command()
def status(
    raw_dir: RawDir = DEFAULT_RAW_DIR,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    format: Annotated[OutputFormat, typer.Option("--format")] = OutputFormat.text,
    year: Annotated[int | None, typer.Option(
        "--year", help="Only this report year: every unit expected, who to call.")] = None,
) -> None:
    """What was received per year and unit (district to 2024, commune from 2025), when, and what was rejected."""
    from coop.outputs.status import status_command

    raise typer.Exit(status_command(raw_dir=raw_dir, warehouse=warehouse, fmt=format.value, year=year))


@app.command()
def serve() -> None:
    # typer shows a docstring's first line break in the command list: the summary stays on one line
    """Serve the Prefect deployments (nightly at 01:00 Asia/Ho_Chi_Minh, and backfill). Needs a running `prefect server start` and PREFECT_API_URL (refuses otherwise, exit 2)."""  # noqa: E501
    from flows.slot import ServeRefused, require_persistent_api

    try:
        require_persistent_api()  # before Prefect is imported: a clear refusal, no traceback
    except ServeRefused as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    from flows.deployments import serve_all

    serve_all()


# ---------------------------------------------------------------- operations (issue 12): coop/run/ops.py
@app.command()
def plan(
    raw_dir: RawDir = DEFAULT_RAW_DIR,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    years: Annotated[str | None, typer.Option(
        help="Plan a run limited to these report years, e.g. 2019-2021.")] = None,
    allow_shrink: Annotated[bool, typer.Option("--allow-shrink", help="Judge the publish guards as `coop run "
                                               "--allow-shrink` would.")] = False,
    format: FormatOption = OutputFormat.text,
) -> None:
    """What `coop run` would do now: files new/changed/removed/superseded/rejected, years and models to rebuild, the publish guards' verdict. Changes nothing (exit 0)."""  # noqa: E501 - one line, see serve
    from coop.run.ops import plan_command

    raise typer.Exit(plan_command(raw_dir, warehouse, parse_years(years), format.value, allow_shrink))


@app.command()
def check(
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    format: FormatOption = OutputFormat.text,
    tests_dir: Annotated[Path | None, typer.Option(
        "--tests-dir", help="Data tests to run (default sql/tests).")] = None,
) -> None:
    """Run the SQL data tests against the published warehouse (read-only). Exit 1 when an error-level test fails."""
    from coop.run.ops import check_command

    raise typer.Exit(check_command(warehouse, format.value, tests_dir))


runs_app = typer.Typer(help="Run history: the latest runs, and one run's report.", no_args_is_help=False)
app.add_typer(runs_app, name="runs")


@runs_app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs (newest first).")] = 10,
    format: FormatOption = OutputFormat.text,
) -> None:
    """The latest runs: status, start (Vietnam time), duration, files, rows, quarantined, data tests."""
    if ctx.invoked_subcommand is not None:
        return
    from coop.run.ops import runs_command

    raise typer.Exit(runs_command(warehouse, limit, format.value))


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique part of it, or `latest`).")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
) -> None:
    """Print a run's report (markdown, from <warehouse folder>/reports/)."""
    from coop.run.ops import runs_show_command

    raise typer.Exit(runs_show_command(warehouse, run_id))


# ---------------------------------------------------------------- outputs for people (issue 5)
OutDir = Annotated[Path | None, typer.Option("--out", help="Output folder (default: data/outputs/...).")]


def _outputs_dir(out: Path | None, *parts: str) -> Path:
    from coop.paths import PROJECT_ROOT

    return out if out is not None else PROJECT_ROOT.joinpath("data", "outputs", *parts)


@app.command()
def report(
    year: Annotated[int, typer.Option("--year", help="Report year.")],
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    out: OutDir = None,
) -> None:
    """The province report for a year: self-contained HTML (charts inline) and an Excel workbook."""
    from coop.outputs.report import ReportError, build_report

    try:
        files = build_report(year, warehouse, _outputs_dir(out, "report"))
    except ReportError as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"HTML:  {files.html}")
    typer.echo(f"Excel: {files.xlsx}")


@app.command()
def dictionary(
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Document to write (default docs/warehouse.md).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Only compare; exit 1 when the document is out of date.")] = False,
) -> None:
    """Generate the data dictionary (docs/warehouse.md) from the warehouse's own comments."""
    from coop.outputs.dictionary import DEFAULT_DOC, diff_dictionary, write_dictionary

    if not warehouse.exists():
        typer.echo(f"Lỗi: không tìm thấy kho dữ liệu {warehouse} (chạy `coop run` trước).", err=True)
        raise typer.Exit(1)
    doc = out or DEFAULT_DOC
    if check:
        diff = diff_dictionary(warehouse, doc)
        for line in diff[:200]:
            typer.echo(line)
        if diff:
            typer.echo(f"{doc} is out of date: run `coop dictionary`.", err=True)
        raise typer.Exit(1 if diff else 0)
    typer.echo(f"Data dictionary: {write_dictionary(warehouse, doc)}")


@app.command()
def template(
    year: Annotated[int, typer.Option("--year", help="Report year the workbook is for.")],
    unit: Annotated[str | None, typer.Option(
        "--unit", "--district",
        help="Reporting unit (code or name) to print on the sheets: "
             "a commune from 2025, a district up to 2024.")] = None,
    out: OutDir = None,
) -> None:
    """The blank workbook of a reporting unit (forms HTX, THT, HO_TRO) with drop-down lists and validation."""
    from coop.outputs.template import TemplateError, build_template

    try:
        path = build_template(year, _outputs_dir(out, "templates"), unit)
    except TemplateError as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Biểu mẫu: {path}")


@app.command()
def feedback(
    year: Annotated[int, typer.Option("--year", help="Report year.")],
    unit: Annotated[str | None, typer.Option(
        "--unit", "--district",
        help="Only this reporting unit (code or name): a commune from 2025, a district up to 2024.")] = None,
    raw_dir: RawDir = DEFAULT_RAW_DIR,
    warehouse: Warehouse = DEFAULT_WAREHOUSE,
    out: OutDir = None,
) -> None:
    """Per reporting unit (commune from 2025, district before): a workbook of its rejected rows and files."""
    from coop.outputs.feedback import FeedbackError, build_feedback

    if not warehouse.exists():
        typer.echo(f"Lỗi: không tìm thấy kho dữ liệu {warehouse} (chạy `coop run` trước).", err=True)
        raise typer.Exit(1)
    try:
        paths = build_feedback(year, warehouse, _outputs_dir(out, "feedback", str(year)), raw_dir, unit)
    except FeedbackError as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    if not paths:
        typer.echo(f"Năm {year}: không có dòng hay tệp nào bị từ chối" + (f" ở {unit}." if unit else "."))
    for p in paths:
        typer.echo(f"Phản hồi: {p}")


def main() -> None:  # pragma: no cover - console entry point
    # At exit, CPython's finalization runs full garbage collections over everything a command
    # imported (Prefect, pydantic, polars: ≈ 160,000 objects): 0.6–0.9 CPU-s after a `coop run`
    # with nothing left to do. Freezing the heap at exit leaves those collections nothing to
    # walk. Registered before the command imports Prefect or starts the reader pool, it runs
    # after their exit handlers (atexit is last in, first out); handlers registered earlier
    # (logging's flush) run after it, unaffected: freezing only stops the cyclic collector.
    # Memory goes back with the process (docs/performance.md, "Prefect's share of a run").
    atexit.register(gc.freeze)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
