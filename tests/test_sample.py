"""The sample province: deterministic, committed, calibrated to the province's reports,
and its ground truth consistent with the files it wrote (checked with openpyxl/csv/xlrd-free
readers here, never with the pipeline's own reading code). From 2022 on: the reform years
(units.md), checked against the reference CSVs of schemas/reference."""

from __future__ import annotations

import csv
import os
import unicodedata
import zipfile
from datetime import date
from pathlib import Path

import fastexcel
import openpyxl
import pytest

import truth as T
from sample.generate import HB_TARGETS, Truth, generate, generate_small_province

ROOT = Path(__file__).resolve().parent.parent
RAW = ROOT / "data" / "raw"
COMMITTED = ROOT / "data" / "sample" / "ground_truth.json"

ROW_REASONS = {"missing_value", "invalid_number", "not_integer", "negative_value", "not_positive", "invalid_date",
               "date_after_report_year", "unknown_category", "invalid_reg_code", "excel_error", "duplicate_code",
               "duplicate_group", "invalid_target", "unknown_plan_code"}
FILE_REASONS = {"invalid_year_folder", "misplaced_file", "unknown_district", "district_not_valid_for_year",
                "unsupported_file_type", "unreadable_file", "empty_file", "no_recognized_form",
                "district_after_reform", "commune_before_reform"}
HB_DISTRICTS = ("148", "150", "152", "153", "154", "155", "156", "157", "158", "159")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> tuple[Path, Truth]:
    out = tmp_path_factory.mktemp("sample") / "raw"
    return out, generate(out)


@pytest.fixture(scope="module")
def t(fresh) -> T.T:
    return T.load(fresh[1])


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != ".gitkeep")


def test_generation_is_deterministic(fresh, tmp_path):
    out1, t1 = fresh
    out2 = tmp_path / "raw"
    t2 = generate(out2)
    assert t1.to_json() == t2.to_json()
    assert _files(out1) == _files(out2) == sorted(t1.files)
    for rel in t1.files:
        a, b = out1 / rel, out2 / rel
        assert a.stat().st_mtime == b.stat().st_mtime, rel
        assert a.read_bytes() == b.read_bytes(), rel


def test_committed_truth_and_files_match_a_fresh_generation(fresh):
    out, t1 = fresh
    assert COMMITTED.read_text(encoding="utf-8") == t1.to_json()
    assert _files(RAW) == sorted(t1.files)
    for rel in t1.files:
        assert (RAW / rel).read_bytes() == (out / rel).read_bytes(), f"{rel}: run `make sample`"


def test_truth_roundtrips_through_json(fresh):
    t1 = fresh[1]
    assert Truth.from_json(t1.to_json()).to_json() == t1.to_json()


# ---------------------------------------------------------------- calibration (the articles)


def test_2020_htx_matches_the_article(t):
    i = T.province_indicators(t)[(2020, "HTX")]
    assert i["new_formed"] == 66
    assert i["active_count"] == 422
    assert 12651 <= i["members"] <= 12749          # "12,7 nghìn thành viên"
    assert round(i["avg_revenue_mvnd"], 6) == 3240
    assert round(i["avg_profit_mvnd"], 6) == 401
    assert round(i["avg_income_mvnd_month"], 6) == 4.0


def test_2020_tht_matches_the_article(t):
    i = T.province_indicators(t)[(2020, "THT")]
    assert i["new_formed"] == 20
    assert i["active_count"] == 203
    assert 3000 < i["members"] < 3100              # "trên 3.000 thành viên"
    assert round(i["avg_revenue_mvnd"], 6) == 581
    assert round(i["avg_profit_mvnd"], 6) == 52
    assert round(i["avg_income_mvnd_month"], 6) == 1.4


def test_2020_funding_backlog_is_119(t):
    backlog = T.funding_backlog(2020, t)
    assert len(backlog) == 119
    assert all(2018 <= b["established_on"].year <= 2020 for b in backlog)
    assert all(b["waiting_days"] == (date(2020, 12, 31) - b["established_on"]).days for b in backlog)


def test_2021_matches_the_follow_up_report(t):
    p = T.province_indicators(t)
    h, g = p[(2021, "HTX")], p[(2021, "THT")]
    assert h["active_count"] == 454
    credit = [r for r in t.forms["HTX"] if r["year"] == 2021 and r["status"] == "active" and r["sector"] == "credit_fund"]
    assert len(credit) == 4
    assert round(h["avg_revenue_mvnd"], 6) == 2230
    assert round(h["avg_profit_mvnd"], 6) == 250
    assert round(h["avg_income_mvnd_month"], 6) == 4.16
    assert g["active_count"] == 211
    assert round(g["avg_revenue_mvnd"], 6) == 220.14
    assert round(g["avg_profit_mvnd"], 6) == 56.5


def test_2021_plan_is_the_article_and_shows_misses_and_hits(t):
    plan = {r["code"]: r for r in t.forms["CHI_TIEU"] if r["year"] == 2021}
    assert (plan["new_htx"]["target_min"], plan["new_htx"]["target_max"]) == (65, None)
    assert plan["new_tht"]["target_min"] == 15
    assert (plan["htx_revenue_growth_pct"]["target_min"], plan["htx_revenue_growth_pct"]["target_max"]) == (6, 8)
    assert (plan["htx_income_growth_pct"]["target_min"], plan["htx_income_growth_pct"]["target_max"]) == (3, 5)
    assert plan["training_turns"]["target_min"] == 500
    assert plan["high_tech_htx"]["target_min"] == 20
    status = {r["indicator_code"]: r["status"] for r in T.plan_vs_actual(t) if r["year"] == 2021}
    assert status == {"new_htx": "not_met", "new_tht": "not_met", "htx_revenue_growth_pct": "not_met",
                      "htx_income_growth_pct": "met", "training_turns": "not_met", "high_tech_htx": "met"}
    growth = T.province_indicators(t)[(2021, "HTX")]["income_growth_pct"]
    assert round(growth, 6) == 4.0                  # 4.16 / 4.00


def test_every_year_and_district_is_present(t):
    seen = {(r["year"], r["district_code"]) for r in t.forms["HTX"]}
    for y in (2018, 2019, 2020, 2021):
        for d in ("148", "150", "152", "153", "154", "155", "156", "157", "158", "159"):
            assert (y, d) in seen
        assert ((y, "151") in seen) == (y <= 2019)   # Kỳ Sơn merged into the city on 1/1/2020


def test_registers_are_yearly_snapshots_of_the_same_cooperatives(t):
    by_code: dict[str, list[dict]] = {}
    for r in t.forms["HTX"]:
        by_code.setdefault(r["reg_code"], []).append(r)
    multi = [rs for rs in by_code.values() if len([r for r in rs if r["year"] <= 2021]) == 4]
    assert len(multi) > 250
    assert any(len({r["status"] for r in rs}) > 1 for rs in by_code.values())
    assert any(c.startswith("0") for c in by_code)            # leading zeros kept
    unions = [r for r in t.forms["HTX"] if r["year"] == 2020 and r["kind"] == "union"]
    assert 0.05 < len(unions) / sum(1 for r in t.forms["HTX"] if r["year"] == 2020) < 0.12
    for rs in by_code.values():                               # one row per code per year
        assert len({r["year"] for r in rs}) == len(rs)


# ---------------------------------------------------------------- planted problems


def test_planted_invalid_rows_are_varied_and_use_contract_codes(t):
    reasons = [r["reason_code"] for r in t.invalid_rows if r["source_file"][:4] <= "2021"]
    assert 8 <= len(reasons) <= 15
    later = [r["reason_code"] for r in t.invalid_rows if r["source_file"][:4] >= "2022"]
    assert 5 <= len(later) <= 12 and set(later) <= ROW_REASONS and len(set(later)) >= 6   # a handful, 2022-2026
    assert {r["source_file"][:4] for r in t.invalid_rows} >= {"2022", "2023", "2024", "2025", "2026"}
    assert set(reasons) <= ROW_REASONS
    assert len(set(reasons)) >= 11
    assert reasons.count("duplicate_code") == 2 and reasons.count("duplicate_group") == 2
    assert {r["reason_code"] for r in t.rejected_files} <= FILE_REASONS
    assert {"unreadable_file", "district_not_valid_for_year", "empty_file", "no_recognized_form",
            "unsupported_file_type"} <= {r["reason_code"] for r in t.rejected_files}
    assert [r["reason_code"] for r in t.rejected_sheets] == ["form_not_allowed_here"]
    assert all(not r["source_file"].startswith(("2019/province", "2020/tinh", "2021/province")) for r in t.rejected_sheets)
    invalid_keys = {(r["source_file"], r["sheet"], r["row_number"]) for r in t.invalid_rows}
    valid_keys = {(r["source_file"], r["sheet"], r["row_number"]) for f in t.forms.values() for r in f}
    assert not invalid_keys & valid_keys


def test_resubmission_newer_file_wins_by_mtime_and_by_name(fresh, t):
    out, _ = fresh
    (sup,) = t.superseded
    old = sup["source_file"]
    folder = old.rsplit("/", 1)[0]
    newer = [f for f in t.files if f.startswith(folder + "/") and f != old]
    assert len(newer) == 1
    assert newer[0] > old
    assert (out / newer[0]).stat().st_mtime > (out / old).stat().st_mtime
    assert not any(r["source_file"] == old for r in t.forms[sup["form"]])
    assert any(r["source_file"] == newer[0] for r in t.forms[sup["form"]])
    assert any(r["source_file"] == old for r in t.forms["THT"])     # other forms of the old file still count


# ---------------------------------------------------------------- files vs truth


def _norm(v) -> str:
    s = unicodedata.normalize("NFC", str(v))
    return " ".join(s.replace("'", "").split()).lower()


def _key(form: str, r: dict) -> str:
    if form in ("HTX", "THT"):
        return r["name"]
    return r["decision_no"] or r["reg_code"] if form == "HO_TRO" else r["code"]


def test_truth_row_numbers_point_at_the_rows_in_the_files(fresh, t):
    """Every valid and invalid row sits at its Excel row number (openpyxl / csv, not the pipeline)."""
    out, _ = fresh
    books: dict[str, object] = {}
    checked = 0
    for form, rows in t.forms.items():
        for r in rows:
            rel = r["source_file"]
            if rel.endswith(".xlsx"):
                if rel not in books:                # read-only: rows from 1, empty ones included
                    wb = openpyxl.load_workbook(out / rel, read_only=True)
                    books[rel] = {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}
                    wb.close()
                cells = [c for c in books[rel][r["sheet"]][r["row_number"] - 1] if c is not None]
            elif rel.endswith(".csv"):
                if rel not in books:
                    text = (out / rel).read_bytes().decode("utf-8-sig")
                    delim = ";" if text.splitlines()[0].count(";") >= text.splitlines()[0].count(",") else ","
                    books[rel] = list(csv.reader(text.splitlines(), delimiter=delim))
                cells = [c for c in books[rel][r["row_number"] - 1] if c]
            else:                                   # .xls / .ods: no offset in these files, first row used
                key = (rel, r["sheet"])
                if key not in books:
                    df = fastexcel.read_excel(out / rel).load_sheet(r["sheet"], header_row=None).to_polars()
                    books[key] = [list(row) for row in df.iter_rows()]
                cells = [c for c in books[key][r["row_number"] - 1] if c is not None]
            if form == "HO_TRO" and not r["decision_no"]:
                want = _norm(r["reg_code"])
                assert any(_norm(c).replace(" ", "").removesuffix(".0") == want.replace(" ", "") for c in cells), (rel, r)
            else:
                assert _norm(_key(form, r)) in [_norm(c) for c in cells], (rel, r["sheet"], r["row_number"], cells)
            checked += 1
    assert checked == sum(len(rows) for rows in t.forms.values())


def test_layout_features_are_present(fresh, t):
    out, _ = fresh
    files = t.files
    assert any(f.endswith(".xls") for f in files) and any(f.endswith(".ods") for f in files)
    csvs = [out / f for f in files if f.endswith(".csv") and (out / f).stat().st_size]
    assert any(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in csvs)
    assert any(p.read_bytes().decode("utf-8-sig").splitlines()[1].count(",") > 3 for p in csvs)
    folders = {f.split("/")[1] for f in files}
    assert any(unicodedata.is_normalized("NFD", d) and not unicodedata.is_normalized("NFC", d) for d in folders)
    assert "TP Hoà Bình" in folders and "Huyen Yen Thuy" in folders and "lac-son" in folders and "157" in folders
    assert {"province", "tinh"} & folders
    hidden = merged = offset = errors = 0
    for f in files:                                   # the machinery of 2018-2021 (the later years reuse it)
        if f[:4] > "2021" or not f.endswith(".xlsx") or any(f == r["source_file"] for r in t.rejected_files if "unreadable" in r["reason_code"]):
            continue
        wb = openpyxl.load_workbook(out / f)
        for ws in wb.worksheets:
            hidden += ws.sheet_state == "hidden"
            merged += bool(ws.merged_cells.ranges)
            offset += ws.min_row > 1
        with zipfile.ZipFile(out / f) as z:
            errors += sum(b't="e"' in z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/"))
    assert hidden and merged and offset and errors
    # text numbers in the Vietnamese convention and text dates appear in the files
    text = "\n".join(p.read_bytes().decode("utf-8-sig") for p in csvs)
    assert any(ch in text for ch in ("3.", "1.", "2.")) and "," in text
    import re
    assert re.search(r"\b\d{1,2}/\d{1,2}/20\d\d\b", text)
    assert re.search(r'"\d+,\d+"', text) or re.search(r";\d+,\d+;", text)


def test_mtimes_are_fixed(fresh, t):
    out, _ = fresh
    last = (date(2026, 11, 28) - date(1970, 1, 1)).total_seconds()
    for rel in t.files:
        m = (out / rel).stat().st_mtime
        assert m < last and m == int(m), rel                      # dates of the reports, not the wall clock
        if rel[:4] <= "2021":
            assert m < 1700000000, rel


# ---------------------------------------------------------------- truth.py on a hand-made fixture


def _htx(year, status, est, members, workers=None, revenue=None, profit=None, income=None, **kw):
    r = {"year": year, "district_code": kw.pop("district", "150"), "source_file": "f", "sheet": "s", "row_number": 1,
         "reg_code": kw.pop("reg_code", "1"), "name": "n", "commune": None, "kind": "htx", "established_on": est,
         "sector": kw.pop("sector", "agriculture"), "status": status, "members": members, "workers": workers,
         "revenue": revenue, "profit": profit, "income": income, "rating": None, "ocop_stars": kw.pop("ocop", None),
         "high_tech": kw.pop("high_tech", False)}
    assert not kw
    return r


def test_truth_indicators_on_a_hand_fixture():
    rows = [
        _htx(2020, "active", "2020-03-01", 10, workers=5, revenue=100, profit=10, income=4, reg_code="A", ocop=3),
        _htx(2020, "active", "2015-01-01", 20, workers=None, revenue=300, profit=-20, income=2, reg_code="B", high_tech=True),
        _htx(2020, "active", "2019-06-01", 30, workers=0, revenue=None, profit=None, income=9, reg_code="C", district="152"),
        _htx(2020, "suspended", "2020-05-05", 7, revenue=999, reg_code="D"),
        _htx(2019, "active", "2018-01-01", 8, revenue=50, income=3, reg_code="B"),
    ]
    ho = [{"year": 2020, "district_code": "150", "source_file": "f", "sheet": "s", "row_number": 2, "reg_code": "C",
           "support_type": "establishment", "amount": 30.0, "participants": None, "decision_no": None,
           "allocated_on": "2021-02-01"},
          {"year": 2020, "district_code": "150", "source_file": "f", "sheet": "s", "row_number": 3, "reg_code": "A",
           "support_type": "establishment", "amount": 30.0, "participants": None, "decision_no": None,
           "allocated_on": "2020-12-31"},
          {"year": 2020, "district_code": "150", "source_file": "f", "sheet": "s", "row_number": 4, "reg_code": "B",
           "support_type": "training", "amount": 10.0, "participants": 25, "decision_no": None,
           "allocated_on": "2020-07-01"}]
    t = T.T({"forms": {"HTX": rows, "THT": [], "HO_TRO": ho, "CHI_TIEU": [
        {"year": 2020, "district_code": None, "source_file": "p", "sheet": "s", "row_number": 5, "code": "new_htx",
         "label": None, "unit": None, "target_raw": "từ 3", "target_min": 3.0, "target_max": None},
        {"year": 2020, "district_code": None, "source_file": "p", "sheet": "s", "row_number": 6, "code": "training_turns",
         "label": None, "unit": None, "target_raw": "20", "target_min": 20.0, "target_max": 20.0}]},
        "invalid_rows": [], "rejected_files": [], "superseded": [], "files": []})
    p = T.province_indicators(t)
    i = p[(2020, "HTX")]
    assert i["new_formed"] == 2                    # A and the suspended D
    assert i["active_count"] == 3
    assert i["members"] == 60 and i["workers"] == 5
    assert i["avg_revenue_mvnd"] == 200            # (100 + 300) / 2, C does not report
    assert i["avg_profit_mvnd"] == -5
    assert i["avg_income_mvnd_month"] == (4 * 5 + 2 * 20) / 25   # C has workers 0 -> excluded
    assert i["revenue_growth_pct"] == 300.0        # 200 / 50 - 1
    assert i["income_growth_pct"] == pytest.approx((2.4 / 3 - 1) * 100)
    assert i["ocop_count"] == 1 and i["high_tech_count"] == 1
    assert p[(2019, "HTX")]["revenue_growth_pct"] is None
    d = T.district_indicators(t)
    assert d[(2020, "152", "HTX")]["active_count"] == 1 and d[(2020, "150", "HTX")]["active_count"] == 2
    assert d[(2020, "152", "HTX")]["avg_income_mvnd_month"] is None
    # backlog 2020, window 2018-2020: A supported on 31/12/2020, C only in 2021, B too old
    b = T.funding_backlog(2020, t)
    assert [(x["reg_code"], x["waiting_days"]) for x in b] == [("C", (date(2020, 12, 31) - date(2019, 6, 1)).days)]
    assert T.funding_backlog(2020, t, window=1) == []
    assert T.training_turns(t) == {2020: 25}
    pva = {r["indicator_code"]: r for r in T.plan_vs_actual(t)}
    assert pva["new_htx"]["actual"] == 2 and pva["new_htx"]["status"] == "not_met"
    assert pva["training_turns"]["actual"] == 25 and pva["training_turns"]["status"] == "met"


def test_invalid_rows_point_at_the_planted_cells(fresh, t):
    out, _ = fresh
    for bad in t.invalid_rows:
        rel, raw = bad["source_file"], bad["raw_value"]
        if rel.endswith(".xlsx"):
            ws = openpyxl.load_workbook(out / rel)[bad["sheet"]]
            cells = [c.value for c in ws[bad["row_number"]] if c.value is not None]
        elif rel.endswith(".csv"):
            text = (out / rel).read_bytes().decode("utf-8-sig").splitlines()
            cells = [c for c in next(csv.reader([text[bad["row_number"] - 1]], delimiter=";" if ";" in text[0] else ","))]
        else:
            df = fastexcel.read_excel(out / rel).load_sheet(bad["sheet"], header_row=None).to_polars()
            cells = list(df.row(bad["row_number"] - 1))
        shown = {_norm(c.strftime("%d/%m/%Y") if isinstance(c, (date,)) else c) for c in cells if c is not None}
        shown |= {s.removesuffix(".0") for s in shown}
        assert len(cells) >= 5, bad
        if raw is not None and bad["reason_code"] not in ("excel_error", "duplicate_code", "duplicate_group"):
            assert _norm(raw) in shown, (bad, shown)


def test_command_line_other_seed_other_data_same_calibration(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "sample.generate", "--out", str(tmp_path / "raw"), "--seed", "7"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    written = (tmp_path / "ground_truth.json").read_text(encoding="utf-8")
    assert _files(tmp_path / "raw") == sorted(Truth.from_json(written).files)
    assert written != COMMITTED.read_text(encoding="utf-8")
    p = T.province_indicators(written)
    assert p[(2020, "HTX")]["active_count"] == 422 and p[(2020, "THT")]["new_formed"] == 20
    assert round(p[(2020, "HTX")]["avg_revenue_mvnd"], 6) == 3240
    assert len(T.funding_backlog(2020, written)) == 119


# ---------------------------------------------------------------- the years across the 2025 reform (units.md)


def _ckey(name: str) -> str:
    """A commune name without case, diacritics (đ too) and its type prefix."""
    s = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    s = " ".join("".join(ch for ch in s if not unicodedata.combining(ch)).lower().split())
    for p in ("thi tran ", "phuong ", "xa ", "tt "):
        s = s.removeprefix(p)
    return s


def _units(t, year, form=("HTX", "THT")):
    return {(r["unit_level"], r["area_code"], r["unit_code"]) for f in form for r in t.forms[f] if r["year"] == year}


def test_reporting_units_per_year(t):
    for y in (2018, 2019, 2020, 2021, 2022):
        assert {a for _, a, _ in _units(t, y)} == {"17"}
    assert {u for _, _, u in _units(t, 2022)} == set(HB_DISTRICTS)
    count = lambda y: {(lvl, a): sum(1 for x in _units(t, y) if x[:2] == (lvl, a)) for lvl, a, _ in _units(t, y)}
    assert count(2023) == {("district", "17"): 10, ("district", "25"): 13, ("district", "26"): 4}
    assert count(2024) == {("district", "17"): 10, ("district", "25"): 13, ("district", "26"): 9}
    assert count(2025) == {("commune", "17"): 46, ("commune", "25"): 10, ("commune", "26"): 5}
    assert count(2026) == {("commune", "17"): 46, ("commune", "25"): 12, ("commune", "26"): 6}
    for f in ("HTX", "THT", "HO_TRO"):
        for r in t.forms[f]:
            if r["year"] <= 2024:
                assert r["unit_level"] == "district" and r["unit_code"] == r["district_code"], r
            else:
                assert r["unit_level"] == "commune" and r["district_code"] is None and len(r["unit_code"]) == 5, r
    plans = {(r["year"], r["unit_code"], r["unit_level"]) for r in t.forms["CHI_TIEU"]}
    assert plans == {(y, "17" if y <= 2024 else "25", "province") for y in range(2019, 2027)}


def test_unit_and_commune_columns_agree_with_the_reference(t):
    ref = T._ref()
    for f in ("HTX", "THT"):
        for r in t.forms[f]:
            if r["unit_level"] == "commune":
                c = ref["communes"][r["unit_code"]]
                assert c["province_code"] == "25" and r["area_code"] == c["area_code"]
                assert (r["old_commune_code"], r["commune_code"], r["approximate"]) == (None, r["unit_code"], False), r
                continue
            assert r["area_code"] == ref["districts"][r["unit_code"]]["province_code"]
            old = r["old_commune_code"]
            if old is None:
                assert r["commune_code"] is None and r["approximate"] is False, r
                if r["year"] >= 2022 and r["commune"]:   # else blank: a name that is no former commune there
                    unit = "148" if r["unit_code"] == "151" else r["unit_code"]
                    assert _ckey(r["commune"]) not in {_ckey(c["commune_name"]) for c in ref["former"].values()
                                                       if c["district_code"] == unit}, r
                continue
            unit = "148" if r["unit_code"] == "151" else r["unit_code"]          # Kỳ Sơn: listed under the city
            assert ref["former"][old]["district_code"] == unit, r
            assert (r["commune_code"], r["approximate"]) == T.commune_of(old), r
            assert ref["communes"][r["commune_code"]]["province_code"] == "25"
    later = [r for r in t.forms["HTX"] + t.forms["THT"] if 2022 <= r["year"] <= 2024]
    blank = [r for r in later if r["commune"] is None]
    unknown = [r for r in later if r["commune"] and r["old_commune_code"] is None]
    assert 3 <= len(blank) <= 60 and 3 <= len(unknown) <= 60
    assert any(r["commune"] == "Bản Khả" for r in unknown) or {r["commune"] for r in unknown} <= {
        "Bản Khả", "Xóm Mới", "Bản Lác", "Xóm Bãi", "Bản Chiềng", "Khu 5", "Xóm Đồi", "Tổ 7"}
    spelled = {r["commune"] for r in later if r["old_commune_code"]}
    assert any(c.startswith("TT ") for c in spelled) and any(c == c.lower() for c in spelled)
    assert any(c.startswith("Xa ") for c in spelled) and any(not c.startswith(("Xã", "Phường", "Thị", "xã", "TT", "Xa", "Phuong", "phường", "thị", "Thi")) for c in spelled)
    old_years = [r for r in t.forms["HTX"] if r["year"] <= 2021]
    assert sum(1 for r in old_years if r["old_commune_code"]) > 0.8 * len(old_years)   # matched by name where possible


def test_hoa_binh_2024_cooperatives_reappear_in_commune_registers(t):
    by = {(r["year"], r["reg_code"]): r for r in t.forms["HTX"]}
    hb24 = [r for r in t.forms["HTX"] if r["year"] == 2024 and r["area_code"] == "17" and r["status"] == "active"]
    assert len(hb24) > 500
    for r in hb24:
        nxt = by.get((2025, r["reg_code"]))
        assert nxt is not None and nxt["unit_level"] == "commune" and nxt["area_code"] == "17", r["reg_code"]
        if r["old_commune_code"]:
            assert nxt["unit_code"] == T.commune_of(r["old_commune_code"])[0], r
    # the commune cell of a commune register names the reporting commune (or is blank)
    ref = T._ref()
    for r in t.forms["HTX"] + t.forms["THT"]:
        if r["unit_level"] == "commune" and r["commune"]:
            assert _ckey(r["commune"]) == _ckey(ref["communes"][r["unit_code"]]["commune_name"]), r


def test_later_registers_keep_the_contract_keys(t):
    """No accidental quarantine from 2022: one group per unit and name, support for registered HTX."""
    groups = [(r["year"], r["unit_code"], _ckey(r["name"])) for r in t.forms["THT"] if r["year"] >= 2022]
    assert len(groups) == len(set(groups))
    unit_of = {(r["year"], r["reg_code"]): r["unit_code"] for r in t.forms["HTX"]}
    for s in t.forms["HO_TRO"]:
        if s["year"] >= 2022:
            assert unit_of.get((s["year"], s["reg_code"])) == s["unit_code"] and s["allocated_on"][:4] == str(s["year"]), s
    for r in t.forms["HTX"] + t.forms["THT"]:
        assert int(r["established_on"][:4]) <= r["year"]


def test_reg_codes_never_collide_across_units(t):
    seen: dict[str, set[str]] = {}
    for r in t.forms["HTX"]:
        seen.setdefault(r["reg_code"], set()).add(r["area_code"])
    assert all(len(a) == 1 for a in seen.values())
    prefixes = {a: {c[:4] for c, areas in seen.items() if a in areas and not c.startswith("0")} for a in ("25", "26")}
    assert prefixes == {"25": {"2600"}, "26": {"2500"}}


def test_planted_reform_rejections_are_listed(t):
    rej = {r["source_file"]: r["reason_code"] for r in t.rejected_files}
    assert rej["2025/Huyện Lạc Sơn/Bao cao KTTT 2025.xlsx"] == "district_after_reform"
    assert rej["2024/Xã Lạc Sơn/danh-sach-htx-2024.xlsx"] == "commune_before_reform"
    folders = {f.split("/")[0]: set() for f in t.files}
    for f in t.files:
        folders[f.split("/")[0]].add(f.split("/")[1])
    assert {"Lac Son", "Phường Hòa Bình", "phuong_ky_son", "xa-quyet-thang"} <= folders["2025"]
    assert {"05266", "Phường Kỳ Sơn", "Mai Chau"} <= folders["2026"]
    assert {"lac-son"} <= folders["2024"]                    # the district still reports 2024 beside the rejected folder


def test_split_former_commune_marks_its_commune_of_today_approximate(t):
    ap = [r for r in t.forms["HTX"] + t.forms["THT"] if r["approximate"]]
    assert ap and {r["old_commune_code"] for r in ap} == {"05221"}           # Xã Đồng Tân (Mai Châu), split
    assert {r["year"] for r in ap} == {2022, 2023, 2024}
    ci = T.commune_indicators(t)
    for y in (2022, 2023, 2024):
        assert ci[(y, "05200", "HTX")]["approximate"] is True
    assert ci[(2025, "05200", "HTX")]["approximate"] is False
    assert ci[(2021, "05200", "HTX")]["approximate"] is False


def test_funding_backlog_follows_a_cooperative_across_the_reform(t):
    def years_in_backlog(name):
        code = next(r["reg_code"] for r in t.forms["HTX"] if r["name"] == name)
        return [b["year"] for b in T.funding_backlog(t) if b["reg_code"] == code], code

    years, code = years_in_backlog("HTX Nông sản sạch Chí Đạo")
    assert years == [2024, 2025, 2026]
    rows = sorted((r["year"], r["unit_code"]) for r in t.forms["HTX"] if r["reg_code"] == code)
    assert rows == [(2024, "157"), (2025, "05323"), (2026, "05323")]
    assert not [s for s in t.forms["HO_TRO"] if s["reg_code"] == code and s["support_type"] == "establishment"]
    years, code = years_in_backlog("HTX Chè Shan tuyết Tử Nê")
    assert years == [2024]
    (est,) = [s for s in t.forms["HO_TRO"] if s["reg_code"] == code and s["support_type"] == "establishment"]
    assert (est["unit_level"], est["unit_code"], est["allocated_on"][:4]) == ("commune", "05128", "2025")
    b = T.funding_backlog(2025, t)
    assert all(x["unit_code"] and x["area_code"] for x in b)
    assert len({(x["year"], x["reg_code"]) for x in T.funding_backlog(t)}) == len(T.funding_backlog(t))


def test_completeness_and_restated_province(t):
    cp = T.current_province_indicators(t)
    flags = {y: (cp[(y, "HTX")]["complete"], cp[(y, "HTX")]["areas_missing"]) for y in range(2018, 2027)}
    assert flags == {2018: (False, ["25", "26"]), 2019: (False, ["25", "26"]), 2020: (False, ["25", "26"]),
                     2021: (False, ["25", "26"]), 2022: (False, ["25", "26"]), 2023: (False, ["26"]),
                     2024: (True, []), 2025: (False, ["25", "26"]), 2026: (False, ["25", "26"])}
    assert len(T.missing_units(2023, t)) == 5 and T.missing_units(2024, t) == []
    assert len(T.missing_units(2026, t)) == 148 - 64
    by_prov = T.province_indicators_by_province(t)
    area = T.area_indicators(t)
    for e in ("HTX", "THT"):
        for y in range(2018, 2027):
            assert cp[(y, e)]["active_count"] == sum(area[k]["active_count"] for k in area if k[0] == y and k[2] == e)
            assert cp[(y, e)]["active_count"] == T.province_indicators(t)[(y, e)]["active_count"]
        assert by_prov[(2025, "25", e)]["revenue_growth_pct"] is None          # the province changed territory
        assert by_prov[(2026, "25", e)]["revenue_growth_pct"] is not None
        assert area[(2025, "17", e)]["revenue_growth_pct"] is not None          # the area series continues
        assert cp[(2025, e)]["revenue_growth_pct"] is not None
        assert (2024, "25", e) in by_prov and (2024, "26", e) in by_prov and (2024, "17", e) in by_prov
    for y in range(2018, 2022):                                               # the article's years unchanged
        for e in ("HTX", "THT"):
            assert by_prov[(y, "17", e)] == T.province_indicators(t)[(y, e)]


def test_hoa_binh_area_is_calibrated_after_2021(t):
    area = T.area_indicators(t)
    for (e, y), (members, rev, profit, income) in HB_TARGETS.items():
        i = area[(y, "17", e)]
        assert i["members"] == members
        assert (round(i["avg_revenue_mvnd"], 6), round(i["avg_profit_mvnd"], 6), round(i["avg_income_mvnd_month"], 6)) \
            == (rev, profit, income), (e, y)
    plan = {(r["year"], r["indicator_code"]): r for r in T.plan_vs_actual(t)}
    # today's province: growth over the restated year before (not the former Phú Thọ's 2024)
    cur = T.current_province_indicators(t)[(2025, "HTX")]
    assert cur["revenue_growth_pct"] is not None
    assert plan[(2025, "htx_revenue_growth_pct")]["actual"] == cur["revenue_growth_pct"]
    assert plan[(2024, "new_htx")]["actual"] == area[(2024, "17", "HTX")]["new_formed"]    # Hòa Bình's plan
    assert plan[(2025, "new_htx")]["actual"] == T.current_province_indicators(t)[(2025, "HTX")]["new_formed"]


def test_truth_units_on_a_hand_fixture():
    def row(year, unit, level, area, status="active", revenue=100.0, old=None, new=None, approx=False, reg="1"):
        return {"year": year, "district_code": unit if level == "district" else None, "source_file": "f", "sheet": "s",
                "row_number": 1, "reg_code": reg, "name": "n", "commune": None, "kind": "htx",
                "established_on": f"{year}-02-01", "sector": "agriculture", "status": status, "members": 10,
                "workers": None, "revenue": revenue, "profit": None, "income": None, "rating": None, "ocop_stars": None,
                "high_tech": False, "unit_code": unit, "unit_level": level, "area_code": area,
                "old_commune_code": old, "commune_code": new, "approximate": approx}
    rows = [row(2024, "157", "district", "17", revenue=100.0, old="05221", new="05200", approx=True, reg="A"),
            row(2024, "227", "district", "25", revenue=300.0, reg="B"),
            row(2025, "05200", "commune", "17", revenue=150.0, new="05200", reg="A")]
    t = T.T({"forms": {"HTX": rows, "THT": [], "HO_TRO": [], "CHI_TIEU": []},
             "invalid_rows": [], "rejected_files": [], "superseded": [], "files": []})
    p = T.province_indicators_by_province(t)
    assert p[(2024, "17", "HTX")]["avg_revenue_mvnd"] == 100 and p[(2024, "25", "HTX")]["avg_revenue_mvnd"] == 300
    assert p[(2025, "25", "HTX")]["active_count"] == 1 and p[(2025, "25", "HTX")]["revenue_growth_pct"] is None
    a = T.area_indicators(t)
    assert a[(2025, "17", "HTX")]["revenue_growth_pct"] == 50.0
    c = T.current_province_indicators(t)
    assert c[(2024, "HTX")]["avg_revenue_mvnd"] == 200 and c[(2025, "HTX")]["revenue_growth_pct"] == -25.0
    assert c[(2024, "HTX")]["complete"] is False and c[(2024, "HTX")]["areas_missing"] == ["17", "25", "26"]
    ci = T.commune_indicators(t)
    assert set(ci) == {(2024, "05200", "HTX"), (2025, "05200", "HTX")}
    assert ci[(2024, "05200", "HTX")]["approximate"] and not ci[(2025, "05200", "HTX")]["approximate"]
    assert ci[(2025, "05200", "HTX")]["revenue_growth_pct"] == 50.0
    b = T.funding_backlog(t)
    assert [(x["year"], x["reg_code"], x["unit_code"], x["area_code"]) for x in b] == [
        (2024, "A", "157", "17"), (2024, "B", "227", "25"), (2025, "A", "05200", "17")]
    assert b[0]["district_name"] == "Lạc Sơn" and b[2]["district_code"] is None


# ---------------------------------------------------------------- a small second province (another setting)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "raw"
    return out, generate_small_province(out, "48")


def test_small_province_generation(small, tmp_path):
    out, truth = small
    assert _files(out) == sorted(truth.files)
    again = generate_small_province(tmp_path / "raw", "48")
    assert again.to_json() == truth.to_json()
    assert Truth.from_json(truth.to_json()).to_json() == truth.to_json()
    t = T.load(truth)
    ref = T._ref()
    units = {y: _units(t, y) for y in (2023, 2024, 2025)}
    assert set(units) == {r["year"] for f in ("HTX", "THT") for r in t.forms[f]}
    assert units[2023] == units[2024] and len(units[2023]) == 3
    assert {a for _, a, _ in units[2023]} == {"48", "49"}                 # both former provinces
    assert {lvl for lvl, _, _ in units[2023]} == {"district"}
    assert len(units[2025]) == 4 and all(ref["communes"][u]["province_code"] == "48" for _, _, u in units[2025])
    for y, us in units.items():
        for _, _, u in us:
            n = {f: sum(1 for r in t.forms[f] if r["year"] == y and r["unit_code"] == u) for f in ("HTX", "THT")}
            assert 5 <= n["HTX"] <= 10 and 2 <= n["THT"] <= 4, (y, u, n)
    by = {(r["year"], r["reg_code"]): r for r in t.forms["HTX"]}
    carried = [r for r in t.forms["HTX"] if r["year"] == 2024 and (2025, r["reg_code"]) in by]
    assert carried and all(by[(2025, r["reg_code"])]["unit_code"] == T.commune_of(r["old_commune_code"])[0] for r in carried)
    assert not t.invalid_rows and not t.rejected_files and all(f.endswith(".xlsx") for f in t.files)
    cp = T.current_province_indicators(t, "48")
    assert cp[(2025, "HTX")]["complete"] is False and cp[(2025, "HTX")]["active_count"] > 0
    for r in t.forms["HTX"]:                                              # rows sit where the truth says
        wb = openpyxl.load_workbook(out / r["source_file"], read_only=True)
        cells = [c.value for c in next(wb[r["sheet"]].iter_rows(min_row=r["row_number"], max_row=r["row_number"]))]
        assert r["name"] in cells, r
        wb.close()
