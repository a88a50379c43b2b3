"""One run's context, built once where a command starts and passed down.

- `WarehouseFiles`: every file and folder that lives beside a warehouse file — the only
  place their names are derived (`data/warehouse/coop.duckdb` -> `.state/`, `versions/`,
  `reports/`, the lock, a run's private build file and scratch folder). Every module that
  needs one of them asks this object (the historical helpers `state_dir`, `lock_path`,
  `build_path`, `temp_dir`, `versions_dir`, `reports_dir` delegate to it).
- `RunContext`: what one `coop run` / `coop backfill` works with — run id, raw folder,
  warehouse files, settings, reference, SQL folders, the years asked for. Built by
  `run_context(...)` once (in the flow, or by the fast "nothing changed" check) and handed to
  every step; steps never re-read settings or re-derive paths.

The object pickles (a Dask worker gets it with its batch of files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from coop.paths import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE, SQL_DIR

if TYPE_CHECKING:
    from coop.reference import Reference
    from coop.settings import Settings

#: Kept published versions (`coop rollback`), beside the warehouse file.
VERSIONS_DIR = "versions"
#: Run reports (markdown), beside the warehouse file.
REPORTS_DIR = "reports"
#: State between runs (hash ledger, parsed-file cache, published fingerprint), beside the warehouse.
STATE_DIR = ".state"

#: Years a fresh rebuild re-reads (`coop backfill --all`): every year.
ALL_YEARS = (1000, 9999)


@dataclass(frozen=True)
class WarehouseFiles:
    """The published warehouse file and everything coop keeps beside it."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def state(self) -> Path:
        """`.state/`: hashes.json, cache/, published.json, pending_runs.jsonl, retry.json, model_deps.json."""
        return self.folder / STATE_DIR

    @property
    def versions(self) -> Path:
        return self.folder / VERSIONS_DIR

    @property
    def reports(self) -> Path:
        return self.folder / REPORTS_DIR

    @property
    def lock(self) -> Path:
        """`data/warehouse/coop.duckdb` -> `data/warehouse/.coop.lock`."""
        return self.folder / f".{self.path.stem}.lock"

    def build(self, run_id: str) -> Path:
        """The private file a run builds in: `.coop.duckdb.build-<run_id>` (the `.<name>.build-`
        prefix is how `cleanup_stale` recognises what a killed run left behind)."""
        return self.folder / f".{self.path.name}.build-{run_id}"

    def temp(self, run_id: str) -> Path:
        """A private scratch folder for one run (removed by `cleanup_stale` if the run dies)."""
        return self.folder / f".{self.path.name}.tmp-{run_id}"

    def version(self, run_id: str) -> Path:
        """The kept copy of the warehouse run `run_id` published."""
        return self.versions / f"{self.path.stem}-{run_id}{self.path.suffix}"


def new_run_id(now: datetime | None = None) -> str:
    """`20261126T223000Z-1a2b3c`: sortable, unique."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + os.urandom(3).hex()


@dataclass(frozen=True)
class RunContext:
    """One run: built once by `run_context`, passed to every step."""

    run_id: str
    started_at: datetime
    kind: str  # nightly | backfill
    raw_dir: Path
    files: WarehouseFiles
    settings: Settings
    reference: Reference
    sql_dir: Path
    tests_dir: Path
    years: tuple[int, int] | None = None  # only these report years (the others stay as published)
    backfill_years: tuple[int, int] | None = None  # re-read these years whatever the cache says
    allow_shrink: bool = False
    fresh: bool = False  # rebuild from nothing (`backfill --all`)
    wait: bool = False  # wait for another run's lock instead of giving up
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def warehouse(self) -> Path:
        return self.files.path

    @property
    def state(self) -> Path:
        return self.files.state

    @property
    def build(self) -> Path:
        return self.files.build(self.run_id)


def run_context(raw_dir: Path = DEFAULT_RAW_DIR, warehouse: Path = DEFAULT_WAREHOUSE, *,
                years: tuple[int, int] | None = None, backfill_years: tuple[int, int] | None = None,
                allow_shrink: bool = False, fresh: bool = False, wait: bool = False,
                sql_dir: Path | None = None, tests_dir: Path | None = None,
                started_at: datetime | None = None) -> RunContext:
    """The context of a run starting now: settings and reference read once, paths resolved,
    a new run id. `fresh` means every year re-read (years=None, backfill_years=ALL_YEARS)."""
    from coop.reference import load_reference
    from coop.settings import load_settings

    started = started_at or datetime.now(UTC)
    settings = load_settings()
    if fresh:
        years, backfill_years = None, ALL_YEARS
    sql = Path(sql_dir) if sql_dir else SQL_DIR
    return RunContext(
        run_id=new_run_id(started), started_at=started, kind="backfill" if backfill_years else "nightly",
        raw_dir=Path(raw_dir).resolve(), files=WarehouseFiles(Path(warehouse).resolve()), settings=settings,
        reference=load_reference(province=settings.province), sql_dir=sql,
        tests_dir=Path(tests_dir) if tests_dir else sql / "tests", years=years, backfill_years=backfill_years,
        allow_shrink=allow_shrink, fresh=fresh, wait=wait)
