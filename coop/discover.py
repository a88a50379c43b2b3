"""Discovery: walk `data/raw/<year>/<district>/<file>` -> `RawFile`s and file-level issues.

Rules (forms.md "Where files go", reason codes of docs/architecture.md):
- `<year>` is four digits; any other top-level folder -> `invalid_year_folder` (each file in it).
- `<unit>` is matched with `Reference.find_unit(folder, year)` (code or name; districts up
  to 2024, today's communes from 2025, units.md) or is the province folder (`province`,
  `tinh`, `tỉnh`); else the match's reason: `unknown_district` / `unknown_commune`,
  `ambiguous_unit` (candidates listed), `district_after_reform` (a district folder from
  2025), `commune_before_reform` (a commune of today before 2025),
  `district_not_valid_for_year` (Kỳ Sơn after 2019).
- Files not exactly at `<year>/<district>/<file>` -> `misplaced_file`.
- Extensions .xlsx .xlsm .xls .ods .csv (any case) are read; others -> `unsupported_file_type`.
- A file that cannot even be stat'ed (broken link) -> `unreadable_file`.
- Hidden and temporary files and folders (`.*`, `~$*`, `.gitkeep`, `Thumbs.db`,
  `desktop.ini`) are skipped silently.
Every issue has severity "rejected". Output is sorted by source_file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from coop.reference import Reference, Unit, UnitMatch

__all__ = ["RawFile", "FileIssue", "discover", "SUPPORTED_EXTENSIONS", "is_skipped_name", "file_issue"]

SUPPORTED_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".csv")
_SKIPPED_NAMES = {"thumbs.db", "desktop.ini", ".ds_store", ".gitkeep"}
_YEAR = re.compile(r"^\d{4}$")
MIN_YEAR, MAX_YEAR = 1990, 2100

Severity = Literal["rejected", "ignored", "superseded"]


@dataclass(frozen=True)
class FileIssue:
    source_file: str  # relative POSIX path under the raw folder
    sheet: str | None  # None = the whole file
    reason_code: str
    reason: str  # Vietnamese sentence ending with " [reason_code]"
    severity: Severity = "rejected"


@dataclass(frozen=True)
class RawFile:
    path: Path
    source_file: str  # relative POSIX path under the raw folder
    year: int
    unit: Unit | None  # the reporting unit (district or commune); None = province folder
    size: int
    modified_at: datetime  # UTC, from mtime

    @property
    def unit_code(self) -> str | None:
        return self.unit.code if self.unit is not None else None

    @property
    def district(self) -> Unit | None:
        """The reporting unit (named for the district era; a commune from 2025)."""
        return self.unit

    @property
    def is_province(self) -> bool:
        return self.unit is None


def file_issue(source_file: str, reason_code: str, message: str, *, sheet: str | None = None,
               severity: Severity = "rejected") -> FileIssue:
    """A FileIssue whose reason is the Vietnamese `message` followed by ' [reason_code]'."""
    return FileIssue(source_file, sheet, reason_code, f"{message} [{reason_code}]", severity)


def is_skipped_name(name: str) -> bool:
    """Hidden/temporary names that discovery ignores silently."""
    return name.startswith(".") or name.startswith("~$") or name.lower() in _SKIPPED_NAMES


def _walk(root: Path):
    """Every regular file under root (not following symlinked folders), skipping hidden names."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not is_skipped_name(d))
        for name in sorted(filenames):
            if not is_skipped_name(name):
                yield Path(dirpath) / name


def discover(raw_root: Path, reference: Reference,
             years: tuple[int, int] | None = None) -> tuple[list[RawFile], list[FileIssue]]:
    """Files to read and file-level issues under `raw_root`. `years` = (first, last) inclusive
    keeps only those year folders (files of other years are neither listed nor reported;
    problems outside any year folder are always reported)."""
    raw_root = Path(raw_root)
    files: list[RawFile] = []
    issues: list[FileIssue] = []
    if not raw_root.is_dir():
        return files, issues
    unit_cache: dict[tuple[str, int], UnitMatch | None] = {}

    for path in _walk(raw_root):
        rel = path.relative_to(raw_root)
        source = rel.as_posix()
        parts = rel.parts
        year_text = parts[0] if len(parts) > 1 else None
        year_ok = year_text is not None and _YEAR.match(year_text) and MIN_YEAR <= int(year_text) <= MAX_YEAR
        if year_ok and years is not None and not (years[0] <= int(year_text) <= years[1]):
            continue
        if len(parts) > 1 and not year_ok:
            issues.append(file_issue(
                source, "invalid_year_folder",
                f"Thư mục '{parts[0]}' không phải là năm báo cáo (4 chữ số, ví dụ 2020); "
                f"tệp phải nằm trong <năm>/<huyện>/"))
            continue
        if len(parts) != 3:
            issues.append(file_issue(
                source, "misplaced_file",
                "Tệp không nằm đúng chỗ: phải đặt trong thư mục <năm>/<huyện>/ "
                "(ví dụ 2020/lac-son/) hoặc <năm>/province/"))
            continue
        year = int(year_text)
        folder = parts[1]
        if (folder, year) not in unit_cache:
            unit_cache[(folder, year)] = (None if reference.is_province_folder(folder)
                                          else reference.find_unit(folder, year))
        match = unit_cache[(folder, year)]
        if match is not None and not match.ok:
            issues.append(file_issue(source, match.reason_code or "unknown_district", match.message or folder))
            continue
        unit = match.unit if match is not None else None
        if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
            issues.append(file_issue(
                source, "unsupported_file_type",
                f"Loại tệp '{path.suffix or '(không có đuôi)'}' không được hỗ trợ; "
                f"chỉ nhận {', '.join(SUPPORTED_EXTENSIONS)}"))
            continue
        try:
            st = path.stat()
        except OSError as exc:  # broken link, file removed meanwhile, no permission
            issues.append(file_issue(source, "unreadable_file",
                                     f"Không đọc được tệp ({type(exc).__name__}: {exc.strerror or exc})"))
            continue
        files.append(RawFile(
            path=path,
            source_file=source,
            year=year,
            unit=unit,
            size=st.st_size,
            modified_at=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
        ))

    files.sort(key=lambda f: f.source_file)
    issues.sort(key=lambda i: (i.source_file, i.reason_code))
    return files, issues
