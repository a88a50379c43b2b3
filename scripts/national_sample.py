"""A national-scale raw folder (benchmark input, not a test) for the province setting `VN`.

    python scripts/national_sample.py --out DIR [--seed N] [--scale K] [--provinces 01,48]
                                      [--max-units N] [--jobs J] [--truth FILE]

Every province of today, every unit: the district era (report years 2023 and 2024, every
district valid on 31 December of the year in the province's former provinces) and the commune
era (2025 and 2026, the 3,321 communes of today), written as `<out>/<year>/<unit folder>/<file>`
for a warehouse built with `COOP_PROVINCE=VN`. At `--scale 1` that is ≈ 12,000 workbooks and
≈ 1 M register rows (HTX + THT + HO_TRO over the four years); `--scale K` multiplies the rows
per file (K may be a fraction), `--max-units N` keeps N units per province and year (tests,
fractions of the country).

The population is built per province of today like `sample.generate.generate_small_province`
(cooperatives keep their reg_code across the reform, a district-era row names its former
commune, a commune-era row its commune of today), but for every unit and with the counts of
the country (per former commune ≈ 6 HTX and ≈ 17 THT at scale 1). The files reuse the sample
generator's layouts and writers (`plan_packs`, `make_layout`, `build_grid`, `write_files`):
official forms with title rows, two-row headers, sections, totals and signature blocks,
misleading sheet names, offset tables, unaccented headers, several files per unit, a
resubmission, and the share of formats below (`.xlsx` through xlsxwriter in memory, the
sample's fastest writer). Folder names vary as clerks write them (`unit_folder`), but only
where `coop.reference` (province `VN`) resolves the name to that one unit that year; else the
GSO code (many names repeat across provinces).

The ground truth summary (`--truth`, default `<out>/../national_truth.json`) holds the rows
that must load, per form and year, per unit and per file, and the counts of files by format;
the time the writing took goes beside it (`national_write.json`).
Deterministic: every unit's files come from streams seeded by (seed, province, year, unit), so
the bytes do not depend on `--jobs`. Provinces are written in parallel processes, the largest first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sample.generate as G  # noqa: E402  (the project root first on sys.path)

YEARS = (2023, 2024, 2025, 2026)
REFORM_YEAR = G.REFORM_YEAR
#: Files of a unit and year (the sample's packs), weights in percent. Mean ≈ 1.5 files per unit
#: and year: ≈ 12,000 files for the 8,034 unit-years of the country. `resubmission` (two files,
#: the newer one supersedes the older's HTX sheet) only up to 2025; `.ods` (odfpy, the slowest
#: writer: ≈ 2 s for a district's 300 rows) only for the smaller commune files.
PACK_WEIGHTS = {"official": 20, "official_b": 15, "separate": 15, "misleading": 8, "offset": 10,
                "noaccent_one": 10, "csv3": 5, "csv1": 5, "xls": 8, "ods": 2, "resubmission": 2}
#: Per former commune at scale 1: HTX and THT in the 2023 register (uniform between the bounds).
PER_FORMER_COMMUNE = {"HTX": (4, 8), "THT": (12, 22)}
#: New entities a year per former commune (district era) or per commune of today (commune era).
NEW_PER_FORMER = {"HTX": 0.45, "THT": 1.1}
NEW_PER_COMMUNE = {"HTX": 1.5, "THT": 3.5}


def _round(x: float, r: random.Random) -> int:
    """x rounded up or down at random (its expected value is x): fractional scales stay fair."""
    n = int(x)
    return n + (1 if r.random() < x - n else 0)


# ----------------------------------------------------------------------------- units


def provinces_of_today() -> list[str]:
    ref = G.load_ref()
    return sorted({code for code in ref.merge.values() if ref.communes_of(code)})


def _coop_reference() -> Any:
    from coop.reference import load_reference

    return load_reference(province="VN")


def province_units(province: str, max_units: int | None) -> tuple[list[str], list[str]]:
    """(districts reporting 2023-2024, communes reporting 2025-2026) of a province of today.
    With max_units: that many districts spread over the former provinces, and the communes of
    today that succeed most of their former communes."""
    ref = G.load_ref()
    areas = ref.areas_of(province)
    per_area = [[d for d in ref.districts_valid({a}, 2023) if d in ref.districts_valid({a}, 2024)] for a in areas]
    communes = ref.communes_of(province)
    if max_units is None:
        return sorted(d for ds in per_area for d in ds), communes
    districts: list[str] = []
    i = 0
    while len(districts) < max_units and any(per_area):
        pool = per_area[i % len(per_area)]
        if pool:
            districts.append(pool.pop(0))
        i += 1
    weight: Counter[str] = Counter()
    mine = set(communes)
    for d in districts:
        for c in ref.former_of(d):
            if ref.default_new.get(c) in mine:
                weight[ref.default_new[c]] += 1
    chosen = sorted(weight, key=lambda c: (-weight[c], c))[:max_units]
    chosen += [c for c in communes if c not in chosen][:max_units - len(chosen)]
    return sorted(districts), sorted(chosen)


def folder_for(unit: str, level: str, year: int) -> str:
    """The folder of a unit's files: the sample's varied spelling when `coop.reference` for the
    whole country resolves it to this unit in that year, else the unit's GSO code."""
    name = G.unit_folder(G.load_ref(), unit, level, year)
    match = _coop_reference().find_unit(name, year)
    return name if match.unit is not None and match.unit.code == unit else unit


# ----------------------------------------------------------------------------- population


class Province:
    """The cooperatives of one province of today over 2023-2026 (seeded by province and seed)."""

    def __init__(self, code: str, seed: int, scale: float, max_units: int | None):
        self.code, self.scale = code, scale
        self.ref = G.load_ref()
        self.districts, self.communes = province_units(code, max_units)
        self._mine = set(self.communes)
        self._registers: dict[int, dict[tuple[str, str], list[G.Ent]]] = {}
        self.r = random.Random(f"vn-pop-{code}-{seed}")
        self.pop = G.Population(random.Random(f"vn-ents-{code}-{seed}"), 1)
        self.used: set[tuple[str, str]] = set()        # (unit, folded name) of every THT
        self._simulate()

    def _tht_name_free(self, e: G.Ent, units: list[str | None]) -> None:
        """A THT is keyed by unit, commune and name: make its name unique in every unit it will
        report to (its district, its commune of today), where the commune cell is the same."""
        base, k = e.name, 1
        while any((u, G.fold(e.name)) in self.used for u in units if u):
            k += 1
            e.name = f"{base} {k}"
        for u in units:
            if u:
                self.used.add((u, G.fold(e.name)))

    def _new(self, etype: str, est: date, unit: str, area: str, old: str | None = None,
             today: str | None = None) -> G.Ent:
        ref = self.ref
        if old:
            place = ref.former[old]["commune_name"]
        elif today:
            place = ref.communes[today]["commune_name"]
        else:
            place = ref.unit_title(unit)
        e = self.pop.make(etype, est, unit, commune=place, words=G.PLAIN_WORDS,
                          code_prefix=G.TAX_PREFIX.get(area, f"{area}00"))
        e.home, e.area, e.old_commune = unit, area, old
        e.today = today if today else (ref.default_new.get(old) if old else None)
        if e.today not in self._mine:
            e.today = None                      # its commune of today is another province's or not kept
        if e.ocop_from is not None:
            e.ocop_from = max(e.ocop_from, est.year + 1)
        if etype == "THT":
            self._tht_name_free(e, [unit, e.today])
        return e

    def _evolve(self, year: int) -> None:
        r = self.r
        for e in [e for e in self.pop.ents if year - 1 in e.status]:
            if year == REFORM_YEAR and e.today is None:
                continue                        # not in a commune of today kept here
            s, u = e.status[year - 1], r.random()
            if s == "active":
                e.status[year] = "suspended" if u < 0.06 else "dissolved" if u < 0.08 else "active"
            elif s == "suspended":
                e.status[year] = "dissolved" if u < 0.3 else "active" if u < 0.5 else "suspended"

    def _ensure_active(self, year: int, units: list[str], area_of: Callable[[str], str],
                       where: Callable[[str], dict[str, Any]]) -> None:
        """Every unit lists at least one active HTX (its support sheet has a row) and one THT."""
        active: dict[str | None, set[str]] = defaultdict(set)
        for e in self.pop.ents:
            if e.status.get(year) == "active":
                active[e.unit(year)].add(e.etype)
        for u in units:
            for etype in ("HTX", "THT"):
                if etype not in active[u]:
                    e = self._new(etype, self.pop.rand_date(year, year), u, area_of(u), **where(u))
                    e.status[year] = "active"

    def _simulate(self) -> None:
        ref, r, k = self.ref, self.r, self.scale
        rand_date = self.pop.rand_date

        def area_d(d: str) -> str:
            return ref.districts[d]["province_code"]

        def area_c(c: str) -> str:
            return ref.communes[c]["area_code"]

        def formers(d: str) -> list[str | None]:
            """The former communes of a district (an island district the dataset lists none for: None)."""
            return list(ref.former_of(d)) or [None]

        def in_first_former(d: str) -> dict[str, Any]:
            return {"old": formers(d)[0]}

        for d in self.districts:
            for old in formers(d):
                for etype, (lo, hi) in PER_FORMER_COMMUNE.items():
                    for _ in range(_round(r.randint(lo, hi) * k, r)):
                        fresh = r.random() < 0.07
                        est = rand_date(2023, 2023) if fresh else rand_date(2008 if etype == "HTX" else 2014, 2022)
                        e = self._new(etype, est, d, area_d(d), old=old)
                        u = r.random()
                        e.status[2023] = "active" if fresh or u >= 0.1 else "suspended" if u >= 0.02 else "dissolved"
        self._ensure_active(2023, self.districts, area_d, where=in_first_former)
        for year in YEARS[1:]:
            self._evolve(year)
            if year < REFORM_YEAR:
                for d in self.districts:
                    for old in formers(d):
                        for etype, mean in NEW_PER_FORMER.items():
                            for _ in range(_round(mean * k, r)):
                                self._new(etype, rand_date(year, year), d, area_d(d), old=old).status[year] = "active"
                self._ensure_active(year, self.districts, area_d, where=in_first_former)
            else:
                succeeded = {e.today for e in self.pop.ents}   # communes of today with a predecessor's entities
                for c in self.communes:
                    for etype, mean in NEW_PER_COMMUNE.items():
                        n = _round(mean * k, r)
                        if year == REFORM_YEAR and c not in succeeded:
                            n += _round(r.randint(*PER_FORMER_COMMUNE[etype]) * k * 3, r)  # no predecessor here
                        for i in range(n):
                            est = rand_date(year, year) if i == 0 else rand_date(2012, year - 1)
                            self._new(etype, est, c, area_c(c), today=c).status[year] = "active"
                self._ensure_active(year, self.communes, area_c, where=lambda c: {"today": c})

    def register(self, etype: str, year: int, unit: str) -> list[G.Ent]:
        """The entities a unit lists in its `etype` register of `year`, in creation order."""
        if year not in self._registers:
            regs: dict[tuple[str, str], list[G.Ent]] = defaultdict(list)
            for e in self.pop.ents:                  # ents are in creation (uid) order
                if year in e.status:
                    regs[(e.etype, e.unit(year))].append(e)
            self._registers[year] = regs
        return self._registers[year].get((etype, unit), [])


# ----------------------------------------------------------------------------- files of a unit


def _values(prov: Province, e: G.Ent, year: int, level: str, unit: str, r: random.Random) -> dict[str, Any]:
    """A register row's values, as `generate_small_province` makes them (whole members, rounded money)."""
    ref = prov.ref
    v = G.row_values(e, year, e.status[year], r)
    if e.etype == "THT":
        for c in ("reg_code", "kind", "rating", "ocop_stars", "high_tech"):
            v.pop(c)
    if level == "district":
        v["commune"] = G.spell_former(ref.former[e.old_commune], r) if e.old_commune else None
    else:
        v["commune"] = ref.communes[unit]["commune_name"]
    G.round_reported(v, e.etype)
    if e.etype == "HTX" and v["status"] == "active" and e.tech > 0.9:
        v["high_tech"] = True
    return v


def support_date(established_on: date, year: int, days: int) -> date:
    """A support allocation of report year `year`: `days` after the later of the cooperative's
    founding and 1 January, never after 31 December (a later date is invalid by forms.md, rule
    date_after_report_year, and every row written here must load)."""
    return min(max(established_on, date(year, 1, 1)) + timedelta(days=days), date(year, 12, 31))


def unit_files(prov: Province, year: int, unit: str, seed: int) -> list[G.FilePlan]:
    level = "district" if year < REFORM_YEAR else "commune"
    lay = random.Random(f"vn-layout-{seed}-{year}-{unit}")
    val = random.Random(f"vn-values-{seed}-{year}-{unit}")
    packs = [p for p in PACK_WEIGHTS if (p != "resubmission" or year < 2026) and (p != "ods" or level == "commune")]
    pack = lay.choices(packs, weights=[PACK_WEIGHTS[p] for p in packs])[0]
    key = (year, unit)
    saved = G.FIXED_PACKS.get(key)
    G.FIXED_PACKS[key] = pack                  # plan_packs takes a unit's pack from this table
    try:
        files = G.plan_packs(lay, year, unit, folder_for(unit, level, year))
    finally:
        if saved is None:
            del G.FIXED_PACKS[key]
        else:
            G.FIXED_PACKS[key] = saved
    values: dict[str, list[tuple[dict[str, Any], str | None]]] = {"HTX": [], "THT": [], "HO_TRO": []}
    for etype in ("HTX", "THT"):
        for e in prov.register(etype, year, unit):
            old = e.old_commune if level == "district" else None
            values[etype].append((_values(prov, e, year, level, unit, val), old))
    dec = 100 + int(unit) % 97
    for e in [e for e in prov.register("HTX", year, unit) if e.status[year] == "active"][:2]:
        dec += val.randrange(3, 20)
        new = e.established_on.year == year
        amount = float(val.choice([30, 50, 60]))
        participants = None if new else val.randint(8, 30)
        on = support_date(e.established_on, year, val.randrange(0, 60))
        values["HO_TRO"].append(({"reg_code": e.reg_code, "htx_name": e.name,
                                  "support_type": "establishment" if new else "training", "amount": amount,
                                  "participants": participants, "decision_no": f"{dec}/QĐ-UBND",
                                  "allocated_on": on}, None))
    values["HO_TRO"].sort(key=lambda p: p[0]["allocated_on"])
    mtime = G.report_mtime(year, unit)
    default_mtime = G.FilePlan(rel="", fmt="").mtime
    for f in files:
        if f.mtime == default_mtime:
            f.mtime = mtime
        f.wr_seed = f"vn-write-{seed}-{f.rel}"  # own stream per file; xlsx written in memory
        for s in f.sheets:
            if isinstance(s, G.SheetPlan):
                s.level = level
                s.rows = [G.WRow(form=s.form, values=dict(v), old_commune=old, commune_set=True)
                          for v, old in values[s.form]]
    return files


# ----------------------------------------------------------------------------- one task: a province


def write_province(out: str, province: str, seed: int, scale: float, max_units: int | None) -> dict[str, Any]:
    """Write every file of a province of today (its population simulated once, every year);
    returns its summary."""
    prov = Province(province, seed, scale, max_units)
    files: list[G.FilePlan] = []
    units: dict[str, int] = {}
    for year in YEARS:
        yunits = prov.districts if year < REFORM_YEAR else prov.communes
        units[str(year)] = len(yunits)
        for u in yunits:
            files += unit_files(prov, year, u, seed)
    truth = G.Truth(seed=seed, scale=1, forms={f: [] for f in G.FORM_COLUMNS})
    G.write_files(Path(out), files, truth, random.Random(f"vn-write-{seed}-{province}"))
    per_file: dict[str, dict[str, int]] = {f.rel: {} for f in files}
    per_unit: dict[str, dict[str, dict[str, int]]] = {}
    for form, rows in truth.forms.items():
        for row in rows:
            pf = per_file[row["source_file"]]
            pf[form] = pf.get(form, 0) + 1
            pu = per_unit.setdefault(str(row["year"]), {}).setdefault(row["unit_code"], {})
            pu[form] = pu.get(form, 0) + 1
    return {"province": province, "units": units, "per_file": per_file, "per_unit": per_unit,
            "formats": dict(Counter(f.fmt for f in files)),
            "bytes": sum((Path(out) / f.rel).stat().st_size for f in files),
            "ignored_sheets": len(truth.ignored_sheets), "superseded": len(truth.superseded),
            "invalid_rows": len(truth.invalid_rows)}


def _task(args: tuple[Any, ...]) -> dict[str, Any]:
    return write_province(*args)


def generate(out: Path, *, seed: int = 7, scale: float = 1.0, provinces: list[str] | None = None,
             max_units: int | None = None, jobs: int | None = None) -> dict[str, Any]:
    """Write the national raw folder `out` (replaced) and return the ground-truth summary."""
    codes = provinces or provinces_of_today()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tasks = [(str(out), p, seed, scale, max_units) for p in codes]
    # the largest first (districts and communes of a province), so the pool ends together
    ref = G.load_ref()
    size = {p: len(ref.communes_of(p)) + 2 * sum(len(ref.districts_valid({a}, 2023)) for a in ref.areas_of(p))
            for p in codes}
    tasks.sort(key=lambda t: (-size[t[1]], t[1]))
    jobs = max(1, jobs or os.cpu_count() or 1)
    if jobs == 1 or len(tasks) == 1:
        parts = [_task(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            parts = list(pool.map(_task, tasks, chunksize=1))
    parts.sort(key=lambda p: p["province"])
    rows: dict[str, dict[str, int]] = {f: {str(y): 0 for y in YEARS} for f in ("HTX", "THT", "HO_TRO")}
    units: dict[str, dict[str, int]] = {}
    per_file: dict[str, dict[str, int]] = {}
    per_unit: dict[str, dict[str, dict[str, int]]] = {}
    formats: Counter[str] = Counter()
    for p in parts:
        for y, n in p["units"].items():
            units[y] = units.get(y, 0) + n
        formats.update(p["formats"])
        per_file.update(p["per_file"])
        for y, counts_of in p["per_unit"].items():
            for u, counts in counts_of.items():
                per_unit.setdefault(y, {})[u] = counts
                for form, n in counts.items():
                    rows[form][y] += n
    return {
        "seed": seed, "scale": scale, "max_units": max_units, "provinces": codes,
        "years": list(YEARS), "units": units, "files": len(per_file), "formats": dict(sorted(formats.items())),
        "bytes": sum(p["bytes"] for p in parts),
        "rows": rows, "rows_total": sum(n for f in rows.values() for n in f.values()),
        "register_rows": sum(n for f in ("HTX", "THT") for n in rows[f].values()),
        "ignored_sheets": sum(p["ignored_sheets"] for p in parts),
        "superseded_forms": sum(p["superseded"] for p in parts),
        "invalid_rows": sum(p["invalid_rows"] for p in parts),
        "per_unit": {y: dict(sorted(v.items())) for y, v in sorted(per_unit.items())},
        "per_file": dict(sorted(per_file.items())),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="raw folder to (re)write")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0, help="rows per file ×K (K may be a fraction)")
    ap.add_argument("--provinces", default="", help="comma-separated codes of today (default: all 34)")
    ap.add_argument("--max-units", type=int, default=None, help="units per province and year (default: all)")
    ap.add_argument("--jobs", type=int, default=None, help="writer processes (default: the cores)")
    ap.add_argument("--truth", type=Path, default=None, help="summary JSON (default: <out>/../national_truth.json)")
    args = ap.parse_args(argv)
    codes = [c.strip().zfill(2) for c in args.provinces.split(",") if c.strip()] or None
    t0 = time.perf_counter()
    summary = generate(args.out, seed=args.seed, scale=args.scale, provinces=codes, max_units=args.max_units,
                       jobs=args.jobs)
    wall = time.perf_counter() - t0
    cpu = sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))
    truth = args.truth or args.out.parent / "national_truth.json"
    truth.parent.mkdir(parents=True, exist_ok=True)
    truth.write_text(json.dumps(summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    # the time taken beside it (the summary itself stays the same from run to run)
    jobs = max(1, args.jobs or os.cpu_count() or 1)
    (truth.parent / "national_write.json").write_text(json.dumps(
        {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "jobs": jobs, "cores": os.cpu_count(),
         "load": round(os.getloadavg()[0], 1), "files": summary["files"], "rows": summary["rows_total"]}) + "\n",
        encoding="utf-8")
    rows = summary["rows"]
    print(f"{len(summary['provinces'])} provinces, units {summary['units']}, {summary['files']:,} files "
          f"({summary['bytes'] / 2**20:.1f} MiB; {summary['formats']}), rows "
          + ", ".join(f"{f} {sum(v.values()):,}" for f, v in rows.items())
          + f" = {summary['rows_total']:,}; written in {wall:.1f} s wall, {cpu:.1f} CPU-s; truth: {truth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
