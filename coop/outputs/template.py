"""Blank workbook for the next report (`coop template --year Y [--unit U]`).

Who fills it depends on the report year (units.md): up to 2024 a district (huyện, thành
phố, thị xã), from 2025 a commune of today (xã, phường, đặc khu). A unit is given by code
or name and resolved with `coop.reference.Reference.find_unit(U, Y)`: a unit that does not
report that year (Kỳ Sơn after 2019, a district from 2025, a new commune before 2025) is
refused with the reference's Vietnamese reason (`TemplateError`), never given a workbook.
The sheets carry the unit's title (`Reference.unit_title`: "UBND XÃ LẠC SƠN", "UBND HUYỆN
LẠC SƠN"); without a unit, a placeholder for the level of that year ("UBND XÃ/PHƯỜNG: …"
from 2025, "UBND HUYỆN/THÀNH PHỐ: …" before).

Sheets: "Hướng dẫn" (instructions in Vietnamese), then one sheet per form HTX, THT and
HO_TRO with the contract's headers (the first accepted header of each column, with its
unit in parentheses, which the reader ignores), drop-down lists for the vocabularies
(sector, status, support type, kind, rating, OCOP stars, yes/no) and number/date
validation (≥ 0; > 0 for an amount; dates up to 31/12 of the report year). Nothing in it
is a formula; drop-down lists are inline (no hidden list sheet the reader would have to skip).

The columns come from `schemas/forms.py` (FORMS), the single copy of the contract's
columns; this module only adds the unit shown after some headers (`UNITS`). Vocabulary
labels come from the project reference (`coop.reference`).

Public:
    template_columns(form) -> list[TemplateColumn]
    vocab_choices(vocab) -> list[str]
    valid_example(column, year) -> str     (also used by the unit feedback)
    resolve_unit(unit, year) -> Unit | None (TemplateError when the unit does not report that year)
    template_file_name(year, unit) -> str  ('bieu-mau-ktt-2026-05266-xa-lac-son.xlsx')
    build_template(year, out_dir, unit=None) -> Path
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from coop.outputs.exports import SafeWorkbook
from coop.reference import REFORM_YEAR, Unit, load_reference
from coop.text import fold
from schemas.forms import FORMS, ColumnSpec

TEMPLATE_FORMS = ("HTX", "THT", "HO_TRO")
FORM_TITLES = {
    "HTX": "DANH SÁCH HỢP TÁC XÃ, LIÊN HIỆP HỢP TÁC XÃ NĂM {year}",
    "THT": "DANH SÁCH TỔ HỢP TÁC NĂM {year}",
    "HO_TRO": "KINH PHÍ HỖ TRỢ HỢP TÁC XÃ NĂM {year}",
    "CHI_TIEU": "CHỈ TIÊU KẾ HOẠCH NĂM {year}",
}
FORM_SHEETS = {"HTX": "HTX", "THT": "THT", "HO_TRO": "Hỗ trợ HTX", "CHI_TIEU": "Chỉ tiêu"}
DATA_ROWS = 1000


@dataclass(frozen=True)
class TemplateColumn:
    name: str                 # canonical column
    header: str               # first accepted header
    kind: str                 # text | code | date | int | number | signed_number | amount | vocab | yesno | stars
    required: bool
    vocab: str | None = None  # vocabulary name for kind == "vocab"
    unit: str | None = None   # shown in parentheses after the header


# Template-only extra: the unit written in parentheses after a column's header (the reader
# ignores it).
UNITS: dict[str, str] = {
    "revenue": "triệu đồng",
    "profit": "triệu đồng",
    "income": "triệu đồng/người/tháng",
    "amount": "triệu đồng",
}
YES_NO = ["Có", "Không"]
STARS = ["3", "4", "5"]

KIND_HELP = {
    "code": "mã số (chỉ chữ số và dấu -), giữ nguyên số 0 ở đầu",
    "text": "chữ",
    "date": "ngày/tháng/năm",
    "int": "số nguyên ≥ 0",
    "number": "số ≥ 0",
    "signed_number": "số, có thể âm (lỗ)",
    "amount": "số > 0",
    "vocab": "chọn trong danh sách",
    "yesno": "Có / Không (hoặc x / để trống)",
    "stars": "3, 4 hoặc 5 sao",
    "target": "một số hoặc một khoảng",
}


def _kind_from_spec(c: ColumnSpec) -> str:
    """schemas.forms ColumnSpec kind -> template kind."""
    k = c.kind
    if k == "reg_code":
        return "code"
    if k == "category":
        return "vocab"
    if k == "ocop":
        return "stars"
    if k == "number":
        if c.minimum is None:
            return "signed_number"
        return "amount" if c.strict_minimum else "number"
    if k in ("text", "date", "int", "yesno", "target"):
        return str(k)
    return "text"


def _template_column(c: ColumnSpec) -> TemplateColumn:
    return TemplateColumn(c.name, c.label, _kind_from_spec(c), c.required, c.vocab, UNITS.get(c.name))


def template_columns(form: str) -> list[TemplateColumn]:
    """Columns of a form from schemas.forms.FORMS (first alias as header)."""
    return [_template_column(c) for c in FORMS[form].columns]


def vocab_choices(vocab: str) -> list[str]:
    """Labels offered for a vocabulary: the reference's official labels."""
    return [str(v) for v in load_reference().vocab(vocab).labels.values()]


def valid_example(column: TemplateColumn | str, year: int) -> str:
    """What a valid value of `column` looks like, in Vietnamese (for the clerk)."""
    col = column if isinstance(column, TemplateColumn) else next(
        (_template_column(c) for spec in FORMS.values() for c in spec.columns if c.name == column), None)
    if col is None:
        return ""
    k = col.kind
    if k == "code":
        return "Ví dụ: 5400123456 hoặc 0101234567-001 (chỉ gồm chữ số và dấu -)"
    if k == "date":
        return f"Ví dụ: 15/03/{year} (ngày/tháng/năm, có thật, không sau 31/12/{year})"
    if k == "int":
        return "Ví dụ: 25 (số nguyên, không âm)"
    if k == "number" and col.name == "income":
        return "Ví dụ: 4,2 (số không âm, triệu đồng/người/tháng)"
    if k == "number":
        return "Ví dụ: 1.250,5 hoặc 980 (số không âm" + (f", {col.unit})" if col.unit else ")")
    if k == "signed_number":
        return "Ví dụ: 150,5 hoặc -20 (số, âm khi lỗ" + (f", {col.unit})" if col.unit else ")")
    if k == "amount":
        return "Ví dụ: 150 (số lớn hơn 0" + (f", {col.unit})" if col.unit else ")")
    if k == "vocab" and col.vocab:
        return "Một trong: " + "; ".join(vocab_choices(col.vocab))
    if k == "yesno":
        return "Có / x (có) hoặc Không / để trống (không)"
    if k == "stars":
        return "3, 4 hoặc 5 (số sao OCOP)"
    if k == "target":
        return "Ví dụ: 65; 6 - 8; từ 65"
    if col.name == "name" and "THT" in col.header.upper():
        return "Ví dụ: Tổ hợp tác chăn nuôi Bản Mới (không để trống)"
    if col.name == "name":
        return "Ví dụ: HTX Nông nghiệp Thống Nhất (không để trống)"
    return "Chữ" + (" (không để trống)" if col.required else " (có thể để trống)")


def header_text(col: TemplateColumn) -> str:
    return f"{col.header} ({col.unit})" if col.unit else col.header


def instructions(year: int, unit: Unit | None = None) -> list[str]:
    """The lines of the "Hướng dẫn" sheet for report year `year` (and the unit, when known):
    who reports (district up to 2024, commune from 2025) and where the file goes."""
    communes = year >= REFORM_YEAR
    who = "xã, phường" if communes else "huyện"
    ref = load_reference()
    if unit is not None:
        folder = f"thư mục {year}/{unit.code}/ (mã đơn vị của {unit.full_name}"
        if ref.find_unit(unit.full_name, year).unit == unit:  # the name alone names it too
            folder += f"; cũng nhận thư mục {year}/{unit.full_name}/"
        folder += ")"
    else:
        level = "xã, phường" if communes else "huyện"
        folder = f"thư mục {year}/<tên hoặc mã {level}>/"
        example = ref.units_expected(year)[:1]
        if example:
            folder += f" (ví dụ {year}/{example[0].code}/ hoặc {year}/{example[0].full_name}/)"
    lines = [
        f"HƯỚNG DẪN ĐIỀN BIỂU MẪU BÁO CÁO KINH TẾ TẬP THỂ NĂM {year}",
        "",
        "1. Biểu mẫu gồm 3 trang tính: HTX (danh sách hợp tác xã, liên hiệp hợp tác xã), THT (danh sách tổ hợp tác) "
        f"và Hỗ trợ HTX (kinh phí hỗ trợ hợp tác xã bố trí trong năm {year}).",
        "2. Mỗi HTX, THT ghi trên một dòng, bắt đầu ngay dưới dòng tiêu đề cột. Không đổi tên, không xóa dòng tiêu "
        "đề cột; có thể thêm cột ghi chú ở bên phải (cột lạ được bỏ qua).",
        f"3. Danh sách là tình hình tại ngày 31/12/{year}: ghi cả HTX, THT đã ngừng hoạt động hoặc giải thể, "
        "ghi rõ tình trạng.",
        "4. Cột có tiêu đề tô màu cam là bắt buộc (xem bảng dưới). Dòng thiếu thông tin bắt buộc hoặc sai định dạng sẽ "
        f"không được tính vào chỉ tiêu và được gửi lại {who} trong tệp phản hồi.",
        f"5. Ngày ghi theo ngày/tháng/năm (ví dụ 15/03/{year}), không sau ngày 31/12/{year}.",
        "6. Số tiền tính bằng triệu đồng; thu nhập bình quân tính bằng triệu đồng/người/tháng. "
        "Dấu chấm phân cách hàng nghìn, dấu phẩy phân cách thập phân (ví dụ 1.250,5).",
        "7. Lĩnh vực, tình trạng, loại hình, xếp loại, nội dung hỗ trợ: chọn trong danh sách thả xuống.",
        "8. Mã số HTX: ghi mã số đăng ký (mã số thuế) của HTX, giữ nguyên số 0 ở đầu; mỗi HTX chỉ ghi một dòng "
        "(HTX chuyển từ huyện cũ sang xã, phường mới vẫn giữ mã số cũ). Trang Hỗ trợ HTX dùng cùng mã số này.",
        f"9. Gửi tệp về tỉnh trong {folder}; có thể tự kiểm tra trước bằng lệnh `coop validate <tệp>`.",
    ]
    if communes:
        lines.append(
            f"10. Từ ngày 01/07/2025 không còn cấp huyện: báo cáo năm {year} do xã, phường, đặc khu gửi; "
            "cột Xã ghi tên xã, phường mới (sau sắp xếp).")
    else:
        lines.append(
            f"10. Báo cáo năm {year} (trước sắp xếp đơn vị hành chính 2025) do huyện, thành phố, thị xã gửi; "
            "cột Xã ghi tên xã, phường, thị trấn như năm đó.")
    return [*lines, "", "Các cột của từng trang tính:"]


class TemplateError(ValueError):
    """The template cannot be made: the unit is unknown or does not report that year."""


def resolve_unit(unit: str | None, year: int) -> Unit | None:
    """The reporting unit `unit` (code or name, any spelling a folder may have) names in
    report year `year`; None without a unit. Raises TemplateError with the reference's
    Vietnamese reason when no unit of that year matches (unknown, ambiguous, a district
    from 2025, a new commune before 2025, a district no longer existing)."""
    if unit is None or not str(unit).strip():
        return None
    match = load_reference().find_unit(unit, year)
    if match.unit is None:
        raise TemplateError(f"Không làm biểu mẫu năm {year} cho '{unit}': {match.message}. "
                            f"[{match.reason_code}]")
    return match.unit


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-") or "x"


def template_file_name(year: int, unit: Unit | None) -> str:
    """'bieu-mau-ktt-2026-05266-xa-lac-son.xlsx', 'bieu-mau-ktt-2024-157-huyen-lac-son.xlsx';
    'bieu-mau-ktt-2026.xlsx' without a unit. The code keeps two units of one name apart."""
    return f"bieu-mau-ktt-{year}" + (f"-{unit.code}-{slug(unit.full_name)}" if unit else "") + ".xlsx"


def unit_line(year: int, unit: Unit | None) -> str:
    """Title line of every form sheet: the unit's heading, or a placeholder for the level
    that reports `year`."""
    if unit is not None:
        return load_reference().unit_title(unit)
    if year >= REFORM_YEAR:
        return "UBND XÃ/PHƯỜNG: ............................"
    return "UBND HUYỆN/THÀNH PHỐ: ............................"


def build_template(year: int, out_dir: Path, unit: str | None = None, *, district: str | None = None) -> Path:
    """Write the blank workbook for report year `year` (for `unit`, code or name; `district`
    is the former name of that argument); returns its path. TemplateError when the unit
    does not report that year."""
    found = resolve_unit(unit if unit is not None else district, year)
    path = Path(out_dir) / template_file_name(year, found)
    title = unit_line(year, found)
    last_day = dt.datetime(year, 12, 31)
    with SafeWorkbook(path) as wb:
        ws = wb.add_worksheet("Hướng dẫn")
        ws.set_column(0, 0, 28)
        ws.set_column(1, 1, 14)
        ws.set_column(2, 2, 90)
        r = 0
        for i, line in enumerate(instructions(year, found)):
            wb.write(ws, r, 0, line, {"bold": i == 0, "font_size": 13 if i == 0 else 11})
            r += 1
        for form in TEMPLATE_FORMS:
            r += 1
            wb.write(ws, r, 0, f"Trang {FORM_SHEETS[form]}", {"bold": True})
            r += 1
            wb.write_row(ws, r, 0, ["Cột", "Bắt buộc", "Giá trị hợp lệ"], {"bold": True, "bg_color": "#DDEBF7"})
            r += 1
            for col in template_columns(form):
                wb.write_row(ws, r, 0, [header_text(col), "có" if col.required else "không", valid_example(col, year)])
                r += 1

        for form in TEMPLATE_FORMS:
            cols = template_columns(form)
            ws = wb.add_worksheet(FORM_SHEETS[form])
            wb.write(ws, 0, 0, title, {"bold": True})
            wb.write(ws, 1, 0, FORM_TITLES[form].format(year=year), {"bold": True, "font_size": 13})
            hdr_row = 3
            for c, col in enumerate(cols):
                wb.write(ws, hdr_row, c, header_text(col),
                         {"bold": True, "bg_color": "#DDEBF7" if not col.required else "#FCE4D6", "border": 1,
                          "text_wrap": True, "valign": "top", "align": "center"})
                width = max(12, min(40, len(header_text(col)) + 4))
                props: dict[str, str] = {}
                if col.kind in ("code", "text"):
                    props["num_format"] = "@"
                if col.kind == "date":
                    props["num_format"] = "dd/mm/yyyy"
                    width = 14
                if col.name == "name":
                    width = 36
                ws.set_column(c, c, width, wb.fmt(props))
                first, last = hdr_row + 1, hdr_row + DATA_ROWS
                v = _validation(col, year, last_day)
                if v:
                    ws.data_validation(first, c, last, c, v)
            ws.set_row(hdr_row, 45)
            ws.freeze_panes(hdr_row + 1, 0)
        wb.book.worksheets()[1].activate()
    return path


def _validation(col: TemplateColumn, year: int, last_day: dt.datetime) -> dict[str, object] | None:
    """xlsxwriter's data_validation options for a column (None: no validation)."""
    msg = {"error_title": "Giá trị không hợp lệ", "input_title": col.header[:32]}
    k = col.kind
    if k == "vocab" and col.vocab:
        choices = vocab_choices(col.vocab)
        return {"validate": "list", "source": choices, "error_message": ("Chọn một giá trị trong danh sách: "
                + "; ".join(choices))[:255], **msg}
    if k == "yesno":
        return {"validate": "list", "source": YES_NO, "error_message": "Chọn Có hoặc Không.", **msg}
    if k == "stars":
        return {"validate": "list", "source": STARS, "error_message": "Số sao OCOP: 3, 4 hoặc 5.", **msg}
    if k == "int":
        return {"validate": "integer", "criteria": ">=", "value": 0,
                "error_message": "Nhập số nguyên không âm.", **msg}
    if k == "number":
        return {"validate": "decimal", "criteria": ">=", "value": 0, "error_message": "Nhập số không âm.", **msg}
    if k == "amount":
        return {"validate": "decimal", "criteria": ">", "value": 0, "error_message": "Nhập số lớn hơn 0.", **msg}
    if k == "date":
        return {"validate": "date", "criteria": "between", "minimum": dt.datetime(1950, 1, 1), "maximum": last_day,
                "error_message": f"Nhập ngày dạng ngày/tháng/năm, không sau 31/12/{year}.", **msg}
    return None
