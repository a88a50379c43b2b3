"""Expected warehouse figures computed in plain Python from the sample's ground truth.

Written straight from the definitions in `../shared/spec/warehouse.md`, independently of any
SQL in the project, so the marts can be checked against them. Input: a `coop.sample.Truth`,
its JSON text, a path to `ground_truth.json`, or nothing (the committed truth).

    from tests.truth import load, province_indicators
    t = load()
    province_indicators(t)[(2020, "HTX")]["active_count"]   # 422
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
TRUTH_JSON = ROOT / "data" / "sample" / "ground_truth.json"

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
    """Accepts None (committed JSON), a Path/str path, JSON text, a coop.sample.Truth, or a T."""
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


def training_turns(src: Any = None) -> dict[int, int]:
    """Sum of participants over training support allocated in each year (by allocated_on)."""
    t = load(src)
    out: dict[int, int] = defaultdict(int)
    for r in t.forms.get("HO_TRO", []):
        if r["support_type"] == "training" and r["participants"] is not None:
            out[_d(r["allocated_on"]).year] += r["participants"]
    return dict(out)


def funding_backlog(year: int, src: Any = None, window: int = 3) -> list[dict[str, Any]]:
    """HTX active in the year-Y register, established in Y-window+1..Y, with no establishment
    support allocated on or before 31/12/Y in any HO_TRO row (any year, any district)."""
    t = load(src)
    end = date(year, 12, 31)
    supported = {r["reg_code"] for r in t.forms.get("HO_TRO", [])
                 if r["support_type"] == "establishment" and _d(r["allocated_on"]) <= end}
    out = []
    for r in t.forms.get("HTX", []):
        est = _d(r["established_on"])
        if r["year"] == year and r["status"] == "active" and year - window + 1 <= est.year <= year \
                and r["reg_code"] not in supported:
            out.append({"year": year, "district_code": r["district_code"],
                        "district_name": DISTRICT_NAMES.get(r["district_code"]), "reg_code": r["reg_code"],
                        "name": r["name"], "established_on": est, "waiting_days": (end - est).days})
    out.sort(key=lambda x: (x["district_code"], x["reg_code"]))
    return out


def plan_vs_actual(src: Any = None) -> list[dict[str, Any]]:
    """One line per CHI_TIEU row: year, indicator_code, target_min, target_max, actual, status."""
    t = load(src)
    prov = indicators(t)
    tt = training_turns(t)
    out = []
    for r in t.forms.get("CHI_TIEU", []):
        y, code = r["year"], r["code"]
        htx, tht = prov.get((y, "HTX")), prov.get((y, "THT"))
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


def summary(src: Any = None, years: Iterable[int] = (2018, 2019, 2020, 2021)) -> str:
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
