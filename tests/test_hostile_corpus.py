"""The hostile corpus (issue 9, "Done when"): one class per hostile input of the issue, each a
small file generated in tests/hostile_fixtures.py with the rows planted in it written by hand.

For every class, through the real pipeline pieces:
- discovery and the reader (`coop.ingest.discover.discover`, `coop.ingest.normalize.ingest_file`,
  exactly what a run calls): the rows loaded, the rows quarantined (sheet, row, column, reason
  code), the rows skipped per kind, and the file/sheet issues equal the planted ones; so
  loaded + quarantined + skipped = the planted non-blank rows below the header;
- `coop validate` (the CLI, `--format json` and text): the exit code, the verdict, the reason
  codes, each bad cell named by sheet, row and column, the Vietnamese sentence first and the
  code in brackets last, the words the class's message must carry.
The same classes all at once in one `coop run` beside a good province: tests/test_hostile_runs.py.

A class whose behaviour the issue leaves open between two readings (a CSV quote: every row read,
or the file rejected naming the row) lists both outcomes (`Case.also`); nothing else is loose.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import hostile_fixtures as H
from coop.cli import app
from coop.ingest.discover import discover, display_name
from coop.ingest.normalize import ingest_file
from coop.reference import load_reference

REF = load_reference()
CORPUS = H.corpus()
SKIP_KINDS = ("title", "column_numbers", "section", "total", "signature")
#: A bad cell in validate's text: "Trang 'HTX', dòng 3, cột Số thành viên (members), giá trị '-5': … [negative_value]"
_ROW_LINE = re.compile(r"Trang '(.+?)', dòng (\d+), cột .*?\((\w+)\), giá trị .*\[(\w+)\]$")


def test_the_corpus_has_at_least_sixty_classes():
    assert len(CORPUS) >= 60
    assert len({c.name for c in CORPUS}) == len(CORPUS)


# --------------------------------------------------------------------------- what the reader made of it
def skipped_rows(result: Any, path: Path) -> dict[str, int]:
    """Rows skipped per kind over the file's form sheets (truly blank rows are not counted):
    `SheetInfo.rows_skipped` when the reader records it, else the reader's own layout pass
    (`coop.ingest.read.form_sheet`) on the same sheets."""
    infos = [s for s in result.sheets if s.form]
    got: Counter[str] = Counter()
    recorded = [getattr(s, "rows_skipped", None) for s in infos]
    if infos and all(r is not None for r in recorded):
        for r in recorded:
            got.update(r)
    elif infos:
        from coop.ingest.read import form_sheet, read_sheets

        names = {s.name for s in infos}
        for sheet in read_sheets(path):
            if sheet.name in names:
                fs = form_sheet(sheet)
                if fs is not None:
                    got.update(fs.skipped)
    return {k: v for k, v in got.items() if v and k != "blank"}


def observed(result: Any, path: Path, want: H.Outcome) -> H.Outcome:
    """The reader's result in the terms of a planted Outcome (values only for the keys wanted)."""
    loaded = sum(df.height for df in result.forms.values())
    bad = frozenset((r["sheet"], r["row_number"], r["column_name"], r["reason_code"])
                    for r in result.rejected_rows.to_dicts())
    issues = frozenset((i.sheet or "", i.reason_code, i.severity) for i in result.file_issues)
    values = {}
    for (sheet, row, column) in want.values:
        for df in result.forms.values():
            hit = df.filter((df["sheet"] == sheet) & (df["row_number"] == row))
            if hit.height and column in hit.columns:
                values[(sheet, row, column)] = hit[column][0]
    header_rows = {s.name: s.header_row for s in result.sheets if s.form and s.name in want.header_rows}
    return H.Outcome(loaded=loaded, bad=bad, skipped=skipped_rows(result, path), issues=issues, values=values,
                     header_rows=header_rows)


def _same(got: H.Outcome, want: H.Outcome) -> bool:
    return (got.loaded, got.bad, dict(got.skipped), got.issues, dict(got.values), dict(got.header_rows)) == \
        (want.loaded, want.bad, {k: v for k, v in want.skipped.items() if v}, want.issues, dict(want.values),
         dict(want.header_rows))


def _reasons(result: Any) -> list[tuple[str, str]]:
    return [(i.reason, i.reason_code) for i in result.file_issues] + \
        [(r["reason"], r["reason_code"]) for r in result.rejected_rows.head(50).to_dicts()]


@pytest.fixture()
def built(request, tmp_path, monkeypatch):
    case: H.Case = request.param
    raw = tmp_path / "raw"
    path = H.build(case, raw)
    if case.deny:
        H.deny(monkeypatch, path)
    yield case, raw, path
    if case.deny:
        os.chmod(path, 0o644)


def _source(raw: Path, path: Path) -> str:
    return display_name(os.path.relpath(path, raw).replace(os.sep, "/"))


@pytest.mark.parametrize("built", CORPUS, ids=[c.name for c in CORPUS], indirect=True)
def test_class(built):
    case, raw, path = built
    files, issues = discover(raw, REF)
    source = _source(raw, path)

    # ---- discovery and the reader, as a run calls them
    if case.stage == "discover":
        assert source not in [f.source_file for f in files]
        got_issues = frozenset((i.sheet or "", i.reason_code, i.severity) for i in issues if i.source_file == source)
        assert got_issues == case.expect.issues, [(i.source_file, i.reason_code) for i in issues]
        reasons = [(i.reason, i.reason_code) for i in issues if i.source_file == source]
    else:
        assert issues == [] and [f.source_file for f in files] == [source], (issues, files)
        result = ingest_file(files[0], REF)
        got = observed(result, path, case.expect)
        matches = [o for o in case.outcomes if _same(got, o)]
        assert matches, (f"{case.name} ({case.issue}{'; built by ' + case.feature if case.feature else ''}):\n"
                         f"  planted  {case.expect}\n  observed {got}")
        o = matches[0]
        assert got.loaded + got.bad_rows + sum(got.skipped.values()) == o.planted  # nothing silently lost
        reasons = _reasons(result)
    words = case.words + (o.words if case.stage == "read" else ())
    for reason, code in reasons:
        assert H.vietnamese_first(reason, code), reason
    for w in words:
        assert any(w in r for r, _ in reasons), (w, reasons)

    # ---- `coop validate`, as the clerk runs it
    runner = CliRunner()
    res = runner.invoke(app, ["validate", "--format", "json", str(path)])
    doc = json.loads(res.stdout)
    assert res.exit_code == doc["exit_code"]
    options = case.validate_expect()
    if options[0].verdict is None:  # a folder with nothing to check
        assert (res.exit_code, doc["files"]) == (0, []), res.output
        return
    (f,) = doc["files"]
    codes = frozenset(p["reason_code"] for p in f["problems"])
    rows = frozenset((p["sheet"], p["row"], p["column"], p["reason_code"])
                     for p in f["problems"] if p["row"] is not None)
    seen = (res.exit_code, f["verdict"], codes, f["rows_accepted"])
    fits = [(v, o) for v, o in zip(options, case.outcomes if case.validate is None else [None], strict=True)
            if seen == (v.exit, v.verdict, v.codes, v.loaded) and (o is None or rows == o.bad)]
    assert fits, (f"{case.name}: validate gave exit {seen[0]}, verdict {seen[1]}, codes {sorted(seen[2])}, "
                  f"{seen[3]} rows; expected one of {options}\n{res.output[:3000]}")
    v, o = fits[0]
    for p in f["problems"]:
        assert H.vietnamese_first(p["reason"], p["reason_code"]), p["reason"]
    assert f["verdict_text"].split(" (")[0].strip() and any(ch in H.VIETNAMESE_LETTERS for ch in f["verdict_text"])

    text = runner.invoke(app, ["validate", str(path)])
    assert text.exit_code == v.exit
    out = text.output
    assert f"Tệp {display_name(str(path))}" in out
    for code in v.codes:
        assert f"[{code}]" in out, code
    named = {(m[1], int(m[2]), m[3], m[4]) for m in map(_ROW_LINE.search, out.splitlines()) if m}
    assert set(o.bad if o is not None else ()) <= named  # each bad cell: sheet, row, column (label and code), reason
    verdict_words = {"ok": f"ĐẠT — {v.loaded} dòng sẽ được nhận",
                     "partial": f"{v.loaded} dòng sẽ được nhận, {o.bad_rows if o else 0} dòng bị loại",
                     "rejected": "TỆP BỊ TỪ CHỐI — không dòng nào được nhận",
                     "empty": "TRỐNG — Tệp chưa có dòng dữ liệu nào"}[v.verdict]
    assert f"Kết quả: {verdict_words}" in out, out[-2000:]
    if v.verdict == "rejected":
        assert "REJECTED" in out
    else:
        assert "REJECTED" not in out  # 1 bad row of 121 is not a rejected file
    for w in words:
        assert w in out, w
