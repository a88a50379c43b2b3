"""Cell value parsing to the input contract (forms.md "Values").

Every parser takes a raw cell value as fastexcel or the CSV reader gives it (None, str, int,
float, bool, date, datetime, timedelta) and returns the typed value, or None for "not
reported"; it raises `CellError(code, message)` otherwise. `code` is a reason code of
docs/architecture.md, `message` a Vietnamese sentence a district clerk understands
(without the code; `CellError.reason` appends " [code]").

Excel error cells (checked with fastexcel 0.21 on an xlsx written by xlsxwriter with
`write_formula(..., value='#N/A')`): a plain load does not return the error text. In a column
loaded with `dtypes="string"` an error cell comes back as null (indistinguishable from an
empty cell); with dtype inference a column holding e.g. `#NAME?` raises
`CalamineCellError("calamine cell error: #NAME?")`. `sheet.to_arrow_with_errors()` on a
load with a fixed dtype (e.g. "float") lists each such cell with the detail
"Expected float but got 'Error(NA)'" (NA, Ref, Div0, Name, Value, Num, Null): coop/ingest/read.py
maps that variant back to "#N/A", "#REF!", ... . openpyxl (`data_only=True`) returns the
error as the string "#N/A", "#DIV/0!", ...; CSV/ODS text carries it as text.
`is_excel_error` recognises those strings (and "calamine cell error: #..." texts).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta

from coop.text import clean_text, fold

__all__ = [
    "CellError",
    "EXCEL_ERRORS",
    "is_excel_error",
    "is_blank",
    "parse_number",
    "parse_int",
    "parse_date",
    "parse_yes_no",
    "parse_text",
    "parse_reg_code",
    "parse_target",
    "parse_ocop",
    "format_raw",
]


class CellError(Exception):
    """A cell that cannot be used. `code`: reason code; `message`: Vietnamese sentence."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{message} [{code}]")
        self.code = code
        self.message = message

    @property
    def reason(self) -> str:
        return f"{self.message} [{self.code}]"

    def __reduce__(self):  # picklable across processes (Prefect, multiprocessing)
        return (CellError, (self.code, self.message))


EXCEL_ERRORS = frozenset(
    {"#N/A", "#REF!", "#VALUE!", "#DIV/0!", "#NAME?", "#NUM!", "#NULL!", "#GETTING_DATA", "#SPILL!", "#CALC!"}
)
_NULL_MARKS = {"", "-", "–", "—", "--"}
EXCEL_EPOCH = date(1899, 12, 30)  # 1900 date system, with Excel's 1900-02-29 bug accounted for


def format_raw(v: object) -> str | None:
    """The raw value as text for the quarantine report (numbers without a trailing .0)."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v) and abs(v) < 1e15:
            return str(int(v))
        return repr(v)
    if isinstance(v, datetime):
        return v.strftime("%d/%m/%Y %H:%M:%S") if (v.hour or v.minute or v.second) else v.strftime("%d/%m/%Y")
    if isinstance(v, date):
        return v.strftime("%d/%m/%Y")
    return str(v)


def is_excel_error(v: object) -> bool:
    """True for an Excel error value (#N/A, #REF!, #VALUE!, #DIV/0!, #NAME?, #NUM!, #NULL!)."""
    if v is None or isinstance(v, (int, float, date, datetime, timedelta)):
        return False
    text = str(v).strip().upper()
    if text.startswith("CALAMINE CELL ERROR:"):
        text = text.split(":", 1)[1].strip()
    return text in EXCEL_ERRORS


def is_blank(v: object) -> bool:
    """None, empty/whitespace text, or a float NaN."""
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    if isinstance(v, str):
        return clean_text(v) == ""
    return False


def _check_error(v: object) -> None:
    if is_excel_error(v):
        raise CellError("excel_error", f"Ô chứa lỗi công thức Excel {str(v).strip()}")


# ------------------------------------------------------------------ numbers
# 3.240 / 1.234,5 / 1.234.567; a first group "0" is no thousands group ("0.500" is 0.5)
_GROUPED_DOT = re.compile(r"^[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?$")
_GROUPED_SPACE = re.compile(r"^[1-9]\d{0,2}(?: \d{3})+(?:,\d+)?$")  # 12 700 / 12 700,5
_COMMA_DECIMAL = re.compile(r"^\d+,\d+$")  # 1,4
_DOT_DECIMAL = re.compile(r"^\d*\.\d+$")  # 1.4 / .5 (a single dot not followed by exactly 3 digits)
_PLAIN = re.compile(r"^\d+$")


def _number_from_text(text: str) -> float | None:
    """Vietnamese number text -> float, None when not a number. Sign handled by caller."""
    t = text.replace("\u00a0", " ").replace("\u202f", " ")
    t = " ".join(t.split())
    if _PLAIN.match(t):
        return float(t)
    if _GROUPED_DOT.match(t):
        return float(t.replace(".", "").replace(",", "."))
    if _GROUPED_SPACE.match(t):
        return float(t.replace(" ", "").replace(",", "."))
    if _COMMA_DECIMAL.match(t):
        return float(t.replace(",", "."))
    if _DOT_DECIMAL.match(t):
        # "1.4" is 1.4; "3.240" (exactly three digits) was caught above as thousands
        return float(t)
    # grouped with spaces and dots mixed, e.g. "1 234.567"? not in the contract: reject
    return None


def parse_number(v: object) -> float | None:
    """Number cell as it is; text in the Vietnamese convention ('3.240' -> 3240,
    '1,4' -> 1.4, '1.234,5' -> 1234.5, '12 700' -> 12700, '1.4' -> 1.4); '-', '–', empty -> None."""
    _check_error(v)
    if v is None:
        return None
    if isinstance(v, bool):
        raise CellError("invalid_number", f"Không phải là số: {format_raw(v)}")
    if isinstance(v, (int, float)):
        f = float(v)
        if math.isnan(f):
            return None
        if math.isinf(f):
            raise CellError("invalid_number", f"Không phải là số: {format_raw(v)}")
        return f
    if isinstance(v, (date, datetime, timedelta)):
        raise CellError("invalid_number", f"Ô ngày tháng ở cột số: {format_raw(v)}")
    text = clean_text(str(v))
    if text in _NULL_MARKS:
        return None
    sign = 1.0
    body = text
    if body[:1] in ("-", "–", "−", "+"):
        sign = -1.0 if body[0] != "+" else 1.0
        body = body[1:].strip()
    elif body.startswith("(") and body.endswith(")"):  # accounting negative (1.234)
        sign = -1.0
        body = body[1:-1].strip()
    n = _number_from_text(body)
    if n is None:
        raise CellError("invalid_number", f"Không phải là số hợp lệ: '{text}'")
    return sign * n


def parse_int(v: object) -> int | None:
    """parse_number, then an integer (not_integer when it has a fractional part)."""
    n = parse_number(v)
    if n is None:
        return None
    if n != math.floor(n):
        raise CellError("not_integer", f"Phải là số nguyên: {format_raw(v)}")
    return int(n)


# ------------------------------------------------------------------ dates
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"  # a time part (00:00:00) is ignored
_DMY = re.compile(r"^(\d{1,2})\s*([/\-.])\s*(\d{1,2})\s*\2\s*(\d{4})" + _TIME + "$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})" + _TIME + "$")


def _make_date(y: int, m: int, d: int, raw: object) -> date:
    try:
        return date(y, m, d)
    except ValueError:
        raise CellError("invalid_date", f"Ngày không tồn tại: {format_raw(raw)}") from None


def parse_date(v: object, report_year: int | None = None) -> date | None:
    """Date/datetime cells, Excel serial numbers (1900 system), text dd/mm/yyyy, d/m/yyyy,
    dd-mm-yyyy, dd.mm.yyyy, yyyy-mm-dd. Impossible -> invalid_date; after 31 December of
    `report_year` -> date_after_report_year. Empty/'-' -> None."""
    _check_error(v)
    if v is None:
        return None
    result: date
    if isinstance(v, bool):
        raise CellError("invalid_date", f"Ngày không hợp lệ: {format_raw(v)}")
    if isinstance(v, datetime):
        result = v.date()
    elif isinstance(v, date):
        result = v
    elif isinstance(v, timedelta):  # fastexcel duration cell: days since the Excel epoch
        raise CellError("invalid_date", f"Ngày không hợp lệ (ô thời lượng): {v}")
    elif isinstance(v, (int, float)):
        f = float(v)
        if math.isnan(f):
            return None
        # Excel serials: 1 = 1900-01-01 ... plausible range 1900..9999
        if f != math.floor(f) or f < 1 or f > 2958465:
            raise CellError("invalid_date", f"Ngày không hợp lệ: {format_raw(v)}")
        result = EXCEL_EPOCH + timedelta(days=int(f)) if f >= 61 else date(1899, 12, 31) + timedelta(days=int(f))
    else:
        text = clean_text(str(v))
        if text in _NULL_MARKS:
            return None
        m = _DMY.match(text)
        if m:
            result = _make_date(int(m.group(4)), int(m.group(3)), int(m.group(1)), v)
        else:
            m = _ISO.match(text)
            if m:
                result = _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), v)
            elif _PLAIN.match(text) and 1 <= int(text) <= 2958465 and len(text) <= 7:
                # a serial number stored as text (CSV export of a date column)
                return parse_date(int(text), report_year)
            else:
                raise CellError("invalid_date", f"Ngày không hợp lệ: '{text}' (ghi theo ngày/tháng/năm)")
    if report_year is not None and result.year > report_year:
        raise CellError(
            "date_after_report_year",
            f"Ngày {result:%d/%m/%Y} sau ngày 31/12/{report_year} của năm báo cáo",
        )
    return result


# ------------------------------------------------------------------ yes/no, text, codes
_YES = {"x", "co", "1", "yes", "true", "c"}
_NO = {"", "khong", "0", "-", "–", "no", "false", "k"}


def parse_yes_no(v: object) -> bool:
    """x, X, có, Có, 1 -> True; empty, không, 0 -> False; otherwise unknown_category."""
    _check_error(v)
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        if isinstance(v, float) and math.isnan(v):
            return False
        if v == 1:
            return True
        if v == 0:
            return False
        raise CellError("unknown_category", f"Chỉ ghi 'x'/'Có' hoặc để trống/'Không': {format_raw(v)}")
    if isinstance(v, (date, datetime, timedelta)):
        raise CellError("unknown_category", f"Chỉ ghi 'x'/'Có' hoặc để trống/'Không': {format_raw(v)}")
    key = fold(str(v))
    if key in _YES:
        return True
    if key in _NO:
        return False
    raise CellError("unknown_category", f"Chỉ ghi 'x'/'Có' hoặc để trống/'Không': '{clean_text(str(v))}'")


def parse_text(v: object) -> str | None:
    """clean_text; numbers without a trailing '.0'; dates as dd/mm/yyyy; empty -> None."""
    _check_error(v)
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (bool, int, float, date, datetime)):
        return format_raw(v)
    text = clean_text(str(v))
    return text or None


_REG_CODE = re.compile(r"^[0-9-]+$")


def parse_reg_code(v: object) -> str | None:
    """Registration/tax code: spaces and a leading apostrophe removed, digits and '-' only,
    leading zeros kept; an integer numeric cell gives its digits."""
    _check_error(v)
    if v is None:
        return None
    if isinstance(v, bool):
        raise CellError("invalid_reg_code", f"Mã số chỉ gồm chữ số và dấu '-': {format_raw(v)}")
    if isinstance(v, (int, float)):
        if isinstance(v, float) and math.isnan(v):
            return None
        if v != math.floor(v) or v < 0:
            raise CellError("invalid_reg_code", f"Mã số chỉ gồm chữ số và dấu '-': {format_raw(v)}")
        return str(int(v))
    if isinstance(v, (date, datetime, timedelta)):
        raise CellError("invalid_reg_code", f"Mã số chỉ gồm chữ số và dấu '-': {format_raw(v)}")
    text = clean_text(str(v))
    text = text.lstrip("'‘’`")
    text = "".join(text.split()).replace("–", "-")
    if text == "":
        return None
    if not _REG_CODE.match(text) or not any(ch.isdigit() for ch in text):
        raise CellError("invalid_reg_code", f"Mã số chỉ gồm chữ số và dấu '-': '{clean_text(str(v))}'")
    return text


# ------------------------------------------------------------------ plan target, OCOP
_NUM = r"(\d+(?:[.,\s]\d+)*)"
_RANGE = re.compile(r"^" + _NUM + r"\s*%?\s*(?:-|–|—|đến|den|toi|tới)\s*" + _NUM + r"\s*%?$")
_FROM = re.compile(r"^(?:từ|tu|>=|≥|>|trên|tren|ít nhất|it nhat|tối thiểu|toi thieu)\s*" + _NUM + r"\s*%?$")
_SINGLE = re.compile(r"^" + _NUM + r"\s*%?$")


def _target_number(s: str, raw: object) -> float:
    n = _number_from_text(s)
    if n is None:
        raise CellError("invalid_target", f"Chỉ tiêu kế hoạch không hợp lệ: '{raw}'")
    return n


def parse_target(v: object) -> tuple[float, float | None]:
    """Plan target: 65 -> (65, 65); '6 - 8', '6-8%', '6–8 %' -> (6, 8); 'từ 65', '>= 65'
    -> (65, None). Anything else (also empty) -> invalid_target."""
    _check_error(v)
    if isinstance(v, bool) or v is None or isinstance(v, (date, datetime, timedelta)):
        raise CellError("invalid_target", f"Chỉ tiêu kế hoạch không hợp lệ: {format_raw(v) or 'trống'}")
    if isinstance(v, (int, float)):
        f = float(v)
        if not math.isfinite(f):
            raise CellError("invalid_target", f"Chỉ tiêu kế hoạch không hợp lệ: {format_raw(v)}")
        return (f, f)
    text = clean_text(str(v))
    low = text.lower()
    m = _RANGE.match(low)
    if m:
        a, b = _target_number(m.group(1), text), _target_number(m.group(2), text)
        if b < a:
            raise CellError("invalid_target", f"Khoảng chỉ tiêu ngược (cận dưới lớn hơn cận trên): '{text}'")
        return (a, b)
    m = _FROM.match(low)
    if m:
        return (_target_number(m.group(1), text), None)
    m = _SINGLE.match(low)
    if m:
        n = _target_number(m.group(1), text)
        return (n, n)
    raise CellError(
        "invalid_target",
        f"Chỉ tiêu kế hoạch không hợp lệ: '{text}' (ghi một số, một khoảng như '6 - 8' hoặc 'từ 65')",
    )


_OCOP = re.compile(r"^(?:ocop\s*)?([345])\s*(?:sao|\*|★|stars?)?(?:\s*ocop)?$")


def parse_ocop(v: object) -> int | None:
    """OCOP stars: 3, 4, 5 ('3 sao', '4*' accepted); empty/'-' -> None."""
    _check_error(v)
    if v is None:
        return None
    msg = "Số sao OCOP chỉ là 3, 4 hoặc 5"
    if isinstance(v, bool) or isinstance(v, (date, datetime, timedelta)):
        raise CellError("unknown_category", f"{msg}: {format_raw(v)}")
    if isinstance(v, (int, float)):
        if isinstance(v, float) and math.isnan(v):
            return None
        if v in (3, 4, 5):
            return int(v)
        raise CellError("unknown_category", f"{msg}: {format_raw(v)}")
    text = clean_text(str(v))
    if text in _NULL_MARKS:
        return None
    m = _OCOP.match(fold(text))
    if not m:
        raise CellError("unknown_category", f"{msg}: '{text}'")
    return int(m.group(1))
