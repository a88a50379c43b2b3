"""Vietnam's administrative units in schemas/reference/, extracted by scripts/extract_units.py
from the pinned `vietnamadminunits==1.0.4` data files (the package is never imported)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "schemas" / "reference"
SCRIPT = ROOT / "scripts" / "extract_units.py"
STEMS = ("provinces", "province_merge", "districts", "communes", "former_communes", "commune_lineage")


def _load_script():
    spec = importlib.util.spec_from_file_location("extract_units", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read(name: str) -> list[dict[str, str]]:
    with (REF / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def script():
    return _load_script()


@pytest.fixture(scope="module")
def extracted(script):
    return script.extract(script.package_data_dir())


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict[str, str]]]:
    return {stem: _read(f"{stem}.csv") for stem in STEMS}


def test_extract_reproduces_committed_files(script, extracted, files):
    assert set(extracted) == set(STEMS)
    for stem in STEMS:
        with (REF / f"{stem}.csv").open(encoding="utf-8", newline="") as fh:
            assert next(csv.reader(fh)) == script.COLUMNS[stem], stem
        assert extracted[stem] == files[stem], stem


def test_package_not_imported(extracted):
    # find_spec of a top-level package locates it without executing its __init__, which
    # would need shapely/geopy/unidecode/tqdm (not installed)
    assert "vietnamadminunits" not in sys.modules
    assert importlib.util.find_spec("shapely") is None
    assert importlib.util.find_spec("vietnamadminunits") is not None


def test_counts(files):
    eras = Counter(p["era"] for p in files["provinces"])
    assert eras == {"former": 63, "current": 34}
    for era in ("former", "current"):
        codes = [p["province_code"] for p in files["provinces"] if p["era"] == era]
        assert len(set(codes)) == len(codes)
    assert {"01", "25"} <= {p["province_code"] for p in files["provinces"] if p["era"] == "former"}
    assert {"01", "25"} <= {p["province_code"] for p in files["provinces"] if p["era"] == "current"}
    assert len(files["province_merge"]) == 63
    assert len(files["communes"]) == 3321
    # the dataset's 10,040 former rows: 10,035 communes + 5 island districts without communes
    assert len(files["former_communes"]) == 10035
    islands = {r["old_district_code"] for r in files["commune_lineage"] if not r["old_commune_code"]}
    assert islands == {"318", "471", "498", "536", "755"}
    assert len(files["former_communes"]) + len(islands) == 10040
    phu_tho = Counter(c["area_code"] for c in files["communes"] if c["province_code"] == "25")
    assert sum(phu_tho.values()) == 148 and phu_tho == {"17": 46, "25": 66, "26": 36}
    hoa_binh = [d for d in files["districts"] if d["province_code"] == "17"]
    assert len(hoa_binh) == 11
    assert sum(d["valid_to"] == "2025-07-01" for d in hoa_binh) == 10


def test_provinces_and_names(files):
    prov = {(p["province_code"], p["era"]): p for p in files["provinces"]}
    assert prov[("25", "current")]["province_full_name"] == "Tỉnh Phú Thọ"
    assert prov[("79", "current")]["province_name"] == "Hồ Chí Minh"
    assert prov[("79", "current")]["province_full_name"] == "Thành phố Hồ Chí Minh"
    validity = {(p["era"], p["valid_from"], p["valid_to"]) for p in files["provinces"]}
    assert validity == {("current", "2025-07-01", ""), ("former", "", "2025-07-01")}
    merge = Counter(m["former_province_code"] for m in files["province_merge"])
    assert set(merge.values()) == {1} and len(merge) == 63
    d = {r["district_code"]: r for r in files["districts"]}
    assert d["157"]["district_name"] == "Lạc Sơn" and d["148"]["district_name"] == "Thành phố Hòa Bình"
    assert d["760"]["district_name"] == "Quận 1"
    assert {r["district_type"] for r in files["districts"]} == {"Huyện", "Thành phố", "Thị xã", "Quận"}
    assert all(len(r["district_code"]) == 3 for r in files["districts"])
    assert all(len(r["commune_code"]) == 5 for r in files["communes"] + files["former_communes"])
    assert {r["commune_type"] for r in files["communes"]} == {"Xã", "Phường", "Đặc khu"}
    assert {r["commune_type"] for r in files["former_communes"]} == {"Xã", "Phường", "Thị trấn"}


def test_ky_son_history(files):
    d = {r["district_code"]: r for r in files["districts"]}
    ky_son = d["151"]
    assert (ky_son["district_name"], ky_son["district_type"], ky_son["province_code"]) == ("Kỳ Sơn", "Huyện", "17")
    assert ky_son["valid_to"] == "2020-01-01" and "148" in ky_son["note"]
    assert d["148"]["note"] == "Kỳ Sơn (151) merged in from 2020-01-01"
    history = _read("unit_history.csv")
    row = next(h for h in history if h["unit_code"] == "151")
    assert (row["level"], row["event"], row["effective_date"], row["successor_code"]) == (
        "district", "merged", "2020-01-01", "148")
    assert all(h["source"].strip() for h in history)


def test_lineage_invariants(files):
    lineage = files["commune_lineage"]
    per_old: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in lineage:
        per_old[(r["old_district_code"], r["old_commune_code"])].append(r)
    former = {(c["district_code"], c["commune_code"]) for c in files["former_communes"]}
    assert former <= set(per_old)
    assert len(per_old) == 10040
    for rows in per_old.values():
        assert sum(r["is_default"] == "true" for r in rows) == 1
        assert all((r["split"] == "true") == (len(rows) > 1) for r in rows)
    communes = {c["commune_code"]: c for c in files["communes"]}
    preds: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in lineage:
        assert r["new_province_code"] == communes[r["new_commune_code"]]["province_code"]
        preds[r["new_commune_code"]].append(r)
    assert set(preds) == set(communes)
    merge = {m["former_province_code"]: m["current_province_code"] for m in files["province_merge"]}
    for code, c in communes.items():
        provinces = {r["old_province_code"] for r in preds[code]}
        assert c["area_code"] in provinces
        assert merge[c["area_code"]] == c["province_code"]
        # a single former province except the 23 listed in the script (non-default split parts)
        defaults = {r["old_province_code"] for r in preds[code] if r["is_default"] == "true"}
        if len(provinces) > 1:
            assert c["area_code"] in defaults
    spanning = [code for code in communes if len({r["old_province_code"] for r in preds[code]}) > 1]
    assert len(spanning) == 23
