"""Reference data of the input contract, loaded from `schemas/reference/` (data, not code).

Units (extracted from the pinned `vietnamadminunits` dataset by `scripts/extract_units.py`;
see `schemas/reference/README.md`):
- `provinces.csv`: the 63 former provinces (era `former`, until 30/06/2025) and the 34 of
  today (era `current`, since 01/07/2025); `province_merge.csv`: former -> current.
- `districts.csv`: district-level units of the former provinces with validity
  (`valid_from` inclusive, `valid_to` exclusive; empty = open); every one ends 2025-07-01.
  Changes the dataset lacks (Kỳ Sơn 151 -> Hòa Bình city, 2020-01-01) come from the
  hand-kept `unit_history.csv`.
- `communes.csv`: the communes of today with their former province (`area_code`);
  `former_communes.csv` and `commune_lineage.csv` (loaded into the warehouse, not here).
`vocabularies.toml`: per vocabulary, code -> accepted spellings; the first spelling is the
official label. Also the province folder names.

The province served is a setting (`coop.settings`): `load_reference(province="25")` keeps
the units of today's Phú Thọ and of its predecessors (17 Hòa Bình, 25 Phú Thọ, 26 Vĩnh
Phúc); `"VN"` keeps every unit. A report year up to 2024 is reported by districts valid on
31 December of that year, a year from 2025 by communes (`units.md`).
"""

from __future__ import annotations

import csv
import functools
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

from coop.text import UNIT_PREFIXES, category_key, clean_text, district_key, fold, unit_key

__all__ = ["REFERENCE_DIR", "REFORM_YEAR", "Unit", "District", "UnitMatch", "Vocabulary", "Reference",
           "load_reference", "ReferenceError_", "COUNTRY"]

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "schemas" / "reference"
VOCABULARY_NAMES = ("sector", "status", "support_type", "kind", "rating", "plan_code")
REFORM_YEAR = 2025  # first report year of commune-level reporting (two-tier government from 01/07/2025)
COUNTRY = "VN"
_COUNTRY_NAMES = {"vn", "vietnam", "all", "country", "canuoc", "toanquoc"}

Level = Literal["district", "commune"]


class ReferenceError_(Exception):
    """The reference files are missing or inconsistent, or the province setting is unknown."""


@dataclass(frozen=True)
class Unit:
    """A reporting unit: a district-level unit (report years up to 2024) or a commune-level
    unit of today (from 2025). `province_code` is the province the unit belonged to while
    valid; `area_code` its former province (the same as province_code for a district)."""

    code: str
    name: str
    province_code: str
    valid_from: date | None = None
    valid_to: date | None = None  # exclusive
    level: Level = "district"
    kind: str = ""  # Huyện, Thành phố, Thị xã, Quận | Xã, Phường, Đặc khu
    area_code: str = ""
    short_name: str = ""
    lineage_district_code: str = ""  # district under which the dataset lists its former communes

    def __post_init__(self) -> None:
        if not self.area_code:
            object.__setattr__(self, "area_code", self.province_code)
        if not self.short_name:
            object.__setattr__(self, "short_name", self.name)
        if not self.lineage_district_code and self.level == "district":
            object.__setattr__(self, "lineage_district_code", self.code)

    @property
    def full_name(self) -> str:
        """'Huyện Lạc Sơn', 'Thành phố Hòa Bình', 'Xã Lạc Sơn'."""
        if self.kind and not fold(self.name).startswith(fold(self.kind)):
            return f"{self.kind} {self.name}"
        return self.name

    @property
    def level_label(self) -> str:
        return "huyện" if self.level == "district" else "xã"

    def valid_in(self, year: int) -> bool:
        """True when the unit exists on 31 December of `year`.

        A report year is a snapshot as of 31 December, so the unit must exist on that day:
        valid_from <= 31/12/year < valid_to. Kỳ Sơn (valid_to 2020-01-01) is valid in 2019
        (31/12/2019 < 01/01/2020) and not in 2020 or later; every district ends 2025-07-01.
        """
        end = date(year, 12, 31)
        if self.valid_from is not None and self.valid_from > end:
            return False
        if self.valid_to is not None and self.valid_to <= end:
            return False
        return True


District = Unit  # the district-era name, kept for callers that only deal with districts


@dataclass(frozen=True)
class UnitMatch:
    """What a folder name means in a report year: the unit, or why none (reason_code and a
    Vietnamese message), with the candidates of an ambiguous name."""

    unit: Unit | None
    reason_code: str | None = None
    message: str | None = None
    candidates: tuple[Unit, ...] = ()

    @property
    def ok(self) -> bool:
        return self.unit is not None


@dataclass(frozen=True)
class Vocabulary:
    name: str
    codes: list[str]
    labels: dict[str, str]  # code -> official Vietnamese label (first accepted spelling)
    spellings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # code -> accepted spellings
    _index: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, name: str, entries: dict[str, list[str]]) -> Vocabulary:
        index: dict[str, str] = {}
        for code, spellings in entries.items():
            if not spellings:
                raise ReferenceError_(f"vocabulary {name}: code {code!r} has no spelling")
            for s in [*spellings, code]:
                key = category_key(s)
                other = index.get(key)
                if other is not None and other != code:
                    raise ReferenceError_(f"vocabulary {name}: {s!r} is both {other!r} and {code!r}")
                index[key] = code
        return cls(
            name=name,
            codes=list(entries),
            labels={c: clean_text(v[0]) for c, v in entries.items()},
            spellings={c: tuple(clean_text(s) for s in v) for c, v in entries.items()},
            _index=index,
        )

    def match(self, text: str) -> str | None:
        """The code of an accepted spelling (or of the code itself), ignoring case,
        diacritics and spaces around '-', ',', '/'; None when unknown."""
        if text is None:
            return None
        return self._index.get(category_key(str(text)))

    def accepted(self) -> str:
        """The accepted official labels, for messages: 'Tốt, Khá, Trung bình, Yếu'."""
        return ", ".join(self.labels[c] for c in self.codes)


@dataclass(frozen=True)
class Reference:
    districts: list[Unit]
    vocabularies: dict[str, Vocabulary]
    province_code: str = ""  # today's province served ('25'), or 'VN' for the whole country
    province_name: str = ""
    province_folder_names: tuple[str, ...] = ("province", "tinh", "tỉnh")
    communes: list[Unit] = field(default_factory=list)  # communes of today (report years >= 2025)
    areas: dict[str, str] = field(default_factory=dict)  # former province code -> name (served)
    provinces: dict[str, str] = field(default_factory=dict)  # today's province code -> name (served)
    merge: dict[str, str] = field(default_factory=dict)  # former province code -> today's province code
    directory: Path = REFERENCE_DIR
    _index: dict[str, tuple[Unit, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, list[Unit]] = {}
        for u in self.units:
            for key in {unit_key(u.name), unit_key(u.short_name), unit_key(u.full_name)}:
                if key:
                    index.setdefault(key, []).append(u)
        object.__setattr__(self, "_index", {k: tuple(v) for k, v in index.items()})

    # ------------------------------------------------------------------ units
    @property
    def units(self) -> list[Unit]:
        return [*self.districts, *self.communes]

    @property
    def is_country(self) -> bool:
        return self.province_code == COUNTRY

    def vocab(self, name: str) -> Vocabulary:
        try:
            return self.vocabularies[name]
        except KeyError:
            raise KeyError(f"unknown vocabulary {name!r}; known: {sorted(self.vocabularies)}") from None

    def unit_by_code(self, code: str) -> Unit | None:
        code = str(code).strip()
        if not code.isdigit():
            return None
        code = code.zfill(3) if len(code) <= 3 else code.zfill(5)
        return next((u for u in self.units if u.code == code), None)

    def district_by_code(self, code: str) -> Unit | None:
        u = self.unit_by_code(code)
        return u if u is not None and u.level == "district" else None

    def _candidates(self, folder_name: str) -> tuple[list[Unit], Level | None]:
        """Units a folder name may mean (any year) and the level its prefix names."""
        raw = clean_text(str(folder_name))
        if raw.isdigit():
            u = self.unit_by_code(raw)
            return ([u] if u else []), None
        key = unit_key(raw)
        if not key:
            return [], None
        found = list(self._index.get(key, ()))
        level: Level | None = None
        if found:  # a full name ('Huyện Lạc Sơn', 'Xã Lạc Sơn') names its level
            levels = {u.level for u in found if unit_key(u.full_name) == key and unit_key(u.short_name) != key}
            if len(levels) == 1:
                level = levels.pop()
                found = [u for u in found if u.level == level]
            return found, level
        for prefix, lvl in UNIT_PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                rest = [u for u in self._index.get(key[len(prefix):], ()) if u.level == lvl]
                if rest:
                    return rest, lvl
        return [], None

    def find_unit(self, folder_name: str, year: int) -> UnitMatch:
        """The reporting unit a `<year>/<folder>` folder names (units.md "Which unit reports
        which year"): by GSO code or name, ignoring case, diacritics, tone-mark placement,
        spaces, '-', '_', '.', and the prefixes huyện/thành phố/tp/thị xã/quận (district) and
        xã/phường/đặc khu (commune). A prefix names the level; a bare name or code means the
        unit valid that year. Reason codes: unknown_district (up to 2024) / unknown_commune,
        ambiguous_unit, district_after_reform, commune_before_reform,
        district_not_valid_for_year."""
        folder = clean_text(str(folder_name))
        candidates, level = self._candidates(folder)
        valid = [u for u in candidates if u.valid_in(year)]
        if len(valid) > 1:  # folding made them equal: a name written with its diacritics decides
            exact = clean_text(folder).lower()
            same = [u for u in valid if exact in {u.name.lower(), u.short_name.lower(), u.full_name.lower()}]
            valid = same if len(same) == 1 else valid
        if len(valid) == 1:
            return UnitMatch(valid[0])
        if len(valid) > 1:
            listed = "; ".join(f"{u.code} {u.full_name} ({self.area_label(u)})" for u in valid)
            return UnitMatch(None, "ambiguous_unit",
                             f"Tên thư mục '{folder}' ứng với nhiều đơn vị năm {year}: {listed}. "
                             f"Hãy đặt tên thư mục theo mã đơn vị (ví dụ {valid[0].code})", tuple(valid))
        if not candidates:
            if year >= REFORM_YEAR:
                return UnitMatch(None, "unknown_commune",
                                 f"Không nhận ra xã/phường '{folder}' của tỉnh {self.province_name} "
                                 f"(từ năm {REFORM_YEAR} báo cáo do xã, phường gửi; ghi tên hoặc mã xã, ví dụ "
                                 f"{self._example(year)})")
            return UnitMatch(None, "unknown_district",
                             f"Không nhận ra huyện/thành phố '{folder}' (ghi tên hoặc mã huyện, ví dụ "
                             f"{self._example(year)})")
        u = candidates[0]
        if year >= REFORM_YEAR and all(c.level == "district" for c in candidates):
            return UnitMatch(None, "district_after_reform",
                             f"'{folder}' là đơn vị cấp huyện ({u.code} {u.full_name}); từ ngày 01/07/2025 không "
                             f"còn cấp huyện, báo cáo năm {year} do xã, phường gửi: đặt tệp vào thư mục của xã "
                             f"(ví dụ {year}/{self._example_code(year)}/)", tuple(candidates))
        if year < REFORM_YEAR and all(c.level == "commune" for c in candidates):
            return UnitMatch(None, "commune_before_reform",
                             f"'{folder}' là xã, phường mới ({u.code} {u.full_name}, từ 01/07/2025); báo cáo năm "
                             f"{year} (trước sắp xếp đơn vị hành chính 2025) do huyện gửi: đặt tệp vào thư mục "
                             f"của huyện", tuple(candidates))
        until = f" (không còn từ ngày {u.valid_to:%d/%m/%Y})" if u.valid_to else ""
        since = f" (từ {u.valid_from:%d/%m/%Y})" if u.valid_from and u.valid_from.year > year else ""
        return UnitMatch(None, "district_not_valid_for_year",
                         f"Đơn vị '{u.name}' ({u.code}) không tồn tại vào năm {year}{until}{since}",
                         tuple(candidates))

    def _example(self, year: int) -> str:
        units = self.units_expected(year)
        return f"{units[0].short_name} hoặc {units[0].code}" if units else "mã đơn vị"

    def _example_code(self, year: int) -> str:
        units = self.units_expected(year)
        return units[0].code if units else "<mã>"

    def find_district(self, folder_name: str) -> Unit | None:
        """The district-level unit a folder names, whatever the year (None when unknown or
        ambiguous). For a report year use `find_unit`."""
        if folder_name is None:
            return None
        found = [u for u in self._candidates(folder_name)[0] if u.level == "district"]
        return found[0] if len(found) == 1 else None

    def is_province_folder(self, name: str) -> bool:
        key = district_key(name)
        return bool(key) and key in {district_key(n) for n in self.province_folder_names}

    def districts_valid_in(self, year: int) -> list[Unit]:
        return [d for d in self.districts if d.valid_in(year)]

    def units_expected(self, year: int) -> list[Unit]:
        """The units that report year `year`: districts valid on 31/12 up to 2024, today's
        communes from 2025 (units.md)."""
        pool = self.communes if year >= REFORM_YEAR else self.districts
        return [u for u in pool if u.valid_in(year)]

    def area_label(self, unit: Unit) -> str:
        """'tỉnh Hòa Bình cũ' for a commune's former province, 'tỉnh Hòa Bình' for a district."""
        name = self.areas.get(unit.area_code, unit.area_code)
        return f"tỉnh {name} cũ" if unit.level == "commune" else f"tỉnh {name}"

    def area_name(self, code: str) -> str:
        return self.areas.get(code, code)

    def unit_title(self, unit: Unit | None) -> str:
        """Heading of a unit's workbook: 'UBND HUYỆN LẠC SƠN', 'UBND XÃ LẠC SƠN',
        'UBND THÀNH PHỐ HÒA BÌNH'; the province folder: 'UBND TỈNH …'."""
        if unit is None:
            return f"UBND TỈNH {self.province_name}".upper()
        return f"UBND {unit.full_name}".upper()


def _date_or_none(text: str | None, where: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReferenceError_(f"{where}: not an ISO date: {text!r}") from None


def _rows(path: Path) -> list[tuple[str, dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [(f"{path.name} line {i}", row) for i, row in enumerate(csv.DictReader(fh), start=2)]


_DISTRICT_KINDS = ("Thành phố", "Thị xã", "Quận", "Huyện")


def _split_kind(name: str, kind: str) -> tuple[str, str]:
    """(kind, short name) of a district name: 'Thành phố Hòa Bình' -> ('Thành phố', 'Hòa Bình');
    'Lạc Sơn' with kind 'Huyện' stays 'Lạc Sơn'; 'Quận 1' keeps its number with the kind."""
    for k in ([kind] if kind else list(_DISTRICT_KINDS)):
        if k and name.lower().startswith(k.lower() + " "):
            rest = name[len(k) + 1:].strip()
            return k, (name if rest.isdigit() else rest)
    return kind, name


def _load_districts(path: Path, successors: dict[str, str]) -> list[Unit]:
    out: list[Unit] = []
    for where, row in _rows(path):
        code = (row.get("district_code") or "").strip()
        name = clean_text(row.get("district_name") or "")
        if not code or not name:
            raise ReferenceError_(f"{where}: district_code and district_name are required")
        kind, short = _split_kind(name, clean_text(row.get("district_type") or ""))
        out.append(Unit(
            code=code, name=name, province_code=(row.get("province_code") or "").strip(),
            valid_from=_date_or_none(row.get("valid_from"), where),
            valid_to=_date_or_none(row.get("valid_to"), where),
            level="district", kind=kind, short_name=short,
            lineage_district_code=successors.get(code, code),
        ))
    codes = [d.code for d in out]
    if len(set(codes)) != len(codes):
        raise ReferenceError_(f"{path.name}: duplicate district_code")
    return sorted(out, key=lambda d: d.code)


def _load_communes(path: Path) -> list[Unit]:
    out: list[Unit] = []
    for where, row in _rows(path):
        code = (row.get("commune_code") or "").strip()
        name = clean_text(row.get("commune_name") or "")
        if not code or not name:
            raise ReferenceError_(f"{where}: commune_code and commune_name are required")
        out.append(Unit(
            code=code, name=name, province_code=(row.get("province_code") or "").strip(),
            valid_from=_date_or_none(row.get("valid_from"), where),
            valid_to=_date_or_none(row.get("valid_to"), where),
            level="commune", kind=clean_text(row.get("commune_type") or ""),
            area_code=(row.get("area_code") or "").strip(),
            short_name=clean_text(row.get("commune_short") or name),
        ))
    return sorted(out, key=lambda u: u.code)


def _resolve_province(setting: str, current: dict[str, str], former: dict[str, str],
                      merge: dict[str, str]) -> str:
    """Today's province code for a setting (code or name), or COUNTRY."""
    text = clean_text(setting)
    key = unit_key(text)
    if key in _COUNTRY_NAMES:
        return COUNTRY
    if text.isdigit() and text.zfill(2) in current:
        return text.zfill(2)
    for code, name in current.items():
        if key in {unit_key(name), unit_key("tinh " + name), unit_key("thanh pho " + name)}:
            return code
    for code, name in former.items():
        if (text.isdigit() and text.zfill(2) == code) or key in {unit_key(name), unit_key("tinh " + name)}:
            new = merge.get(code, "")
            raise ReferenceError_(
                f"province setting {setting!r}: {name} ({code}) is since 1 July 2025 part of "
                f"{current.get(new, new)} ({new}); set province = \"{new}\" (its history is served from there)")
    known = ", ".join(f"{c} {n}" for c, n in sorted(current.items()))
    raise ReferenceError_(f"province setting {setting!r} is not one of the 34 provinces ({known}) nor 'VN'")


@functools.lru_cache(maxsize=16)
def _load(directory: Path, province: str | None) -> Reference:
    dpath = directory / "districts.csv"
    vpath = directory / "vocabularies.toml"
    if not dpath.exists() or not vpath.exists():
        raise ReferenceError_(f"reference files missing in {directory} (districts.csv, vocabularies.toml)")
    with vpath.open("rb") as fh:
        data = tomllib.load(fh)
    vocabs = {name: Vocabulary.build(name, entries) for name, entries in (data.get("vocab") or {}).items()}
    missing = [n for n in VOCABULARY_NAMES if n not in vocabs]
    if missing:
        raise ReferenceError_(f"{vpath.name}: missing vocabularies {missing}")
    prov = data.get("province") or {}
    folder_names = tuple(prov.get("folder_names") or ("province", "tinh", "tỉnh"))
    successors: dict[str, str] = {}
    hpath = directory / "unit_history.csv"
    if hpath.exists():
        successors = {r["unit_code"].strip(): r["successor_code"].strip()
                      for _w, r in _rows(hpath) if (r.get("successor_code") or "").strip()}
    districts = _load_districts(dpath, successors)
    ppath = directory / "provinces.csv"
    if not ppath.exists():
        # a reference folder of districts only (one province, district-era reporting)
        return Reference(districts=districts, vocabularies=vocabs, province_code=str(prov.get("code", "")),
                         province_name=str(prov.get("name", "")), province_folder_names=folder_names,
                         directory=directory)
    current = {r["province_code"]: clean_text(r["province_name"]) for _w, r in _rows(ppath) if r["era"] == "current"}
    former = {r["province_code"]: clean_text(r["province_name"]) for _w, r in _rows(ppath) if r["era"] == "former"}
    merge = {r["former_province_code"]: r["current_province_code"]
             for _w, r in _rows(directory / "province_merge.csv")}
    from coop.settings import load_settings

    code = _resolve_province(province or load_settings().province, current, former, merge)
    served = set(current) if code == COUNTRY else {code}
    areas = {f: former[f] for f, c in merge.items() if c in served}
    communes = [u for u in _load_communes(directory / "communes.csv") if u.province_code in served]
    return Reference(
        districts=[d for d in districts if d.province_code in areas],
        vocabularies=vocabs,
        province_code=code,
        province_name="Việt Nam" if code == COUNTRY else current[code],
        province_folder_names=folder_names,
        communes=communes,
        areas=dict(sorted(areas.items())),
        provinces={c: current[c] for c in sorted(served)},
        merge={f: c for f, c in merge.items() if c in served},
        directory=directory,
    )


def load_reference(directory: Path = REFERENCE_DIR, province: str | None = None) -> Reference:
    """The reference of `directory` for today's province `province` (GSO code or name, 'VN'
    for the whole country; default: the `province` setting). Cached per directory and
    setting."""
    if province is None:
        from coop.settings import load_settings

        province = load_settings().province
    return _load(Path(directory).resolve(), str(province))
