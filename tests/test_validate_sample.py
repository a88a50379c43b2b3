"""`coop validate` over the shipped sample lists exactly what the generator planted.

Expected problems come from the generator's ground truth (data/sample/ground_truth.json),
not from the pipeline."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from typer.testing import CliRunner

from coop.cli import app

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "data" / "raw"


def _nfc(s: str | None) -> str | None:
    return None if s is None else unicodedata.normalize("NFC", s)


def _rel(file: str) -> str:
    p = Path(file)
    p = p if p.is_absolute() else ROOT / p
    return _nfc(p.relative_to(RAW).as_posix())


def test_validate_sample_lists_exactly_the_planted_problems(monkeypatch):
    truth = json.loads((ROOT / "data" / "sample" / "ground_truth.json").read_text(encoding="utf-8"))
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["validate", "data/raw", "--format", "json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 1 and doc["ok"] is False

    rows, files, sheets = set(), set(), set()
    for f in doc["files"]:
        src = _rel(f["file"])
        for p in f["problems"]:
            if p["severity"] != "rejected":
                continue
            if p["row"] is not None:
                rows.add((src, _nfc(p["sheet"]), p["row"], p["column"], p["reason_code"]))
            elif p["sheet"] is None:
                files.add((src, p["reason_code"]))
            else:
                sheets.add((src, _nfc(p["sheet"]), p["reason_code"]))

    expected_rows = {
        (_nfc(r["source_file"]), _nfc(r["sheet"]), r["row_number"], r["column_name"], r["reason_code"])
        for r in truth["invalid_rows"]
    }
    expected_files = {(_nfc(r["source_file"]), r["reason_code"]) for r in truth["rejected_files"]}
    expected_sheets = {(_nfc(r["source_file"]), _nfc(r["sheet"]), r["reason_code"]) for r in truth["rejected_sheets"]}
    assert expected_rows, "the sample plants invalid rows"
    assert rows == expected_rows
    assert files == expected_files
    assert sheets == expected_sheets
