"""`coop validate FILE...`: the district clerk's pre-flight check. Loads nothing.
A folder argument checks every file under it.

For each file: the year and district come from the path when it ends in
`<year>/<district>/<file>` (district by code or name, or the province folder), otherwise from
`--year` / `--district`. The file is read exactly as the nightly run reads it
(`coop.ingest.normalize.ingest_path`); the output lists the forms found with rows accepted, then every
problem (sheet, row, column, value, reason — Vietnamese with the English code).

Exit code: 1 when anything would be rejected (a row, a sheet, a file, or a file whose year
or district cannot be told), 0 otherwise (ignored sheets are listed but do not fail).

`--format json` prints one stable document:

    {"ok": bool, "exit_code": 0|1,
     "files": [{"file", "year", "unit_code", "unit_name", "ok",
                "rows_accepted", "rows_rejected",
                "forms": [{"sheet", "form", "header_row", "rows_accepted", "rows_rejected"}],
                "problems": [{"sheet", "row", "column", "column_label", "value",
                              "reason_code", "reason", "severity"}]}]}

`unit_code` is null for the province folder; `row`/`column` are null for a sheet- or
file-level problem; `severity` is "rejected", "ignored" (listed only) or "superseded" (when several
files given for one year/district carry the same form, the older one's sheets; does not fail).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    @property
    def ok(self) -> bool:
        return not any(p["severity"] == "rejected" for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "year": self.year, "unit_code": self.unit_code,
            "unit_name": self.unit_name, "ok": self.ok,
            "rows_accepted": sum(f["rows_accepted"] for f in self.forms),
            "rows_rejected": sum(f["rows_rejected"] for f in self.forms),
            "forms": self.forms, "problems": self.problems,
        }


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
    from coop.ingest.normalize import ingest_path, select_submissions
    from coop.reference import load_reference

    reference = load_reference()
    reports: list[FileReport] = []
    results = []
    for f in _expand(files):
        path = Path(f)
        rep = FileReport(file=str(f))
        reports.append(rep)
        if not path.is_file():
            rep.problems.append(_problem(None, "unreadable_file", "Không tìm thấy tệp [unreadable_file]"))
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
        result = ingest_path(path, year=y, district=d, source_file=str(f), reference=reference,
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
    for r in select_submissions(results):
        for i in r.file_issues:
            if i.severity == "superseded" and i.source_file in by_file:
                by_file[i.source_file].problems.append(_problem(i.sheet, i.reason_code, i.reason, i.severity))
    return reports


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
                    val = "(trống)" if p["value"] is None else repr(p["value"]) if "\n" in p["value"] else f"'{p['value']}'"
                    print(f"    Trang '{p['sheet']}', dòng {p['row']}, cột {col}, giá trị {val}: {p['reason']}",
                          file=out)
        verdict = "ĐẠT — không có gì bị loại (OK)" if rep.ok else "CÓ LỖI — sửa các lỗi trên rồi gửi lại (REJECTED)"
        print(f"  Kết quả: {verdict}", file=out)
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


def run_validate(files: list[Path], district: str | None, year: int | None, fmt: str) -> int:
    """Check the files; print the report (text or json) to stdout; return the exit code."""
    reports = validate_files(list(files), district, year)
    code = 0 if all(r.ok for r in reports) else 1
    if fmt == "json":
        doc = {"ok": code == 0, "exit_code": code, "files": [r.to_dict() for r in reports]}
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        _text_report(reports, sys.stdout)
        n_bad = sum(1 for r in reports if not r.ok)
        print(f"{len(reports)} tệp đã kiểm tra, {n_bad} tệp có lỗi.")
    return code
