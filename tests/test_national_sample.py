"""scripts/national_sample.py (the national-scale benchmark input, issue 10 target 4), on a tiny
run: two provinces of today (Lai Châu 12: one former province; Đà Nẵng 48: former Đà Nẵng 48 and
Quảng Nam 49), two units per province and year, a fifth of the rows. The folders must be units of
their year for the province setting `VN`, the files readable by the real reader, and the ground
truth summary must count exactly what the reader loads."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "national_sample.py"
PROVINCES = ["12", "48"]
MAX_UNITS = 2
SCALE = 0.2


def _load_script():
    spec = importlib.util.spec_from_file_location("national_sample", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ns():
    return _load_script()


@pytest.fixture(scope="module")
def national(ns, tmp_path_factory):
    out = tmp_path_factory.mktemp("vn") / "raw"
    summary = ns.generate(out, seed=7, scale=SCALE, provinces=PROVINCES, max_units=MAX_UNITS, jobs=1)
    return out, summary


@pytest.fixture(scope="module")
def vn():
    from coop.reference import load_reference

    return load_reference(province="VN")


def _files(raw: Path) -> list[Path]:
    return sorted(p for p in raw.rglob("*") if p.is_file())


def test_folders_are_units_of_their_year(national, vn):
    raw, summary = national
    seen: dict[int, list[str]] = {}
    for year_dir in sorted(raw.iterdir()):
        year = int(year_dir.name)
        for folder in sorted(year_dir.iterdir()):
            m = vn.find_unit(folder.name, year)
            assert m.ok, (year, folder.name, m.reason_code, m.message)
            assert m.unit.level == ("district" if year < 2025 else "commune"), (year, folder.name)
            today = vn.merge[m.unit.province_code] if m.unit.level == "district" else m.unit.province_code
            assert today in PROVINCES, (year, folder.name, m.unit.code)
            seen.setdefault(year, []).append(m.unit.code)
    # two units per province and year, each in one folder; the same districts in 2023 and 2024
    assert sorted(seen) == [2023, 2024, 2025, 2026]
    for year, codes in seen.items():
        assert len(codes) == len(set(codes)) == MAX_UNITS * len(PROVINCES), year
    assert sorted(seen[2023]) == sorted(seen[2024])
    assert summary["units"] == {str(y): MAX_UNITS * len(PROVINCES) for y in (2023, 2024, 2025, 2026)}
    # Đà Nẵng's districts come from both of its former provinces
    areas = {vn.unit_by_code(c).province_code for c in seen[2023] if vn.merge[vn.unit_by_code(c).province_code] == "48"}
    assert areas == {"48", "49"}
    # every unit reports HTX, THT and support rows each year
    for year, units in summary["per_unit"].items():
        assert len(units) == MAX_UNITS * len(PROVINCES), year
        for code, counts in units.items():
            assert min(counts.get(f, 0) for f in ("HTX", "THT", "HO_TRO")) >= 1, (year, code, counts)


def test_reader_loads_exactly_the_ground_truth(national, vn):
    from coop.ingest.normalize import ingest_file, select_submissions

    raw, summary = national
    files = _files(raw)
    assert len(files) == summary["files"] == len(summary["per_file"])
    assert sum(summary["formats"].values()) == len(files)
    results = [ingest_file(p, vn, raw_dir=raw) for p in files]
    issues = Counter((i.reason_code, i.severity) for r in results for i in r.file_issues)
    assert not [r.source_file for r in results if r.rejected]
    # the only sheets left aside are the summary sheets of the misleading pack
    assert {k for k in issues if k[1] != "ignored"} == set(), issues
    assert issues[("unrecognized_sheet", "ignored")] == summary["ignored_sheets"]
    assert sum(r.rejected_rows.height for r in results) == 0 == summary["invalid_rows"]
    loaded = {r.source_file: {f: df.height for f, df in r.forms.items() if df.height}
              for r in select_submissions(results)}
    assert loaded == {f: counts for f, counts in summary["per_file"].items() if counts}
    by_year: dict[str, dict[str, int]] = {f: {} for f in ("HTX", "THT", "HO_TRO")}
    for r in select_submissions(results):
        for form, df in r.forms.items():
            by_year[form][str(r.year)] = by_year[form].get(str(r.year), 0) + df.height
    assert by_year == {f: {y: n for y, n in v.items() if n} for f, v in summary["rows"].items()}
    assert summary["rows_total"] == sum(sum(v.values()) for v in by_year.values())


def test_cli_is_deterministic_whatever_the_processes(national, tmp_path):
    raw, summary = national
    out = tmp_path / "raw"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--seed", "7", "--scale", str(SCALE),
                           "--provinces", ",".join(PROVINCES), "--max-units", str(MAX_UNITS), "--jobs", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "files" in proc.stdout and "CPU-s" in proc.stdout
    assert json.loads((tmp_path / "national_truth.json").read_text(encoding="utf-8")) == summary
    timing = json.loads((tmp_path / "national_write.json").read_text(encoding="utf-8"))
    assert timing["files"] == summary["files"] and timing["jobs"] == 2

    def digest(root: Path) -> dict[str, str]:
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in _files(root)}

    assert digest(out) == digest(raw)


def test_a_support_allocation_stays_in_its_report_year(ns):
    """A cooperative founded late in the year got its support allocated in January of the next
    year, which the date rule quarantines (11 rows of the whole country's sample were)."""
    import datetime as dt

    assert ns.support_date(dt.date(2023, 12, 20), 2023, 30) == dt.date(2023, 12, 31)
    assert ns.support_date(dt.date(2019, 5, 1), 2023, 59) == dt.date(2023, 3, 1)
    assert ns.support_date(dt.date(2023, 6, 1), 2023, 10) == dt.date(2023, 6, 11)
