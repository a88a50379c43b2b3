"""Small spreadsheet builders for the reader's tests (test_read, test_ingest, test_preflight).

Files are written in the test's tmp_path with xlsxwriter (.xlsx), xlwt (.xls), odfpy (.ods)
or plain bytes (.csv). Expected values in the tests are written by hand from
../shared/spec/forms.md, never taken from the reader's output.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Err(str):
    """An Excel error cell (#N/A, #DIV/0!, #REF!) in a grid."""


@dataclass
class G:
    """A sheet: rows of cell values starting at (row0, col0) (0-based); merges in grid coords."""

    name: str
    rows: list[list[Any]]
    row0: int = 0
    col0: int = 0
    merges: list[tuple[int, int, int, int]] = field(default_factory=list)
    hidden: bool = False


HTX_HEAD = ["STT", "Mã số HTX", "Tên HTX", "Xã", "Loại hình", "Ngày thành lập", "Lĩnh vực", "Tình trạng",
            "Số thành viên", "Số lao động", "Doanh thu", "Lợi nhuận", "Thu nhập bình quân", "Xếp loại", "OCOP",
            "Ứng dụng công nghệ cao"]


def htx_row(n: int, code: str, name: str, **over: Any) -> list[Any]:
    """A valid HTX row under HTX_HEAD; keyword overrides by header position name."""
    base = {
        "stt": n, "reg_code": code, "name": name, "commune": "Xã Tân Lập", "kind": "HTX",
        "established_on": dt.datetime(2015, 3, 1), "sector": "Nông nghiệp", "status": "Đang hoạt động",
        "members": 20, "workers": 10, "revenue": 1500, "profit": 120, "income": 4.5, "rating": "Khá",
        "ocop": None, "high_tech": None,
    }
    base.update(over)
    return list(base.values())


THT_HEAD = ["STT", "Tên tổ hợp tác", "Xã", "Ngày chứng thực hợp đồng", "Lĩnh vực", "Tình trạng", "Số thành viên",
            "Doanh thu"]


def tht_row(n: int, name: str, commune: str = "Xã Tân Lập", **over: Any) -> list[Any]:
    base = {"stt": n, "name": name, "commune": commune, "established_on": dt.datetime(2019, 5, 2),
            "sector": "Nông nghiệp", "status": "Hoạt động", "members": 12, "revenue": 300}
    base.update(over)
    return list(base.values())


HO_TRO_HEAD = ["STT", "Mã số HTX", "Nội dung hỗ trợ", "Kinh phí (triệu đồng)", "Số lượt người", "Số QĐ",
               "Ngày quyết định"]


def ho_tro_row(n: int, code: str, **over: Any) -> list[Any]:
    base = {"stt": n, "reg_code": code, "support_type": "Đào tạo", "amount": 25, "participants": 40,
            "decision_no": "12/QĐ-UBND", "allocated_on": dt.datetime(2020, 6, 1)}
    base.update(over)
    return list(base.values())


CHI_TIEU_HEAD = ["STT", "Chỉ tiêu", "Mã chỉ tiêu", "Đơn vị tính", "Kế hoạch"]


def write_xlsx(path: Path, sheets: list[G]) -> Path:
    import xlsxwriter

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                         "strings_to_urls": False})
    f_date = wb.add_format({"num_format": "dd/mm/yyyy"})
    for g in sheets:
        ws = wb.add_worksheet(g.name)
        if g.hidden:
            ws.hide()
        merged = {(m[0], m[1]): m for m in g.merges}
        covered = {(r, c) for (r1, c1, r2, c2) in g.merges for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)}
        for ri, row in enumerate(g.rows):
            for ci, v in enumerate(row):
                R, C = ri + g.row0, ci + g.col0
                if (ri, ci) in merged:
                    r1, c1, r2, c2 = merged[(ri, ci)]
                    ws.merge_range(r1 + g.row0, c1 + g.col0, r2 + g.row0, c2 + g.col0, v if v is not None else "")
                    continue
                if (ri, ci) in covered or v is None:
                    continue
                if isinstance(v, Err):
                    ws.write_formula(R, C, {"#N/A": "=NA()", "#DIV/0!": "=1/0"}.get(v, "=#REF!"), None, str(v))
                elif isinstance(v, dt.datetime):
                    ws.write_datetime(R, C, v, f_date)
                elif isinstance(v, bool):
                    ws.write_boolean(R, C, v)
                elif isinstance(v, (int, float)):
                    ws.write_number(R, C, v)
                else:
                    ws.write_string(R, C, str(v))
    wb.close()
    return path


def write_xls(path: Path, sheets: list[G]) -> Path:
    import xlwt

    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlwt.Workbook(encoding="utf-8")
    st_date = xlwt.easyxf(num_format_str="DD/MM/YYYY")
    for g in sheets:
        ws = wb.add_sheet(g.name, cell_overwrite_ok=True)
        if g.hidden:
            ws.visibility = 1
        for ri, row in enumerate(g.rows):
            for ci, v in enumerate(row):
                if v is None:
                    continue
                R, C = ri + g.row0, ci + g.col0
                if isinstance(v, dt.datetime):
                    ws.write(R, C, v, st_date)
                else:
                    ws.write(R, C, v)
    wb.save(str(path))
    return path


def write_ods(path: Path, sheets: list[G]) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    path.parent.mkdir(parents=True, exist_ok=True)
    doc = OpenDocumentSpreadsheet()
    for g in sheets:
        t = Table(name=g.name)
        for _ in range(g.row0):
            tr = TableRow()
            tr.addElement(TableCell())
            t.addElement(tr)
        for row in g.rows:
            tr = TableRow()
            for _ in range(g.col0):
                tr.addElement(TableCell())
            for v in row:
                if v is None:
                    tc = TableCell()
                elif isinstance(v, dt.datetime):
                    tc = TableCell(valuetype="date", datevalue=v.date().isoformat())
                    tc.addElement(P(text=v.strftime("%d/%m/%Y")))
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    tc = TableCell(valuetype="float", value=v)
                    tc.addElement(P(text=str(v)))
                else:
                    tc = TableCell(valuetype="string")
                    tc.addElement(P(text=str(v)))
                tr.addElement(tc)
            t.addElement(tr)
        doc.spreadsheet.addElement(t)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(path))
    return path


def write_csv(path: Path, text: str, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def reference():
    from coop.reference import load_reference

    return load_reference()


def ingest(path: Path, year: int = 2020, district: str | None = "157"):
    """ingest_path for a file; district None = province folder."""
    from coop.ingest.normalize import ingest_path

    ref = reference()
    d = ref.district_by_code(district) if district else None
    return ingest_path(path, year=year, district=d, source_file=path.name, reference=ref)


def rejected(result) -> list[tuple]:
    """(sheet, row_number, column_name, reason_code) of the quarantined cells, sorted."""
    return sorted((r["sheet"], r["row_number"], r["column_name"], r["reason_code"])
                  for r in result.rejected_rows.to_dicts())


def issues(result) -> list[tuple]:
    return sorted((i.sheet or "", i.reason_code, i.severity) for i in result.file_issues)
