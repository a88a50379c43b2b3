"""`coop validate FILE...`: the district clerk's pre-flight check. Loads nothing.
A folder argument checks every file under it.

For each file: the year and district come from the path when it ends in
`<year>/<district>/<file>` (district by code or name, or the province folder), otherwise from
`--year` / `--district`. The file is read exactly as the nightly run reads it
(`coop.ingest.normalize.ingest_path`); the output lists the forms found with rows accepted, then every
problem (sheet, row, column, value, reason — Vietnamese with the English code).

Each file ends with a verdict for the clerk saying what the province will load (Vietnamese
first, English after):

- `ok`        "ĐẠT — 121 dòng sẽ được nhận" (nothing rejected);
- `partial`   "120 dòng sẽ được nhận, 1 dòng bị loại" (some rows or sheets are rejected, the
              rest loads: the file is *not* rejected);
- `rejected`  "TỆP BỊ TỪ CHỐI — không dòng nào được nhận" with the reason (the whole file:
              unreadable, no form, wrong folder, over a reading limit…);
- `empty`     "TRỐNG — Tệp chưa có dòng dữ liệu nào" (forms found, not one data row: a blank
              template), listed as the problem `empty_file`;
- `superseded` every form of the file is replaced by a newer file given with it.

Exit code: 1 when anything would be rejected (a row, a sheet, a file, or a file whose year
or district cannot be told) or a file is empty, 0 otherwise (ignored sheets and superseded
files are listed but do not fail).

`--format json` prints one stable document:

    {"ok": bool, "exit_code": 0|1,
     "files": [{"file", "year", "unit_code", "unit_name", "ok", "verdict", "verdict_text",
                "rows_accepted", "rows_rejected",
                "forms": [{"sheet", "form", "header_row", "rows_accepted", "rows_rejected"}],
                "problems": [{"sheet", "row", "column", "column_label", "value",
                              "reason_code", "reason", "severity"}]}]}

`rows_accepted` are the rows the province will load (a sheet superseded by a newer file given
with it counts none), `rows_rejected` the distinct rows quarantined. `unit_code` is null for
the province folder; `row`/`column` are null for a sheet- or file-level problem; `severity`
is "rejected", "ignored" (listed only) or "superseded" (when several files given for one
year/district carry the same form, the older one's sheets; does not fail).
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coop.ingest.discover import display_name

__all__ = ["run_validate", "validate_files", "FileReport"]

_YEAR = re.compile(r"^\d{4}$")
_FORM_NAMES = {"HTX": "Danh sách HTX", "THT": "Danh sách tổ hợp tác", "HO_TRO": "Kinh phí hỗ trợ",
               "CHI_TIEU": "Chỉ tiêu kế hoạch"}


@dataclass
class FileReport:
    file: str
    year: int | None = None
    unit_code: str | None = None
    unit_name: str | None = None
    forms: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    superseded_sheets: set[str] = field(default_factory=set)  # replaced by a newer file given with it
    empty_problem: dict[str, Any] | None = None  # the problem added for a file without data rows

    @property
    def ok(self) -> bool:
        return not any(p["severity"] == "rejected" for p in self.problems)

    @property
    def rows_accepted(self) -> int:
        """Rows the province will load from this file."""
        return sum(f["rows_accepted"] for f in self.forms if f["sheet"] not in self.superseded_sheets)

    @property
    def rows_rejected(self) -> int:
        """Distinct rows the province will quarantine."""
        return sum(f["rows_rejected"] for f in self.forms if f["sheet"] not in self.superseded_sheets)

    def _rejected_problems(self, *, whole_file: bool) -> list[dict[str, Any]]:
        return [p for p in self.problems if p["severity"] == "rejected" and p["row"] is None
                and (p["sheet"] is None) == whole_file and p is not self.empty_problem]

    @property
    def verdict(self) -> str:
        """ok | partial | rejected | empty | superseded (module doc)."""
        if self._rejected_problems(whole_file=True):
            return "rejected"
        live = [f for f in self.forms if f["sheet"] not in self.superseded_sheets]
        if self.forms and not live:
            return "superseded"
        sheets_rejected = self._rejected_problems(whole_file=False)
        if self.rows_accepted == 0 and self.rows_rejected == 0:
            return "rejected" if sheets_rejected else "empty"
        if self.rows_rejected or sheets_rejected:
            return "partial"
        return "ok"

    @property
    def verdict_text(self) -> str:
        """The verdict in words for the clerk: Vietnamese, then English in brackets."""
        n, m = self.rows_accepted, self.rows_rejected
        v = self.verdict
        if v == "rejected":
            why = (self._rejected_problems(whole_file=True) or self._rejected_problems(whole_file=False))[0]
            where = f"trang '{why['sheet']}': " if why["sheet"] else ""
            return (f"TỆP BỊ TỪ CHỐI — không dòng nào được nhận; lý do: {where}{_gist(why['reason'])} "
                    f"[{why['reason_code']}] (REJECTED: nothing in this file will be loaded, see the reason above)")
        if v == "empty":
            return ("TRỐNG — Tệp chưa có dòng dữ liệu nào: 0 dòng sẽ được nhận; điền số liệu vào các trang "
                    "biểu mẫu rồi kiểm tra lại (EMPTY: the file has no data rows)")
        if v == "superseded":
            return ("THAY THẾ — các biểu của tệp này được thay bằng bản nộp lại mới hơn, 0 dòng của tệp này sẽ "
                    "được nhận (SUPERSEDED by a newer file given with it)")
        if v == "partial":
            sheets = [p["sheet"] for p in self._rejected_problems(whole_file=False)]
            extra = "".join(f", trang '{s}' bị loại" for s in dict.fromkeys(sheets))
            extra_en = f", {len(set(sheets))} sheet(s) rejected" if sheets else ""
            fix = "sửa các dòng bị loại rồi gửi lại cả tệp" if m else "sửa lỗi ở trên rồi gửi lại cả tệp"
            return (f"{n} dòng sẽ được nhận, {m} dòng bị loại{extra} — {fix} "
                    f"({_rows_en(n)} will be loaded, {m} rejected{extra_en})")
        return f"ĐẠT — {n} dòng sẽ được nhận, không có gì bị loại (OK: {_rows_en(n)} will be loaded)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "year": self.year, "unit_code": self.unit_code,
            "unit_name": self.unit_name, "ok": self.ok, "verdict": self.verdict, "verdict_text": self.verdict_text,
            "rows_accepted": self.rows_accepted, "rows_rejected": self.rows_rejected,
            "forms": self.forms, "problems": self.problems,
        }


def _rows_en(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _gist(reason: str, limit: int = 140) -> str:
    """The first clause of a reason (its code and technical detail dropped), for the verdict line."""
    text = re.sub(r"\s*\[[a-z_]+\]\s*$", "", reason)
    cut = min((i for i in (text.find(" ("), text.find("; "), text.find(": ")) if i > 0), default=len(text))
    text = text[:cut]
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _problem(sheet: str | None, reason_code: str, reason: str, severity: str = "rejected", *,
             row: int | None = None, column: str | None = None, column_label: str | None = None,
             value: str | None = None) -> dict[str, Any]:
    return {"sheet": sheet, "row": row, "column": column, "column_label": column_label, "value": value,
            "reason_code": reason_code, "reason": reason, "severity": severity}


def _where_from_path(path: Path) -> tuple[int, str] | None:
    """(year, unit folder) when the path ends in <year>/<unit>/<file>."""
    parts = path.absolute().parts
    if len(parts) < 3 or not _YEAR.match(parts[-3]):
        return None
    return int(parts[-3]), parts[-2]


def _label(form: str | None, column: str | None) -> str | None:
    if column is None:
        return None
    try:
        from schemas.forms import FORMS

        return FORMS[form].column(column).label if form else column
    except KeyError:
        return column


def _expand(files: list[Path]) -> list[Path]:
    """A folder given on the command line stands for every file under it (hidden and
    temporary files skipped, as discovery does)."""
    from coop.ingest.discover import is_skipped_name

    out: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*")
                          if q.is_file() and not any(is_skipped_name(part) for part in q.relative_to(p).parts))
        else:
            out.append(p)
    return out


def validate_files(files: list[Path], district: str | None, year: int | None) -> list[FileReport]:
    from coop.ingest.discover import SUPPORTED_EXTENSIONS
    from coop.ingest.normalize import FileResult, ingest_path, select_submissions
    from coop.reference import load_reference

    reference = load_reference()
    reports: list[FileReport] = []
    results: list[FileResult] = []
    for f in _expand(files):
        path = Path(f)
        rep = FileReport(file=display_name(str(f)))
        reports.append(rep)
        if rep.file != str(f):  # a name that is not UTF-8 (unzip of a Windows zip): the run refuses it too
            rep.problems.append(_problem(
                None, "invalid_file_name",
                "Tên tệp hoặc thư mục không phải mã UTF-8 (thường do giải nén tệp .zip tạo trên Windows); tỉnh sẽ "
                "không đọc tệp này — đổi tên (gõ lại tên tiếng Việt) rồi kiểm tra lại "
                "(the file or folder name is not valid UTF-8) [invalid_file_name]"))
            continue
        if not path.is_file():
            rep.problems.append(_not_a_file(path))
            continue
        if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
            rep.problems.append(_problem(
                None, "unsupported_file_type",
                f"Loại tệp '{path.suffix or '(không có đuôi)'}' không được hỗ trợ; chỉ nhận "
                f"{', '.join(SUPPORTED_EXTENSIONS)} [unsupported_file_type]"))
            continue
        where = _where_from_path(path)
        y, folder = where if where is not None else (year, district)
        d, province = None, False
        if folder is not None and y is not None:
            if reference.is_province_folder(folder):
                province = True
            else:
                match = reference.find_unit(folder, y)
                if not match.ok:
                    rep.year = y
                    rep.problems.append(_problem(None, match.reason_code or "unknown_district",
                                                 f"{match.message} [{match.reason_code}]"))
                    continue
                d = match.unit
        else:
            missing = []
            if y is None:
                missing.append("năm báo cáo (--year)")
            if folder is None:
                missing.append("đơn vị (--unit: xã/phường từ 2025, huyện đến 2024; 'province' cho biểu của tỉnh)")
            rep.problems.append(_problem(
                None, "misplaced_file",
                "Không biết " + " và ".join(missing) + ": đường dẫn tệp không có dạng <năm>/<đơn vị>/<tệp>; "
                "hãy ghi thêm --year/--unit [misplaced_file]"))
            continue
        rep.year = y
        rep.unit_code = d.code if d is not None else None
        rep.unit_name = d.full_name if d is not None else "Tỉnh (province)"
        # read by its absolute path: the reader's worker process does not share this process's cwd
        result = ingest_path(path.absolute(), year=y, district=d, source_file=rep.file, reference=reference,
                             province=province)
        results.append(result)
        forms_of = {s.name: s.form for s in result.sheets}
        for s in result.sheets:
            if s.form is not None and not any(i.sheet == s.name and i.severity == "rejected"
                                               for i in result.file_issues):
                rep.forms.append({"sheet": s.name, "form": s.form, "header_row": s.header_row,
                                  "rows_accepted": s.rows_accepted, "rows_rejected": s.rows_rejected})
        for i in result.file_issues:
            rep.problems.append(_problem(i.sheet, i.reason_code, i.reason, i.severity))
        for r in result.rejected_rows.iter_rows(named=True):
            form = forms_of.get(r["sheet"])
            rep.problems.append(_problem(
                r["sheet"], r["reason_code"], r["reason"], row=r["row_number"], column=r["column_name"],
                column_label=_label(form, r["column_name"]), value=r["raw_value"]))
    # several files of one folder carrying the same form: say which one the province would use
    by_file = {rep.file: rep for rep in reports}
    for sel in select_submissions(results):
        for i in sel.file_issues:
            if i.severity == "superseded" and i.source_file in by_file:
                by_file[i.source_file].problems.append(_problem(i.sheet, i.reason_code, i.reason, i.severity))
                if i.sheet is not None:
                    by_file[i.source_file].superseded_sheets.add(i.sheet)
    for rep in reports:  # forms found but not one data row (a blank template): not "OK"
        if rep.verdict == "empty":
            rep.empty_problem = _problem(
                None, "empty_file",
                "Tệp chưa có dòng dữ liệu nào: các trang biểu mẫu chỉ có dòng tiêu đề, tỉnh không nhận được số "
                "liệu gì (the file has no data rows) [empty_file]")
            rep.problems.append(rep.empty_problem)
    return reports


def _not_a_file(path: Path) -> dict[str, Any]:
    """The problem of a path that is no regular file (missing, a broken or looping link, a pipe)."""
    if not os.path.lexists(path):
        return _problem(None, "unreadable_file", "Không tìm thấy tệp (file not found) [unreadable_file]")
    if path.is_symlink():
        try:
            os.path.realpath(path, strict=True)
        except (OSError, RuntimeError) as e:
            if isinstance(e, RuntimeError) or e.errno == errno.ELOOP:
                return _problem(None, "symlink_loop",
                                "Tệp là liên kết (symlink) vòng lặp, trỏ về chính nó; thay bằng tệp thật "
                                "(symbolic link loop) [symlink_loop]")
            return _problem(None, "unreadable_file",
                            f"Tệp là liên kết (symlink) hỏng, không trỏ tới tệp nào (broken symbolic link: "
                            f"{e.strerror or e}) [unreadable_file]")
    return _problem(None, "unreadable_file",
                    "Không phải tệp bảng tính thường (thư mục, ống dẫn hoặc thiết bị), không đọc được "
                    "(not a regular file) [unreadable_file]")


# --------------------------------------------------------------------------- output
def _text_report(reports: list[FileReport], out: Any) -> None:
    tty = hasattr(out, "isatty") and out.isatty()
    for rep in reports:
        where = ""
        if rep.year is not None:
            who = f"{rep.unit_code} {rep.unit_name}" if rep.unit_code else "tỉnh (province)"
            where = f" — năm {rep.year}, {who}"
        print(f"Tệp {rep.file}{where}", file=out)
        if rep.forms:
            for fm in rep.forms:
                print(f"  Trang '{fm['sheet']}': {_FORM_NAMES.get(fm['form'], fm['form'])} ({fm['form']}), "
                      f"tiêu đề ở dòng {fm['header_row']}: {fm['rows_accepted']} dòng hợp lệ, "
                      f"{fm['rows_rejected']} dòng lỗi", file=out)
        rows = [p for p in rep.problems if p["row"] is not None]
        others = [p for p in rep.problems if p["row"] is None]
        for p in others:
            where = f"Trang '{p['sheet']}'" if p["sheet"] else "Cả tệp"
            tag = {"ignored": "BỎ QUA", "superseded": "THAY THẾ"}.get(p["severity"], "LỖI")
            print(f"  {tag} — {where}: {p['reason']}", file=out)
        if rows:
            print(f"  Các dòng bị loại ({len({(p['sheet'], p['row']) for p in rows})} dòng):", file=out)
            if tty:
                _rich_table(rows, out)
            else:
                for p in rows:
                    col = f"{p['column_label']} ({p['column']})" if p["column_label"] else (p["column"] or "")
                    val = ("(trống)" if p["value"] is None
                           else repr(p["value"]) if "\n" in p["value"] else f"'{p['value']}'")
                    print(f"    Trang '{p['sheet']}', dòng {p['row']}, cột {col}, giá trị {val}: {p['reason']}",
                          file=out)
        print(f"  Kết quả: {rep.verdict_text}", file=out)
        print(file=out)


def _rich_table(rows: list[dict[str, Any]], out: Any) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    t = Table(show_header=True, header_style="bold")
    for h in ("Trang", "Dòng", "Cột", "Giá trị", "Lý do"):
        t.add_column(h, overflow="fold")
    for p in rows:
        col = f"{p['column_label']} ({p['column']})" if p["column_label"] else (p["column"] or "")
        cells = (p["sheet"] or "", str(p["row"]), col, "(trống)" if p["value"] is None else p["value"], p["reason"])
        t.add_row(*(Text(c) for c in cells))  # Text: '[invalid_date]' is not rich markup
    Console(file=out).print(t)


_VERDICT_WORDS = (("ok", "đạt", "OK"), ("partial", "có dòng bị loại", "with rejected rows"),
                  ("rejected", "bị từ chối", "rejected"), ("empty", "trống", "empty"),
                  ("superseded", "được thay thế", "superseded"))


def _totals(reports: list[FileReport]) -> str:
    """'3 tệp đã kiểm tra: 1 đạt, 1 có dòng bị loại, 1 bị từ chối; 240 dòng sẽ được nhận, 2 dòng bị loại (…)'."""
    count = {v: sum(1 for r in reports if r.verdict == v) for v, _, _ in _VERDICT_WORDS}
    vi = ", ".join(f"{count[v]} {w}" for v, w, _ in _VERDICT_WORDS if count[v])
    en = ", ".join(f"{count[v]} {w}" for v, _, w in _VERDICT_WORDS if count[v])
    n = sum(r.rows_accepted for r in reports)
    m = sum(r.rows_rejected for r in reports)
    if not reports:
        return "Không có tệp nào để kiểm tra (no file to check)."
    return (f"{len(reports)} tệp đã kiểm tra: {vi}; {n} dòng sẽ được nhận, {m} dòng bị loại "
            f"({len(reports)} file{'' if len(reports) == 1 else 's'} checked: {en}; {_rows_en(n)} will be loaded, "
            f"{m} rejected).")


def run_validate(files: list[Path], district: str | None, year: int | None, fmt: str) -> int:
    """Check the files; print the report (text or json) to stdout; return the exit code."""
    reports = validate_files(list(files), district, year)
    code = 0 if all(r.ok for r in reports) else 1
    if fmt == "json":
        doc = {"ok": code == 0, "exit_code": code, "files": [r.to_dict() for r in reports]}
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        _text_report(reports, sys.stdout)
        print(_totals(reports))
    return code
