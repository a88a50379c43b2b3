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
- A file that cannot even be stat'ed (broken link, no permission on its folder) and a folder
  that cannot be listed -> `unreadable_file`.
- Paths stay inside the raw folder: a symbolic link (file or folder) whose target lies outside
  it -> `outside_raw_folder`; a link that points back into it (a link loop) -> `symlink_loop`;
  a symlinked folder whose target is inside the raw folder is not followed (its files would be
  read twice) -> `symlinked_folder`. A symlinked *file* inside the raw folder is read.
- A file or folder name that is not valid UTF-8 (what `unzip` leaves from a zip made on
  Windows) -> `invalid_file_name`, with the name shown with `\\xNN` escapes for the bytes
  that are not UTF-8; the file is not read (its name cannot be stored or shown).
- Hidden and temporary files and folders (`.*`, `~$*`, `.gitkeep`, `Thumbs.db`,
  `desktop.ini`) are skipped silently.
Every issue has severity "rejected". Output is sorted by source_file.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from coop.reference import Reference, Unit, UnitMatch

__all__ = ["RawFile", "FileIssue", "discover", "SUPPORTED_EXTENSIONS", "is_skipped_name", "file_issue",
           "display_name"]

SUPPORTED_EXTENSIONS = (".xlsx", ".xlsm", ".xls", ".ods", ".csv")
_SKIPPED_NAMES = {"thumbs.db", "desktop.ini", ".ds_store", ".gitkeep"}
_YEAR = re.compile(r"^\d{4}$")
MIN_YEAR, MAX_YEAR = 1990, 2100

Severity = Literal["rejected", "ignored", "superseded"]
WalkKind = Literal["file", "dirlink", "unlisted"]


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


def _walk(root: Path) -> Iterator[tuple[Path, WalkKind, OSError | None]]:
    """(path, kind) for everything under root, skipping hidden names: kind "file" for each
    file (or link that is not a folder), "dirlink" for a symlinked folder (not followed),
    "unlisted" for a folder that cannot be read (with the error as a third item)."""
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=errors.append):
        while errors:
            e = errors.pop()
            if e.filename is not None:
                yield Path(os.fsdecode(e.filename)), "unlisted", e
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames if not is_skipped_name(d) and d not in links)
        for name in sorted(links):
            if not is_skipped_name(name):
                yield Path(dirpath) / name, "dirlink", None
        for name in sorted(filenames):
            if not is_skipped_name(name):
                yield Path(dirpath) / name, "file", None
    for e in errors:
        if e.filename is not None:
            yield Path(os.fsdecode(e.filename)), "unlisted", e


def display_name(source: str) -> str:
    """`source` as text that can be stored and shown: bytes that are not UTF-8 (kept by
    Python as surrogate escapes) become `\\xNN`."""
    try:
        source.encode("utf-8")
        return source
    except UnicodeEncodeError:
        return os.fsencode(source).decode("utf-8", "backslashreplace")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _link_issue(path: Path, source: str, root_real: str, folder: bool) -> FileIssue | None:
    """The issue of a symbolic link that leaves the raw folder or loops; None when it may be read."""
    what = "Thư mục" if folder else "Tệp"
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        real = os.path.realpath(path, strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: how some Pythons report a loop
        if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP:
            return file_issue(source, "symlink_loop",
                              f"{what} là liên kết (symlink) vòng lặp, trỏ về chính nó ('{display_name(target)}'); "
                              "thay bằng tệp thật")
        return None  # a broken link: reported by the stat below
    if not _inside(real, root_real):
        return file_issue(source, "outside_raw_folder",
                          f"{what} là liên kết (symlink) tới '{display_name(real)}', nằm ngoài thư mục dữ liệu gốc; "
                          "không đọc — chép tệp thật vào thư mục của đơn vị")
    if folder:
        rel = os.path.relpath(real, root_real)
        return file_issue(source, "symlinked_folder",
                          f"Thư mục là liên kết (symlink) tới '{display_name(rel)}' trong thư mục dữ liệu gốc; "
                          "không đọc qua liên kết thư mục (các tệp sẽ bị đọc hai lần) — chép tệp vào thư mục thật")
    return None


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
    root_real = os.path.realpath(raw_root)

    for path, kind, err in _walk(raw_root):
        rel = path.relative_to(raw_root)
        source = rel.as_posix()
        shown = display_name(source)
        top = rel.parts[0] if len(rel.parts) > 1 else None
        if years is not None and top and _YEAR.match(top) and MIN_YEAR <= int(top) <= MAX_YEAR \
                and not years[0] <= int(top) <= years[1]:
            continue  # another report year: neither listed nor reported
        if err is not None:  # kind "unlisted": the only kind that carries an error
            issues.append(file_issue(shown, "unreadable_file",
                                     f"Không mở được thư mục ({type(err).__name__}: {err.strerror or err}); các tệp "
                                     "trong đó không được đọc — kiểm tra quyền của thư mục"))
            continue
        if shown != source:
            issues.append(file_issue(
                shown, "invalid_file_name",
                "Tên tệp hoặc thư mục không phải mã UTF-8 (thường do giải nén tệp .zip tạo trên Windows), "
                "không đọc được; đổi tên (gõ lại tên tiếng Việt) rồi chạy lại"))
            continue
        if kind == "dirlink" or path.is_symlink():
            link = _link_issue(path, source, root_real, folder=kind == "dirlink")
            if link is not None:
                issues.append(link)
                continue
        parts = rel.parts
        year_text = parts[0] if len(parts) > 1 else None
        year: int | None = int(year_text) if year_text is not None and _YEAR.match(year_text) else None
        if year is not None and not MIN_YEAR <= year <= MAX_YEAR:
            year = None
        if year is not None and years is not None and not (years[0] <= year <= years[1]):
            continue
        if len(parts) > 1 and year is None:
            issues.append(file_issue(
                source, "invalid_year_folder",
                f"Thư mục '{parts[0]}' không phải là năm báo cáo (4 chữ số, ví dụ 2020); "
                f"tệp phải nằm trong <năm>/<huyện>/"))
            continue
        if len(parts) != 3 or year is None:  # year is None only when len(parts) == 1
            issues.append(file_issue(
                source, "misplaced_file",
                "Tệp không nằm đúng chỗ: phải đặt trong thư mục <năm>/<huyện>/ "
                "(ví dụ 2020/lac-son/) hoặc <năm>/province/"))
            continue
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
            if exc.errno == errno.ELOOP:
                issues.append(file_issue(source, "symlink_loop",
                                         "Tệp là liên kết (symlink) vòng lặp; thay bằng tệp thật"))
            else:
                issues.append(file_issue(source, "unreadable_file",
                                         f"Không đọc được tệp ({type(exc).__name__}: {exc.strerror or exc})"))
            continue
        if not stat.S_ISREG(st.st_mode):  # a FIFO or a device would block or never end the read
            issues.append(file_issue(source, "unreadable_file",
                                     "Không phải một tệp thông thường (thiết bị, đường ống…); không đọc"))
            continue
        files.append(RawFile(
            path=path,
            source_file=source,
            year=year,
            unit=unit,
            size=st.st_size,
            modified_at=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        ))

    files.sort(key=lambda f: f.source_file)
    issues.sort(key=lambda i: (i.source_file, i.reason_code))
    return files, issues
