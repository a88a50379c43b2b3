"""The small province of the pipeline tests (load, publish, flow, incremental), read by the
real pipeline.

These tests are about what happens *after* reading — lineage, audit, the cache, publish —
so the files are tiny and obvious: `htx.csv` under `<year>/<district code>/`, one row per
cooperative written in the canonical column order (`htx_csv`) and turned into the form's
Vietnamese headers and spellings here; a row whose `members` is negative is quarantined by
the real reader (`negative_value`). Discovery, the reference and the reader are coop's own
(`discover`, `load_reference`, `ingest_file` below are the real functions); `install`
only records which files the real reader read (`CALLS`). The expected figures in the tests
are computed by hand from the rows written here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from coop.ingest import normalize as ingest
from coop.ingest.discover import discover  # noqa: F401  (re-exported for the tests)
from coop.ingest.normalize import ingest_file  # noqa: F401
from coop.reference import load_reference as _load_reference

CALLS: list[str] = []

HTX_COLUMNS = ["reg_code", "name", "kind", "established_on", "sector", "status", "members", "workers", "revenue",
               "profit", "income", "high_tech"]
HTX_HEADER = ("Mã số HTX,Tên HTX,Loại hình,Ngày thành lập,Lĩnh vực,Tình trạng,Số thành viên,Số lao động,"
              "Doanh thu,Lợi nhuận,Thu nhập bình quân,Ứng dụng công nghệ cao")
_SPELL = {
    "kind": {"htx": "HTX", "union": "Liên hiệp HTX"},
    "sector": {"agriculture": "Nông nghiệp", "transport": "Vận tải", "handicraft": "TTCN"},
    "status": {"active": "Đang hoạt động", "suspended": "Tạm ngừng hoạt động", "dissolved": "Giải thể"},
    "high_tech": {"true": "x", "false": ""},
}


def load_reference():
    """The shipped reference for today's Phú Thọ (districts 148 and 157 of former Hòa Bình)."""
    return _load_reference(province="25")


def install(monkeypatch) -> list[str]:
    """Record every file the real reader reads in this test; returns the (cleared) list."""
    CALLS.clear()
    real = ingest.ingest_file

    def recording(raw, reference=None, **kw):
        CALLS.append(raw.source_file)
        return real(raw, reference, **kw)

    monkeypatch.setattr(ingest, "ingest_file", recording)
    return CALLS


def htx_csv(rows: list[str]) -> str:
    """Rows in canonical order and codes (`0101,HTX Một,htx,2020-03-01,agriculture,active,10,8,100,10,3.0,true`)
    -> the CSV a district would send (Vietnamese headers and spellings)."""
    out = [HTX_HEADER]
    for row in rows:
        cells = row.split(",")
        out.append(",".join(_SPELL.get(c, {}).get(v, v) for c, v in zip(HTX_COLUMNS, cells)))
    return "\n".join(out) + "\n"


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


def sha(p: Path) -> str:
    """sha256 of a file's bytes (is the published warehouse byte-identical?)."""
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def query(wh: Path, sql: str) -> list[tuple]:
    """Rows of `sql` on the warehouse, opened read-only as an analyst would."""
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def flat(text: str) -> str:
    """Console text with its wrapping undone."""
    return " ".join(text.split())


def coop_in_process(*args: str, **env: str) -> tuple[int, str]:
    """`coop ARGS...` through the CLI (typer's CliRunner) in this process, with `env` set for
    the call: (exit code, console output). A `coop run` here talks to the test session's
    Prefect API (request the `prefect_harness` fixture): the same run as the `coop run`
    subprocess minus the interpreter start and the temporary API server (15-20 CPU-s each).
    The process environment and coop's logger are restored afterwards (the CLI sets Prefect's
    offline and quiet variables; its log handler would keep CliRunner's closed stream)."""
    import logging
    import os

    from typer.testing import CliRunner

    from coop.cli import app

    saved_env = dict(os.environ)
    logger = logging.getLogger("coop")
    saved_log = (list(logger.handlers), logger.level, logger.propagate)
    try:
        os.environ.update(env)
        res = CliRunner().invoke(app, [str(a) for a in args])
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        logger.handlers[:] = saved_log[0]
        logger.setLevel(saved_log[1])
        logger.propagate = saved_log[2]
    out = res.output
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback

        out += "".join(traceback.format_exception(res.exception))
    return res.exit_code, out
