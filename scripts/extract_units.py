"""Extract Vietnam's administrative units into `schemas/reference/` (not run by the pipeline).

Source: the PyPI package `vietnamadminunits==1.0.4` (MIT licence, pinned in
`requirements.lock`, dev extra). Only its data files are read:

- `vietnamadminunits/data/dataset.db` (sqlite): table `admin_units_legacy` (63 former
  provinces, 696 districts, 10,035 communes plus 5 island districts without a commune level,
  i.e. 10,040 rows) and table `admin_units` (34 provinces, 3,321 communes since 2025-07-01);
- `vietnamadminunits/data/converter_2025.json`: the former -> current mapping, by keys
  (`DICT_PROVINCE`, `DICT_PROVINCE_WARD_NO_DIVIDED`, `DICT_PROVINCE_WARD_DIVIDED`).

The package itself is never imported: its `__init__` pulls in shapely, geopy, tqdm and
unidecode, which this project does not install. `importlib.util.find_spec` of a top-level
package only locates it (its `__init__` is not executed); `--source DIR` overrides.

Run `.venv/bin/python scripts/extract_units.py` (options `--source`, `--out`, `--history`).
The hand-kept `unit_history.csv` adds the units the dataset lacks (districts abolished before
2025, e.g. Kỳ Sơn 151 merged into Thành phố Hòa Bình 148 on 2020-01-01).

Data decisions (all checked by asserts below, see also schemas/reference/README.md):

- Names: the full name (`ward`, `district`) is authoritative. Its type prefix is normalised
  to the canonical spelling ("Thị Trấn Ái Tử" -> "Thị trấn Ái Tử", "Thành Phố Bắc Kạn" ->
  "Thành phố Bắc Kạn") and the type is taken from it when the dataset's type column
  disagrees (former: Thị trấn Ngọc Lặc 15061, Phường 5 27046 and Phường 15 27076 of Phú
  Nhuận are typed "Xã"; current: Phường Việt Hòa 10543, Xã Vĩnh Hòa 11848, Phường Tân Lộc
  31213, Xã Phong Điền 31299). The short names lose the dataset's disambiguation suffix
  ("Cai Lậy (Huyện)" -> "Cai Lậy", "Yên Viên (Thị trấn)" -> "Yên Viên"). Numbered units keep
  their type in the short name ("Phường 1", "Quận 1"), as in the dataset.
- The 5 island districts without communes (Bạch Long Vĩ 318, Cồn Cỏ 471, Hoàng Sa 498,
  Lý Sơn 536, Côn Đảo 755) are districts, not communes: they are in districts.csv, not in
  former_communes.csv, and their lineage rows have an empty old_commune_code.
- area_code of a current commune (the former province it lies in): the converter gives 23
  current communes predecessors in two former provinces. In every case the minority
  predecessors are non-default parts of split communes, mostly name look-alikes of the
  package's matching (e.g. "Phường 4, Thành phố Mỹ Tho" -> Phường Cao Lãnh). Rule: the former
  province with most *default* predecessors (a predecessor is default when this commune is
  its whole or default successor); when there is none, the one with most predecessors; a
  tie is an error. The 23 (current code: province counts all / default):
    31 Hải Phòng: 10804 Kim Thành {30:4,31:1}/{30:3}; 10843 Hà Nam {30:5,31:1}/{30:5};
       11911 Nguyễn Bỉnh Khiêm {31:3,30:1}/{31:3}
    80 Tây Ninh: 25459 Tân Ninh {72:6,80:1}/{72:5}; 27694 Long An {80:7,72:1}/{80:6}
    82 Đồng Tháp: 29869 Cao Lãnh {87:11,82:4}/{87:9}
    86 Vĩnh Long: 28921 Tân Thành Bình {83:4,86:1}/{83:4}; 29182 Thạnh Phú {83:4,86:1}/{83:4};
       29734 Hòa Hiệp {86:3,83:1}/{86:3}
    92 Cần Thơ: 31246 Thạnh Quới {92:3,94:1}/{92:3}; 31288 Trường Thành {92:3,94:1}/{92:3};
       31378 Phú Hữu {93:3,94:2}/{93:2}; 31408 Thạnh Hòa {93:3,94:1}/{93:3};
       31473 Long Bình {93:3,94:1}/{93:3}; 31480 Long Phú 1 {93:3,94:1}/{93:3};
       31495 Xà Phiên {93:3,94:1}/{93:3}; 31582 Thuận Hòa {94:2,93:1}/{94:2,93:1};
       31591 Mỹ Hương {94:3,93:1}/{94:3}; 31639 Long Phú {94:2,93:1}/{94:2};
       31654 Trường Khánh {94:3,93:1}/{94:3}; 31666 Tân Thạnh {94:3,92:1}/{94:3};
       31726 Gia Hòa {94:2,92:1}/{94:2}; 31741 Tân Long {94:3,93:2}/{94:3}
  Phường Yên Sở (Hà Nội) has only non-default predecessors (all in 01).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import re
import sqlite3
import sys
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / "schemas" / "reference"
HISTORY_FILE = REFERENCE_DIR / "unit_history.csv"
PACKAGE = "vietnamadminunits"

REFORM_DATE = "2025-07-01"  # the 34 provinces / 2-level government since this day
FORMER, CURRENT = "former", "current"

Row = dict[str, str]

#: Output file stem -> columns, in order.
COLUMNS: dict[str, list[str]] = {
    "provinces": ["province_code", "province_name", "province_full_name", "era", "valid_from", "valid_to"],
    "province_merge": ["former_province_code", "current_province_code"],
    "districts": [
        "district_code", "district_name", "district_type", "province_code", "province_name",
        "valid_from", "valid_to", "note",
    ],
    "communes": [
        "commune_code", "commune_name", "commune_short", "commune_type", "province_code", "area_code",
        "valid_from", "valid_to",
    ],
    "former_communes": [
        "commune_code", "commune_name", "commune_short", "commune_type", "district_code", "province_code",
    ],
    "commune_lineage": [
        "old_commune_code", "old_district_code", "old_province_code", "new_commune_code", "new_province_code",
        "split", "is_default",
    ],
}
#: Sort order when it is not all columns left to right ("current" < "former": today first).
SORT_KEYS: dict[str, list[str]] = {"provinces": ["province_code", "era"]}
HISTORY_COLUMNS = [
    "unit_code", "level", "unit_name", "province_code", "event", "effective_date", "successor_code", "source",
]

PROVINCE_TYPES = ("Thành phố", "Tỉnh")
DISTRICT_TYPES = ("Thành phố", "Thị xã", "Quận", "Huyện")
FORMER_COMMUNE_TYPES = ("Thị trấn", "Phường", "Xã")
CURRENT_COMMUNE_TYPES = ("Đặc khu", "Phường", "Xã")
_SUFFIX = re.compile(r"\s*\((?:Huyện|Thị xã|Thành phố|Quận|Xã|Phường|Thị trấn)\)$")


def fold(text: str) -> str:
    """Lower case without diacritics (đ -> d): 'Hoà' and 'Hòa' fold equal."""
    s = unicodedata.normalize("NFD", text.strip().lower())
    return "".join(ch for ch in s if unicodedata.category(ch) != "Mn").replace("đ", "d")


def package_data_dir() -> Path:
    """`vietnamadminunits/data` of the installed package, located without importing it."""
    spec = importlib.util.find_spec(PACKAGE)  # a top-level spec: the package is not executed
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{PACKAGE} is not installed; install requirements.lock or pass --source DIR")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _data_dir(source_dir: Path) -> Path:
    """Accept the package folder or its `data` folder."""
    source_dir = Path(source_dir)
    return source_dir if (source_dir / "dataset.db").exists() else source_dir / "data"


def _typed_name(full: str, types: tuple[str, ...], where: str) -> tuple[str, str]:
    """(canonical full name, type) from a full name whose prefix is a type in any case."""
    for t in types:
        if full[: len(t) + 1].lower() == t.lower() + " ":
            return t + full[len(t):], t
    raise ValueError(f"{where}: {full!r} starts with none of {types}")


def _short(short: str, full: str, typ: str, where: str) -> str:
    """Short name without the dataset's '(Huyện)'-style suffix; checked against the full name."""
    s = _SUFFIX.sub("", short.strip())
    if full != f"{typ} {s}" and full != s:  # 'Phường 1' / 'Quận 1' keep their type
        raise ValueError(f"{where}: short {short!r} does not match {full!r}")
    return s


def _read_history(path: Path) -> list[Row]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != HISTORY_COLUMNS:
            raise ValueError(f"{path.name}: columns {reader.fieldnames}, expected {HISTORY_COLUMNS}")
        rows = [{k: (v or "").strip() for k, v in r.items()} for r in reader]
    for i, r in enumerate(rows, start=2):
        if not r["source"]:
            raise ValueError(f"{path.name} line {i}: every history row needs a source")
    return rows


def extract(source_dir: Path, history_path: Path = HISTORY_FILE) -> dict[str, list[Row]]:
    """All reference tables (file stem -> rows of str, sorted) from the package's data files
    plus the hand-kept history. Raises on any inconsistency instead of dropping rows."""
    data = _data_dir(source_dir)
    con = sqlite3.connect(f"file:{data / 'dataset.db'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        legacy = [dict(r) for r in con.execute("SELECT * FROM admin_units_legacy")]
        current = [dict(r) for r in con.execute("SELECT * FROM admin_units")]
    finally:
        con.close()
    conv = json.loads((data / "converter_2025.json").read_text(encoding="utf-8"))

    # -- provinces ---------------------------------------------------------------------------
    provinces: list[Row] = []
    prov_key: dict[str, dict[str, str]] = {FORMER: {}, CURRENT: {}}  # key -> code
    prov_short: dict[str, dict[str, str]] = {FORMER: {}, CURRENT: {}}  # code -> short name
    for era, rows in ((FORMER, legacy), (CURRENT, current)):
        seen: dict[str, tuple[str, str, str]] = {}
        for r in rows:
            full, _ = _typed_name(r["province"], PROVINCE_TYPES, f"province {r['provinceCode']}")
            item = (full, r["provinceShort"], r["provinceKey"])
            if seen.setdefault(r["provinceCode"], item) != item:
                raise ValueError(f"{era} province {r['provinceCode']}: two names {seen[r['provinceCode']]}, {item}")
        for code, (full, short, key) in seen.items():
            if not re.fullmatch(r"\d\d", code) or key in prov_key[era]:
                raise ValueError(f"{era} province {code}: bad code or duplicate key {key}")
            prov_key[era][key] = code
            prov_short[era][code] = short
            provinces.append({
                "province_code": code, "province_name": short, "province_full_name": full, "era": era,
                "valid_from": REFORM_DATE if era == CURRENT else "",
                "valid_to": REFORM_DATE if era == FORMER else "",
            })

    merge: list[Row] = []
    for new_key, old_keys in conv["DICT_PROVINCE"].items():
        for old_key in old_keys:
            merge.append({
                "former_province_code": prov_key[FORMER][old_key],
                "current_province_code": prov_key[CURRENT][new_key],
            })
    merged = Counter(m["former_province_code"] for m in merge)
    if set(merged) != set(prov_short[FORMER]) or set(merged.values()) != {1}:
        raise ValueError("DICT_PROVINCE: every former province must be in exactly one current province")
    if {m["current_province_code"] for m in merge} != set(prov_short[CURRENT]):
        raise ValueError("DICT_PROVINCE: a current province has no former province")
    new_prov_of_old = {m["former_province_code"]: m["current_province_code"] for m in merge}

    # -- districts and former communes -------------------------------------------------------
    districts: dict[str, Row] = {}
    former_communes: list[Row] = []
    old_by_key: dict[str, tuple[str, str, str]] = {}  # converter key -> (commune, district, province)
    for r in legacy:
        pc, dc = r["provinceCode"], r["districtCode"]
        where = f"district {dc}"
        dfull, dtype = _typed_name(r["district"], DISTRICT_TYPES, where)
        if dtype != r["districtType"]:
            raise ValueError(f"{where}: type {r['districtType']!r} but name {r['district']!r}")
        dshort = _short(r["districtShort"], dfull, dtype, where)
        drow = {
            "district_code": dc, "district_name": dshort if dtype == "Huyện" else dfull, "district_type": dtype,
            "province_code": pc, "province_name": prov_short[FORMER][pc],
            "valid_from": "", "valid_to": REFORM_DATE, "note": "",
        }
        if not re.fullmatch(r"\d{3}", dc) or districts.setdefault(dc, drow) != drow:
            raise ValueError(f"{where}: bad code or two different rows")
        key = f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey'] or ''}"
        if r["wardCode"] is None:  # island district without communes: the district is the unit
            if r["ward"] is not None or r["wardKey"] is not None:
                raise ValueError(f"{where}: a commune without a code")
            old_by_key[key] = ("", dc, pc)
            continue
        wc = r["wardCode"]
        wfull, wtype = _typed_name(r["ward"], FORMER_COMMUNE_TYPES, f"commune {wc}")
        # the full name wins over wardType (Ngọc Lặc 15061, Phú Nhuận 27046/27076 typed "Xã")
        former_communes.append({
            "commune_code": wc, "commune_name": wfull, "commune_short": _short(r["wardShort"], wfull, wtype, wc),
            "commune_type": wtype, "district_code": dc, "province_code": pc,
        })
        if key in old_by_key:
            raise ValueError(f"duplicate former key {key}")
        old_by_key[key] = (wc, dc, pc)

    # -- communes of today -------------------------------------------------------------------
    communes: dict[str, Row] = {}
    new_by_key: dict[tuple[str, str], str] = {}  # (province key, ward key) -> code
    for r in current:
        wc = r["wardCode"]
        wfull, wtype = _typed_name(r["ward"], CURRENT_COMMUNE_TYPES, f"commune {wc}")
        # the full name wins over wardType (10543, 11848, 31213, 31299 disagree)
        communes[wc] = {
            "commune_code": wc, "commune_name": wfull, "commune_short": _short(r["wardShort"], wfull, wtype, wc),
            "commune_type": wtype, "province_code": r["provinceCode"], "area_code": "",
            "valid_from": REFORM_DATE, "valid_to": "",
        }
        new_by_key[(r["provinceKey"], r["wardKey"])] = wc
    if len(communes) != len(current) or len(new_by_key) != len(current):
        raise ValueError("admin_units: duplicate wardCode or key")

    # -- lineage -----------------------------------------------------------------------------
    unresolved: list[str] = []

    def old_unit(key: str) -> tuple[str, str, str] | None:
        unit = old_by_key.get(key)
        if unit is None:
            unresolved.append(f"former {key}")
        return unit

    def new_unit(prov: str, ward: str) -> str | None:
        code = new_by_key.get((prov, ward))
        if code is None:
            unresolved.append(f"current {prov}/{ward}")
        return code

    links: list[tuple[tuple[str, str, str], str, bool, bool]] = []  # (old unit, new code, split, default)
    for prov, wards in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for ward, old_keys in wards.items():
            code = new_unit(prov, ward)
            for key in old_keys:
                unit = old_unit(key)
                if unit is not None and code is not None:
                    links.append((unit, code, False, True))
    for prov, olds in conv["DICT_PROVINCE_WARD_DIVIDED"].items():
        for key, targets in olds.items():
            unit = old_unit(key)
            for t in targets:
                code = new_unit(prov, t["newWardKey"])
                if unit is not None and code is not None:
                    links.append((unit, code, True, bool(t["isDefaultNewWard"])))
    if unresolved:  # none in 1.0.4; never drop silently
        raise ValueError(f"{len(unresolved)} converter keys do not resolve: {unresolved[:20]}")

    per_old: dict[tuple[str, str, str], list[tuple[str, bool, bool]]] = defaultdict(list)
    for unit, code, split, default in links:
        per_old[unit].append((code, split, default))
    lineage: list[Row] = []
    for unit, targets in per_old.items():
        codes = [c for c, _, _ in targets]
        is_split = len(codes) > 1
        if len(set(codes)) != len(codes):
            raise ValueError(f"former {unit}: a current commune listed twice")
        if any(s != is_split for _, s, _ in targets) or sum(d for _, _, d in targets) != 1:
            raise ValueError(f"former {unit}: split flag or default successor inconsistent")
        for code, _, default in targets:
            if communes[code]["province_code"] != new_prov_of_old[unit[2]]:
                raise ValueError(f"former {unit} -> {code}: not in the current province of its province")
            lineage.append({
                "old_commune_code": unit[0], "old_district_code": unit[1], "old_province_code": unit[2],
                "new_commune_code": code, "new_province_code": communes[code]["province_code"],
                "split": "true" if is_split else "false", "is_default": "true" if default else "false",
            })
    missing_old = set(old_by_key.values()) - set(per_old)
    if missing_old:
        raise ValueError(f"{len(missing_old)} former units without a current commune: {sorted(missing_old)[:20]}")

    # area_code: former province of the predecessors (see the module docstring for the 23 cases)
    preds: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for ln in lineage:
        preds[ln["new_commune_code"]].append((ln["old_province_code"], ln["is_default"] == "true"))
    for code, row in communes.items():
        if code not in preds:
            raise ValueError(f"current commune {code} has no predecessor")
        votes = Counter(p for p, d in preds[code] if d) or Counter(p for p, _ in preds[code])
        (best, n), *rest = votes.most_common()
        if rest and rest[0][1] == n:
            raise ValueError(f"current commune {code}: area tie {dict(votes)}")
        row["area_code"] = best

    # -- hand-kept history -------------------------------------------------------------------
    for h in _read_history(history_path):
        where = f"{history_path.name} {h['unit_code']}"
        if h["level"] != "district" or h["event"] != "merged":
            raise ValueError(f"{where}: only level=district, event=merged is supported, not {h['level']}/{h['event']}")
        if h["unit_code"] in districts:
            raise ValueError(f"{where}: the dataset has this district until {REFORM_DATE}; it cannot end earlier")
        succ = districts.get(h["successor_code"])
        if succ is None or succ["province_code"] != h["province_code"]:
            raise ValueError(f"{where}: successor {h['successor_code']} unknown or in another province")
        # unit_name follows district_name: short for a Huyện, the full name otherwise
        name = h["unit_name"]
        dtype = next((t for t in DISTRICT_TYPES if t != "Huyện" and name.startswith(t + " ")), "Huyện")
        districts[h["unit_code"]] = {
            "district_code": h["unit_code"], "district_name": name, "district_type": dtype,
            "province_code": h["province_code"], "province_name": prov_short[FORMER][h["province_code"]],
            "valid_from": "", "valid_to": h["effective_date"],
            "note": f"merged into {succ['district_name']} ({succ['district_code']}) on {h['effective_date']}"
            " (valid_to is exclusive)",
        }
        addition = f"{name} ({h['unit_code']}) merged in from {h['effective_date']}"
        succ["note"] = f"{succ['note']}; {addition}" if succ["note"] else addition

    # cross-check: a current commune that kept a former commune's GSO code (3,316 of 3,321; the
    # other 5 are the island districts' đặc khu) has that commune as a predecessor, in area_code
    old_codes = {c["commune_code"]: c for c in former_communes}
    pairs = {(ln["old_commune_code"], ln["new_commune_code"]) for ln in lineage}
    for code, row in communes.items():
        same = old_codes.get(code)
        if same is not None and ((code, code) not in pairs or same["province_code"] != row["area_code"]):
            raise ValueError(f"current commune {code}: its former namesake code disagrees with the lineage")

    tables = {
        "provinces": provinces, "province_merge": merge, "districts": list(districts.values()),
        "communes": list(communes.values()), "former_communes": former_communes, "commune_lineage": lineage,
    }
    return {stem: sorted(rows, key=lambda r, c=SORT_KEYS.get(stem, COLUMNS[stem]): [r[k] for k in c])
            for stem, rows in tables.items()}


def write_tables(tables: dict[str, list[Row]], out: Path) -> None:
    """One UTF-8 CSV per table: header row, '\\n' line ends, the columns of COLUMNS."""
    out.mkdir(parents=True, exist_ok=True)
    for stem, rows in tables.items():
        with (out / f"{stem}.csv").open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS[stem], lineterminator="\n")
            w.writeheader()
            w.writerows(rows)


def findings(tables: dict[str, list[Row]]) -> list[str]:
    """Figures and oddities worth knowing (printed by main, quoted in the README)."""
    provs = Counter(p["era"] for p in tables["provinces"])
    lin = tables["commune_lineage"]
    split = [(r["old_district_code"], r["old_commune_code"]) for r in lin if r["split"] == "true"]
    out = [
        f"provinces: {provs[FORMER]} former, {provs[CURRENT]} current",
        f"communes of today: {len(tables['communes'])}",
        f"former communes: {len(tables['former_communes'])} "
        f"(+ {sum(1 for r in lin if not r['old_commune_code'])} island districts without communes)",
        f"districts: {len(tables['districts'])}",
        f"lineage rows: {len(lin)}, split rows: {len(split)}, split former communes: {len(set(split))}",
    ]
    by_prov: dict[str, Counter[str]] = defaultdict(Counter)
    for c in tables["communes"]:
        by_prov[c["province_code"]][c["area_code"]] += 1
    for pc in sorted(by_prov):
        areas = ", ".join(f"{a}: {n}" for a, n in sorted(by_prov[pc].items()))
        out.append(f"current {pc}: {sum(by_prov[pc].values())} communes (area {areas})")
    names: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in tables["communes"]:
        names[(c["province_code"], fold(c["commune_short"]))].append(f"{c['commune_name']} {c['commune_code']}")
    for (pc, _), same in sorted(names.items()):
        if len(same) > 1:
            out.append(f"current {pc}: communes sharing a folded short name: {' / '.join(same)}")
    merge = {m["former_province_code"]: m["current_province_code"] for m in tables["province_merge"]}
    dnames: dict[tuple[str, str], set[str]] = defaultdict(set)
    for d in tables["districts"]:
        short = d["district_name"]
        if d["district_type"] != "Huyện":
            short = short[len(d["district_type"]) + 1:]
        dnames[(merge[d["province_code"]], fold(short))].add(d["province_code"])
    for (cur, name), olds in sorted(dnames.items()):
        if len(olds) > 1:
            out.append(f"current {cur}: district short name {name!r} in former provinces {sorted(olds)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, help="the vietnamadminunits package folder (default: the installed one)")
    ap.add_argument("--out", type=Path, default=REFERENCE_DIR, help="output folder (default: schemas/reference)")
    ap.add_argument("--history", type=Path, default=HISTORY_FILE, help="hand-kept unit_history.csv")
    args = ap.parse_args(argv)
    source = args.source or package_data_dir()
    tables = extract(source, args.history)
    write_tables(tables, args.out)
    for stem, rows in tables.items():
        print(f"{args.out / (stem + '.csv')}: {len(rows)} rows")
    for line in findings(tables):
        print(line)
    assert PACKAGE not in sys.modules, "the package must not be imported"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
