"""Reference data of the input contract, loaded from `schemas/reference/` (data, not code).

- `districts.csv`: district-level units with GSO code, province and validity
  (`valid_from` inclusive, `valid_to` exclusive; empty = open).
- `vocabularies.toml`: per vocabulary, code -> accepted spellings; the first spelling is
  the official label. Also the province (code, name, folder names of the province folder).

Another province is a change of these two files only.
"""

from __future__ import annotations

import csv
import functools
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from coop.text import category_key, clean_text, district_key, fold

__all__ = ["REFERENCE_DIR", "District", "Vocabulary", "Reference", "load_reference", "ReferenceError_"]

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "schemas" / "reference"
_COMPACT_PREFIXES = ("thanhpho", "thixa", "huyen", "tp", "tx")
VOCABULARY_NAMES = ("sector", "status", "support_type", "kind", "rating", "plan_code")


class ReferenceError_(Exception):
    """The reference files are missing or inconsistent."""


@dataclass(frozen=True)
class District:
    code: str
    name: str
    province_code: str
    valid_from: date | None = None
    valid_to: date | None = None  # exclusive

    def valid_in(self, year: int) -> bool:
        """True when the unit exists on 31 December of `year`.

        A report year is a snapshot as of 31 December, so the unit must exist on that day:
        valid_from <= 31/12/year < valid_to. Kỳ Sơn (valid_to 2020-01-01) is valid in 2019
        (31/12/2019 < 01/01/2020) and not in 2020 or later.
        """
        end = date(year, 12, 31)
        if self.valid_from is not None and self.valid_from > end:
            return False
        if self.valid_to is not None and self.valid_to <= end:
            return False
        return True


@dataclass(frozen=True)
class Vocabulary:
    name: str
    codes: list[str]
    labels: dict[str, str]  # code -> official Vietnamese label (first accepted spelling)
    spellings: dict[str, tuple[str, ...]] = field(default_factory=dict)  # code -> accepted spellings
    _index: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, name: str, entries: dict[str, list[str]]) -> "Vocabulary":
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
    districts: list[District]
    vocabularies: dict[str, Vocabulary]
    province_code: str = ""
    province_name: str = ""
    province_folder_names: tuple[str, ...] = ("province", "tinh", "tỉnh")

    def vocab(self, name: str) -> Vocabulary:
        try:
            return self.vocabularies[name]
        except KeyError:
            raise KeyError(f"unknown vocabulary {name!r}; known: {sorted(self.vocabularies)}") from None

    def district_by_code(self, code: str) -> District | None:
        code = str(code).strip()
        return next((d for d in self.districts if d.code == code), None)

    def find_district(self, folder_name: str) -> District | None:
        """District by GSO code or name, ignoring case, diacritics, tone-mark placement,
        spaces, '-', '_', '.', and the prefixes huyện / thành phố / tp / thị xã."""
        if folder_name is None:
            return None
        raw = clean_text(str(folder_name))
        if raw.isdigit():
            return self.district_by_code(raw) or self.district_by_code(raw.zfill(3))
        key = district_key(raw)
        if not key:
            return None
        for d in self.districts:
            if district_key(d.name) == key:
                return d
        # written without a separator after the prefix: "TPHoaBinh", "HuyenLacSon"
        for prefix in _COMPACT_PREFIXES:
            if key.startswith(prefix) and len(key) > len(prefix):
                rest = key[len(prefix):]
                for d in self.districts:
                    if district_key(d.name) == rest:
                        return d
        return None

    def is_province_folder(self, name: str) -> bool:
        key = district_key(name)
        return bool(key) and key in {district_key(n) for n in self.province_folder_names}

    def districts_valid_in(self, year: int) -> list[District]:
        return [d for d in self.districts if d.valid_in(year)]


def _date_or_none(text: str | None, where: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReferenceError_(f"{where}: not an ISO date: {text!r}") from None


def _load_districts(path: Path) -> list[District]:
    out: list[District] = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            where = f"{path.name} line {i}"
            code = (row.get("district_code") or "").strip()
            name = clean_text(row.get("district_name") or "")
            if not code or not name:
                raise ReferenceError_(f"{where}: district_code and district_name are required")
            out.append(
                District(
                    code=code,
                    name=name,
                    province_code=(row.get("province_code") or "").strip(),
                    valid_from=_date_or_none(row.get("valid_from"), where),
                    valid_to=_date_or_none(row.get("valid_to"), where),
                )
            )
    codes = [d.code for d in out]
    if len(set(codes)) != len(codes):
        raise ReferenceError_(f"{path.name}: duplicate district_code")
    keys = [district_key(d.name) for d in out]
    if len(set(keys)) != len(keys):
        raise ReferenceError_(f"{path.name}: two districts with the same folded name")
    return sorted(out, key=lambda d: d.code)


@functools.lru_cache(maxsize=8)
def _load(directory: Path) -> Reference:
    dpath = directory / "districts.csv"
    vpath = directory / "vocabularies.toml"
    if not dpath.exists() or not vpath.exists():
        raise ReferenceError_(f"reference files missing in {directory} (districts.csv, vocabularies.toml)")
    districts = _load_districts(dpath)
    with vpath.open("rb") as fh:
        data = tomllib.load(fh)
    vocabs = {name: Vocabulary.build(name, entries) for name, entries in (data.get("vocab") or {}).items()}
    missing = [n for n in VOCABULARY_NAMES if n not in vocabs]
    if missing:
        raise ReferenceError_(f"{vpath.name}: missing vocabularies {missing}")
    prov = data.get("province") or {}
    return Reference(
        districts=districts,
        vocabularies=vocabs,
        province_code=str(prov.get("code", "")),
        province_name=str(prov.get("name", "")),
        province_folder_names=tuple(prov.get("folder_names") or ("province", "tinh", "tỉnh")),
    )


def load_reference(directory: Path = REFERENCE_DIR) -> Reference:
    """The reference of `directory` (cached per resolved directory)."""
    return _load(Path(directory).resolve())
