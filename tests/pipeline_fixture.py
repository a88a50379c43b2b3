"""A stand-in reader for the pipeline tests (load, publish, flow, incremental).

These tests are about what happens *after* reading — lineage, audit, the cache, publish —
so they use a tiny, obvious reader instead of coop's real one: files are CSVs named after
their form (`htx.csv`, `tht.csv`, `ho_tro.csv`) under `<year>/<district code>/`, with the
canonical column names; a row whose `members` is negative is quarantined
(`negative_value`). Everything else is a `misplaced_file`. The expected figures in the
tests are computed by hand from the rows written here.

`install(monkeypatch)` swaps `coop.discover`, `coop.reference` and `coop.ingest` for these
fakes for one test; `CALLS` records every file the fake reader read.
"""

from __future__ import annotations

import hashlib
import sys
import types
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

REJECTED_ROW_SCHEMA = {"source_file": pl.String, "sheet": pl.String, "row_number": pl.Int64, "column_name": pl.String,
                       "raw_value": pl.String, "reason_code": pl.String, "reason": pl.String}

CALLS: list[str] = []

HTX_HEADER = "reg_code,name,kind,established_on,sector,status,members,workers,revenue,profit,income,high_tech"


@dataclass
class RawFile:
    path: Path
    source_file: str
    year: int
    district_code: str | None


@dataclass
class FileIssue:
    source_file: str
    sheet: str | None
    reason_code: str
    reason: str
    severity: str


@dataclass
class SheetInfo:
    name: str
    form: str | None
    rows_accepted: int = 0
    rows_rejected: int = 0


@dataclass
class FileResult:
    source_file: str
    year: int | None
    district_code: str | None
    file_hash: str
    modified_at: datetime
    forms: dict
    rejected_rows: pl.DataFrame
    file_issues: list
    sheets: list


def load_reference():
    return types.SimpleNamespace(districts=[
        {"code": "148", "name": "Thành phố Hòa Bình", "province": "17", "valid_from": "1900-01-01", "valid_to": None},
        {"code": "157", "name": "Lạc Sơn", "province": "17", "valid_from": "1900-01-01", "valid_to": None},
    ])


def discover(raw_root, reference, years):
    raw_root = Path(raw_root)
    out, issues = [], []
    for p in sorted(raw_root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(raw_root).as_posix()
        parts = rel.split("/")
        if len(parts) != 3 or not parts[0].isdigit():
            issues.append(FileIssue(rel, None, "misplaced_file", "Tệp không nằm trong <năm>/<huyện>/ [misplaced_file]", "rejected"))
            continue
        y = int(parts[0])
        if years and not (years[0] <= y <= years[1]):
            continue
        out.append(RawFile(p, rel, y, None if parts[1] == "province" else parts[1]))
    return out, issues


def ingest_file(raw, reference):
    CALLS.append(raw.source_file)
    data = raw.path.read_bytes()
    df = pl.read_csv(raw.path, schema_overrides={"reg_code": pl.String})
    form = raw.path.stem.upper()
    df = df.with_columns(pl.lit(raw.source_file).alias("source_file"), pl.lit("Sheet1").alias("sheet"),
                         (pl.int_range(pl.len()) + 2).cast(pl.Int64).alias("row_number"))
    bad = df.filter(pl.col("members") < 0)
    good = df.filter(pl.col("members") >= 0)
    for c in ("established_on", "allocated_on"):
        if c in good.columns:
            good = good.with_columns(pl.col(c).str.to_date())
    rej = pl.DataFrame({"source_file": bad["source_file"], "sheet": bad["sheet"], "row_number": bad["row_number"],
                        "column_name": ["members"] * bad.height, "raw_value": bad["members"].cast(pl.String),
                        "reason_code": ["negative_value"] * bad.height,
                        "reason": [f"Giá trị âm: {v} [negative_value]" for v in bad["members"]]},
                       schema=REJECTED_ROW_SCHEMA)
    return FileResult(raw.source_file, raw.year, raw.district_code, hashlib.sha256(data).hexdigest(),
                      datetime.fromtimestamp(raw.path.stat().st_mtime, tz=timezone.utc),
                      {form: good}, rej, [], [SheetInfo("Sheet1", form, good.height, bad.height)])


def select_submissions(results):
    return list(results)


def install(monkeypatch) -> list[str]:
    """Use the fakes for this test; returns the (cleared) list of files read."""
    import coop

    CALLS.clear()
    mod = sys.modules[__name__]
    for name in ("discover", "reference", "ingest"):
        fake = types.ModuleType(f"coop.{name}")
        fake.__dict__.update({k: v for k, v in mod.__dict__.items() if not k.startswith("__")})
        monkeypatch.setitem(sys.modules, f"coop.{name}", fake)
        monkeypatch.setattr(coop, name, fake, raising=False)
    return CALLS


def htx_csv(rows: list[str]) -> str:
    return HTX_HEADER + "\n" + "\n".join(rows) + "\n"


def write_raw(root: Path) -> Path:
    """The small province used by the pipeline tests (figures in the docstrings of the tests):

    2020/148/htx.csv: 0101 active 10 members (est. 2020), 0102 active 20 members (est. 2019),
                      0103 quarantined (members -5)
    2020/157/htx.csv: 0201 active 7 members (est. 2018), 0202 dissolved 3 members (est. 2020)
    notes.txt        : misplaced (rejected by discovery)
    """
    (root / "2020" / "148").mkdir(parents=True, exist_ok=True)
    (root / "2020" / "157").mkdir(parents=True, exist_ok=True)
    (root / "2020" / "148" / "htx.csv").write_text(htx_csv([
        "0101,HTX Một,htx,2020-03-01,agriculture,active,10,8,100,10,3.0,true",
        "0102,HTX Hai,htx,2019-05-01,transport,active,20,,300,30,4.0,false",
        "0103,HTX Ba,htx,2019-05-01,transport,active,-5,,300,30,4.0,false",
    ]), encoding="utf-8")
    (root / "2020" / "157" / "htx.csv").write_text(htx_csv([
        "0201,HTX Bốn,htx,2018-01-10,agriculture,active,7,7,200,20,2.0,false",
        "0202,HTX Năm,htx,2020-02-02,agriculture,dissolved,3,3,,,,false",
    ]), encoding="utf-8")
    (root / "notes.txt").write_text("not a report\n", encoding="utf-8")
    return root
