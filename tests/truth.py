"""Expected warehouse figures computed in plain Python from the sample's ground truth.

Written straight from the definitions in `../shared/spec/warehouse.md` and `units.md`, independently
of any SQL in the project, so the marts can be checked against them. Input: a `sample.generate.Truth`,
its JSON text, a path to `ground_truth.json`, or nothing (the committed truth). The unit functions
also read the reference CSVs of `schemas/reference/` (data, not pipeline code).

    from tests.truth import load, province_indicators
    t = load()
    province_indicators(t)[(2020, "HTX")]["active_count"]   # 422

`province_indicators` groups every row of a year: the province of 2018-2021 (Hòa Bình) and, from
2022, today's province restated (the sample holds nothing else). The marts of units.md "Names":
`province_indicators_by_province`, `area_indicators`, `current_province_indicators`,
`commune_indicators`; `funding_backlog` rows carry `unit_code` and `area_code`.
"""

from __future__ import annotations

import csv
import functools
import json
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
TRUTH_JSON = ROOT / "data" / "sample" / "ground_truth.json"
REF_DIR = ROOT / "schemas" / "reference"
REFORM_YEAR = 2025          # from report year 2025 communes of today report, not districts
PROVINCE = "25"             # today's province of the sample (Phú Thọ: former 17, 25, 26)

DISTRICT_NAMES = {
    "148": "Thành phố Hòa Bình", "150": "Đà Bắc", "151": "Kỳ Sơn", "152": "Lương Sơn", "153": "Kim Bôi",
    "154": "Cao Phong", "155": "Tân Lạc", "156": "Mai Châu", "157": "Lạc Sơn", "158": "Yên Thủy", "159": "Lạc Thủy",
}

INDICATORS = ["new_formed", "active_count", "members", "workers", "avg_revenue_mvnd", "avg_profit_mvnd",
              "avg_income_mvnd_month", "revenue_growth_pct", "income_growth_pct", "ocop_count", "high_tech_count"]


class T:
    """Ground truth as plain dicts: forms[form] -> list of row dicts; plus the lists of the JSON."""

    def __init__(self, d: dict[str, Any]):
        self.forms: dict[str, list[dict[str, Any]]] = d["forms"]
        self.invalid_rows: list[dict[str, Any]] = d["invalid_rows"]
        self.rejected_files: list[dict[str, Any]] = d["rejected_files"]
        self.ignored_sheets: list[dict[str, Any]] = d.get("ignored_sheets", [])
        self.rejected_sheets: list[dict[str, Any]] = d.get("rejected_sheets", [])
        self.superseded: list[dict[str, Any]] = d["superseded"]
        self.files: list[str] = d["files"]


def load(src: Any = None) -> T:
    """Accepts None (committed JSON), a Path/str path, JSON text, a sample.generate.Truth, or a T."""
    if isinstance(src, T):
        return src
    if src is None:
        src = TRUTH_JSON
    if hasattr(src, "to_json"):
        src = src.to_json()
    if isinstance(src, Path) or (isinstance(src, str) and not src.lstrip().startswith("{")):
        src = Path(src).read_text(encoding="utf-8")
    d = json.loads(src)
    forms = {}
    for f, v in d["forms"].items():
        forms[f] = [dict(zip(v["columns"], row)) for row in v["rows"]] if isinstance(v, dict) else v
    d["forms"] = forms
    return T(d)


def _d(x: Any) -> date | None:
    if x is None or isinstance(x, date):
        return x
    return date.fromisoformat(x)


def _group_rows(t: T, by: str | None) -> dict[tuple, list[tuple[str, dict[str, Any]]]]:
    groups: dict[tuple, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for etype in ("HTX", "THT"):
        for r in t.forms.get(etype, []):
            key: tuple = (r["year"], etype)
            if by == "district":
                if r["district_code"] is None:          # commune-era rows have no district
                    continue
                key = (r["year"], r["district_code"], etype)
            elif by == "sector":
                key = (r["year"], r["sector"], etype)
            groups[key].append((etype, r))
    return groups


def _indicators(etype: str, year: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    active = [r for r in rows if r["status"] == "active"]
    new = sum(1 for r in rows if _d(r["established_on"]).year == year)

    def total(col: str) -> int | None:
        vals = [r[col] for r in active if r[col] is not None]
        return sum(vals) if vals else None

    def mean(col: str) -> float | None:
        vals = [r[col] for r in active if r[col] is not None]
        return sum(vals) / len(vals) if vals else None

    num = den = 0.0
    for r in active:
        if r["income"] is None:
            continue
        w = r["workers"] if r["workers"] is not None else r["members"]
        if w is None or w <= 0:
            continue
        num += r["income"] * w
        den += w
    return {
        "new_formed": new,
        "active_count": len(active),
        "members": total("members"),
        "workers": total("workers"),
        "avg_revenue_mvnd": mean("revenue"),
        "avg_profit_mvnd": mean("profit"),
        "avg_income_mvnd_month": num / den if den > 0 else None,
        "revenue_growth_pct": None,
        "income_growth_pct": None,
        "ocop_count": sum(1 for r in active if r.get("ocop_stars") is not None) if etype == "HTX" else None,
        "high_tech_count": sum(1 for r in active if r.get("high_tech")) if etype == "HTX" else None,
    }


def _growth(now: float | None, before: float | None) -> float | None:
    if now is None or before is None or before == 0:
        return None
    return (now / before - 1) * 100


def indicators(src: Any = None, by: str | None = None) -> dict[tuple, dict[str, Any]]:
    """Indicators per (year, entity_type) [by=None], (year, district_code, entity_type) [by="district"]
    or (year, sector, entity_type) [by="sector"]. A group with no rows has no key."""
    t = load(src)
    out = {}
    for key, items in _group_rows(t, by).items():
        etype = key[-1]
        out[key] = _indicators(etype, key[0], [r for _, r in items])
    for key, ind in out.items():
        prev = out.get((key[0] - 1,) + key[1:])
        ind["revenue_growth_pct"] = _growth(ind["avg_revenue_mvnd"], prev and prev["avg_revenue_mvnd"])
        ind["income_growth_pct"] = _growth(ind["avg_income_mvnd_month"], prev and prev["avg_income_mvnd_month"])
    return out


def province_indicators(src: Any = None) -> dict[tuple[int, str], dict[str, Any]]:
    return indicators(src)


def district_indicators(src: Any = None) -> dict[tuple[int, str, str], dict[str, Any]]:
    return indicators(src, by="district")


def sector_indicators(src: Any = None) -> dict[tuple[int, str, str], dict[str, Any]]:
    return indicators(src, by="sector")


def training_turns(src: Any = None, province: str | None = None) -> dict[int, int]:
    """Sum of participants over training support allocated in each year (by allocated_on); with
    `province`, only support recorded by units of that province as it was that year."""
    t = load(src)
    out: dict[int, int] = defaultdict(int)
    for r in t.forms.get("HO_TRO", []):
        if province is not None and _province_of(r) != province:
            continue
        if r["support_type"] == "training" and r["participants"] is not None:
            out[_d(r["allocated_on"]).year] += r["participants"]
    return dict(out)


def funding_backlog(year: Any = None, src: Any = None, window: int = 3) -> list[dict[str, Any]]:
    """HTX active in the year-Y register, established in Y-window+1..Y, with no establishment
    support allocated on or before 31/12/Y in any HO_TRO row (any year, any unit). Followed by
    reg_code across the reform. `funding_backlog(2020, t)` is one year; `funding_backlog(t)` (or
    no argument) every year of the registers, in year order."""
    if year is not None and not isinstance(year, int):
        year, src = None, year
    t = load(src)
    if year is None:
        return [b for y in sorted({r["year"] for r in t.forms.get("HTX", [])}) for b in funding_backlog(y, t, window)]
    end = date(year, 12, 31)
    supported = {r["reg_code"] for r in t.forms.get("HO_TRO", [])
                 if r["support_type"] == "establishment" and _d(r["allocated_on"]) <= end}
    out = []
    for r in t.forms.get("HTX", []):
        est = _d(r["established_on"])
        if r["year"] == year and r["status"] == "active" and year - window + 1 <= est.year <= year \
                and r["reg_code"] not in supported:
            d = r["district_code"]
            out.append({"year": year, "district_code": d, "district_name": _district_name(d),
                        "reg_code": r["reg_code"], "name": r["name"], "established_on": est,
                        "waiting_days": (end - est).days, "unit_code": _unit_of(r), "area_code": _area_of(r)})
    out.sort(key=lambda x: (x["district_code"] or "", x["unit_code"] or "", x["reg_code"]))
    return out


def plan_vs_actual(src: Any = None) -> list[dict[str, Any]]:
    """One line per CHI_TIEU row: year, indicator_code, target_min, target_max, actual, status.
    The actual is the figure of the province whose plan it is, as it was that year (the plan row's
    unit_code: Hòa Bình 17 until 2024, Phú Thọ 25 from 2025); a plan row without one is compared
    with every row of its year."""
    t = load(src)
    prov = indicators(t)
    by_prov = province_indicators_by_province(t)
    out = []
    for r in t.forms.get("CHI_TIEU", []):
        y, code = r["year"], r["code"]
        p = r.get("unit_code")
        if p and y >= REFORM_YEAR:  # today's province: growth over the restated year before
            cur = current_province_indicators(t, province=p)
            htx, tht = cur.get((y, "HTX")), cur.get((y, "THT"))
            tt = training_turns(t, p)
        elif p:
            htx, tht = by_prov.get((y, p, "HTX")), by_prov.get((y, p, "THT"))
            tt = training_turns(t, p)
        else:
            htx, tht = prov.get((y, "HTX")), prov.get((y, "THT"))
            tt = training_turns(t)
        actual = {
            "new_htx": htx and htx["new_formed"],
            "new_tht": tht and tht["new_formed"],
            "htx_revenue_growth_pct": htx and htx["revenue_growth_pct"],
            "htx_income_growth_pct": htx and htx["income_growth_pct"],
            "training_turns": tt.get(y),
            "high_tech_htx": htx and htx["high_tech_count"],
        }[code]
        lo = r["target_min"]
        status = "no_data" if actual is None else ("met" if actual >= lo else "not_met")
        out.append({"year": y, "indicator_code": code, "target_min": lo, "target_max": r["target_max"],
                    "actual": actual, "status": status})
    return out


def valid_rows(form: str, src: Any = None) -> list[dict[str, Any]]:
    return list(load(src).forms.get(form, []))


def summary(src: Any = None, years: Iterable[int] = (2018, 2019, 2020, 2021, 2022, 2023, 2024, 2025, 2026)) -> str:
    """A readable table of the province indicators (for eyeballing)."""
    p = province_indicators(src)
    lines = []
    for y in years:
        for e in ("HTX", "THT"):
            if (y, e) in p:
                i = p[(y, e)]
                lines.append(f"{y} {e}: " + ", ".join(
                    f"{k}={round(v, 2) if isinstance(v, float) else v}" for k, v in i.items()))
        lines.append(f"{y} backlog={len(funding_backlog(y, src))} training={training_turns(src).get(y)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- units (units.md)


@functools.lru_cache(maxsize=None)
def _ref() -> dict[str, Any]:
    def rows(name: str) -> list[dict[str, str]]:
        with open(REF_DIR / name, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))
    lineage = rows("commune_lineage.csv")
    return {
        "districts": {r["district_code"]: r for r in rows("districts.csv")},
        "communes": {r["commune_code"]: r for r in rows("communes.csv")},
        "former": {r["commune_code"]: r for r in rows("former_communes.csv")},
        "merge": {r["former_province_code"]: r["current_province_code"] for r in rows("province_merge.csv")},
        "default_new": {r["old_commune_code"]: r["new_commune_code"] for r in lineage
                        if r["old_commune_code"] and r["is_default"] == "true"},
        "split": {r["old_commune_code"] for r in lineage if r["old_commune_code"] and r["split"] == "true"},
    }


def _unit_of(r: dict[str, Any]) -> str:
    return r.get("unit_code") or r["district_code"]


def _is_commune(r: dict[str, Any]) -> bool:
    return r.get("unit_level") == "commune"


def _area_of(r: dict[str, Any]) -> str:
    """Former province of the reporting unit: a district's province, a commune of today's area."""
    ref = _ref()
    u = _unit_of(r)
    return ref["communes"][u]["area_code"] if _is_commune(r) else ref["districts"][u]["province_code"]


def _province_of(r: dict[str, Any]) -> str:
    """The province as it was that year: a district's province (<= 2024), a commune's (from 2025)."""
    ref = _ref()
    u = _unit_of(r)
    return ref["communes"][u]["province_code"] if _is_commune(r) else ref["districts"][u]["province_code"]


def _district_name(code: str | None) -> str | None:
    if code is None:
        return None
    return DISTRICT_NAMES.get(code) or _ref()["districts"][code]["district_name"]


def areas_of(province: str = PROVINCE) -> list[str]:
    """The former provinces that make up today's `province`."""
    return sorted(f for f, c in _ref()["merge"].items() if c == province)


def _territory_changed(province: str) -> bool:
    return areas_of(province) != [province]


def _by_key(t: T, keyfn, growth_ok=lambda key: True) -> dict[tuple, dict[str, Any]]:
    """Indicators per (year, *keyfn(row), entity_type); keyfn returning None leaves the row out.
    Growth compares the same key in Y-1 (unless growth_ok(key) is false)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for etype in ("HTX", "THT"):
        for r in t.forms.get(etype, []):
            k = keyfn(r)
            if k is not None:
                groups[(r["year"],) + tuple(k) + (etype,)].append(r)
    out = {key: _indicators(key[-1], key[0], rows) for key, rows in groups.items()}
    for key, ind in out.items():
        prev = out.get((key[0] - 1,) + key[1:]) if growth_ok(key) else None
        ind["revenue_growth_pct"] = _growth(ind["avg_revenue_mvnd"], prev and prev["avg_revenue_mvnd"])
        ind["income_growth_pct"] = _growth(ind["avg_income_mvnd_month"], prev and prev["avg_income_mvnd_month"])
    return out


def province_indicators_by_province(src: Any = None) -> dict[tuple[int, str, str], dict[str, Any]]:
    """(year, province_code, entity_type): the province as it was that year (district era: the district's
    province, 17/25/26; commune era: the commune's, 25). Growth across 2024 -> 2025 is null for a
    province whose territory changed in the reform (25: 17 + 25 + 26)."""
    t = load(src)
    return _by_key(t, lambda r: (_province_of(r),),
                   lambda key: not (key[0] == REFORM_YEAR and _territory_changed(key[1])))


def area_indicators(src: Any = None) -> dict[tuple[int, str, str], dict[str, Any]]:
    """(year, area_code, entity_type): former province areas, one series across the reform."""
    t = load(src)
    return _by_key(t, lambda r: (_area_of(r),))


def expected_units(year: int, province: str = PROVINCE) -> dict[str, str]:
    """unit_code -> area_code of the units expected to report for `year` to today's `province`: the districts
    of its former provinces valid on 31/12/Y (Y <= 2024), its communes of today (Y >= 2025)."""
    ref = _ref()
    end = date(year, 12, 31).isoformat()

    def valid(r: dict[str, str]) -> bool:
        return (not r["valid_from"] or r["valid_from"] <= end) and (not r["valid_to"] or r["valid_to"] > end)

    if year < REFORM_YEAR:
        areas = set(areas_of(province))
        return {c: r["province_code"] for c, r in ref["districts"].items() if r["province_code"] in areas and valid(r)}
    return {c: r["area_code"] for c, r in ref["communes"].items() if r["province_code"] == province and valid(r)}


def current_province_indicators(src: Any = None, province: str = PROVINCE) -> dict[tuple[int, str], dict[str, Any]]:
    """(year, entity_type) for today's `province`: every row of its areas (restated before 2025, direct
    after), growth over the restated year before; `complete` when every expected unit (expected_units)
    sent at least one register row (HTX or THT) that year, `areas_missing` the sorted areas of the others."""
    t = load(src)
    areas = set(areas_of(province))
    out = _by_key(t, lambda r: () if _area_of(r) in areas else None)
    reported: dict[int, set[str]] = defaultdict(set)
    for etype in ("HTX", "THT"):
        for r in t.forms.get(etype, []):
            if _area_of(r) in areas:
                reported[r["year"]].add(_unit_of(r))
    for (year, _etype), ind in out.items():
        missing = {a for u, a in expected_units(year, province).items() if u not in reported[year]}
        ind["complete"] = not missing
        ind["areas_missing"] = sorted(missing)
    return out


def missing_units(year: int, src: Any = None, province: str = PROVINCE) -> list[str]:
    """Expected units (expected_units) without any register row for `year` (what `coop status` names)."""
    t = load(src)
    got = {_unit_of(r) for f in ("HTX", "THT") for r in t.forms.get(f, []) if r["year"] == year}
    return sorted(u for u in expected_units(year, province) if u not in got)


def commune_indicators(src: Any = None, province: str = PROVINCE) -> dict[tuple[int, str, str], dict[str, Any]]:
    """(year, commune_code, entity_type) over the rows with a commune of today (restated through the lineage
    before 2025; rows with a blank or unknown commune cell have none and are left out); `approximate` when
    any of its rows came through a split former commune; `area_code` of the commune."""
    t = load(src)
    ref = _ref()
    mine = {c for c, r in ref["communes"].items() if r["province_code"] == province}
    out = _by_key(t, lambda r: (r["commune_code"],) if r.get("commune_code") in mine else None)
    approx: set[tuple] = set()
    for etype in ("HTX", "THT"):
        for r in t.forms.get(etype, []):
            if r.get("approximate"):
                approx.add((r["year"], r["commune_code"], etype))
    for key, ind in out.items():
        ind["approximate"] = key in approx
        ind["area_code"] = ref["communes"][key[1]]["area_code"]
    return out


def commune_of(old_commune_code: str) -> tuple[str, bool]:
    """(commune of today, approximate) of a former commune, from the reference lineage (default successor)."""
    ref = _ref()
    return ref["default_new"][old_commune_code], old_commune_code in ref["split"]
