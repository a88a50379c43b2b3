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

Values never silently changed (docs/architecture.md "Values the reader does not trust"):
- A cell the reader could not take as written arrives as a `ProblemCell` (a `str` holding what
  the cell shows, with a reason code): a formula without a calculated value
  (`UncalculatedFormula`, `formula_not_calculated`), a CSV cell opened by a `"` that is never
  closed (`UnclosedQuote`, `csv_unbalanced_quote`). Every parser raises its CellError.
- A non-finite number (NaN, ±inf) in any cell -> `invalid_number`, never "not reported"; a
  number of magnitude >= `MAX_ABS_NUMBER` (1e15, beyond any figure of a cooperative and the
  last integer a double holds exactly within 2^53) -> `invalid_number`, so a sum or an
  average in the warehouse can never overflow and an integer always fits int64.
- A date cell holding only a year (2015 as a number or text, or a date cell Excel shows as
  14/03/1905 … 30/09/1905, which is a year typed into a cell formatted as a date) ->
  `invalid_date` asking for dd/mm/yyyy (it used to become 07/07/1905).
- Number text in the English convention ("1,234.5", "1,234,567") -> `invalid_number`, named
  ambiguous, never read as another number.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, Final

from coop.text import clean_text, fold

__all__ = [
    "CellError",
    "ProblemCell",
    "UncalculatedFormula",
    "UnclosedQuote",
    "MAX_ABS_NUMBER",
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
    "UNDECIDED",
    "parse_common_cells",
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

    def __reduce__(self) -> tuple[type[CellError], tuple[str, str]]:
        # picklable across processes (Prefect, multiprocessing)
        return (CellError, (self.code, self.message))


class ProblemCell(str):
    """A cell the reader could not take as written: the text is what the cell shows (for the
    quarantine report), `code` the reason code, `message()` the Vietnamese sentence. Every
    parser raises `CellError(code, message)` for it. Picklable (a str subclass of this module)."""

    code: ClassVar[str] = "invalid_value"

    def message(self) -> str:  # pragma: no cover — every subclass says its own
        return f"Ô không đọc được: {str(self)}"


class UncalculatedFormula(ProblemCell):
    """A formula whose result the file does not hold (written by a program, never calculated
    by a spreadsheet): `str` is the formula, '=A5*2'."""

    code: ClassVar[str] = "formula_not_calculated"

    def message(self) -> str:
        f = str(self)
        shown = f if len(f) <= 60 else f[:57] + "..."
        return (f"Ô chứa công thức {shown} nhưng tệp không lưu kết quả đã tính (tệp do phần mềm tạo ra, chưa "
                f"được mở và lưu bằng Excel); mở tệp bằng Excel hoặc LibreOffice, lưu lại rồi gửi lại "
                f"(công thức không có giá trị tính sẵn)")


class UnclosedQuote(ProblemCell):
    """A CSV cell from a `"` that is never closed to the end of its line: `str` is the rest of
    the line's cell as written. Its own and the following cells of the line are uncertain."""

    code: ClassVar[str] = "csv_unbalanced_quote"

    def message(self) -> str:
        return ("Dòng của tệp CSV có dấu ngoặc kép (\") mở mà không đóng, nên không chắc ranh giới các ô từ ô có "
                "dấu ngoặc kép đến cuối dòng; sửa dấu ngoặc kép (hoặc lưu lại từ Excel dạng CSV UTF-8) rồi gửi lại "
                "(dấu ngoặc kép không cân)")


class CsvExtraCells(ProblemCell):
    """A cell of a CSV line that has more filled cells than the file's rows usually have: a
    number written with a comma (`12,5`) without quotes splits into two cells, so every cell
    of the line may have moved. `str` is the cell as read."""

    code: ClassVar[str] = "csv_extra_cells"

    def message(self) -> str:
        return ("Dòng của tệp CSV có nhiều ô hơn các dòng khác — thường do số có dấu phẩy (ví dụ 12,5) không "
                "đặt trong ngoặc kép nên bị tách làm hai ô, các ô sau đó bị lệch cột; đặt số đó trong ngoặc kép "
                "hoặc lưu lại từ Excel dạng CSV UTF-8 rồi gửi lại (CSV line with more cells than the file's "
                "rows: an unquoted decimal comma shifts the cells)")


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
    if type(v) is str and "#" not in v:  # every error text has a '#' (the common case: no error)
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


#: Numbers of this magnitude or more are refused (`invalid_number`): far beyond any figure of a
#: cooperative (million VND, people), exact in a double (< 2^53), so sums and averages stay
#: finite and integers fit int64.
MAX_ABS_NUMBER = 1e15


def _check_error(v: object) -> None:
    if type(v) is str:  # the common cases first, with the same outcome as below
        if "#" in v and is_excel_error(v):
            raise CellError("excel_error", f"Ô chứa lỗi công thức Excel {v.strip()}")
        return
    if type(v) is float:
        if not math.isfinite(v):
            raise CellError("invalid_number", f"Ô chứa giá trị số không hợp lệ ({_non_finite(v)}): không phải là số")
        return
    if isinstance(v, ProblemCell):
        raise CellError(v.code, v.message())
    if is_excel_error(v):
        raise CellError("excel_error", f"Ô chứa lỗi công thức Excel {str(v).strip()}")
    if isinstance(v, float) and not math.isfinite(v):
        raise CellError("invalid_number", f"Ô chứa giá trị số không hợp lệ ({_non_finite(v)}): không phải là số")


def _non_finite(f: float) -> str:
    return "NaN" if math.isnan(f) else ("+∞" if f > 0 else "-∞")


def _too_large(raw: object) -> CellError:
    return CellError("invalid_number",
                     f"Số quá lớn: {format_raw(raw)} (vượt 10^15; kiểm tra đơn vị tính và các chữ số thừa)")


# ------------------------------------------------------------------ numbers
# 3.240 / 1.234,5 / 1.234.567; a first group "0" is no thousands group ("0.500" is 0.5)
_GROUPED_DOT = re.compile(r"^[1-9]\d{0,2}(?:\.\d{3})+(?:,\d+)?$")
_GROUPED_SPACE = re.compile(r"^[1-9]\d{0,2}(?: \d{3})+(?:,\d+)?$")  # 12 700 / 12 700,5
_COMMA_DECIMAL = re.compile(r"^\d+,\d+$")  # 1,4
_DOT_DECIMAL = re.compile(r"^\d*\.\d+$")  # 1.4 / .5 (a single dot not followed by exactly 3 digits)
_PLAIN = re.compile(r"^\d+$")
# The English convention, which the contract does not read: ',' grouping thousands before a
# '.' decimal or in more than one place ("1,234.5", "1,234,567"), or space groups with a '.'
# decimal ("1 234.5"). Quarantined as ambiguous, never read as another number.
_ENGLISH = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$|^\d+,\d{3}\.\d+$|^\d{1,3}(?: \d{3})+\.\d+$")
_ONE_COMMA_GROUP = re.compile(r"^\d{1,3},\d{3}$")  # "1,234": 1.234 by the contract, 1234 to an English eye


def _vietnamese(text: str) -> str | None:
    """The English-convention number `text` written the Vietnamese way ('1,234.5' -> '1.234,5')."""
    body = text.replace(" ", "").replace(",", "")
    whole, _, frac = body.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return None
    groups = f"{int(whole):,}".replace(",", ".")
    return groups + ("," + frac if frac else "")


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


#: The common number texts (ASCII, no space: `clean_text` leaves them as they are): an optional
#: '-', digits or dot-grouped thousands, an optional ',' decimal part. `parse_number` reads
#: them as its general path does (`_PLAIN` / `_GROUPED_DOT` / `_COMMA_DECIMAL`, the same float).
_FAST_NUMBER = re.compile(r"(-?)([1-9][0-9]{0,2}(?:\.[0-9]{3})+|[0-9]+)(?:,([0-9]+))?")


def parse_number(v: object) -> float | None:
    """Number cell as it is; text in the Vietnamese convention ('3.240' -> 3240,
    '1,4' -> 1.4, '1.234,5' -> 1234.5, '12 700' -> 12700, '1.4' -> 1.4); '-', '–', empty -> None."""
    if isinstance(v, float) and math.isfinite(v) and abs(v) < MAX_ABS_NUMBER:
        return float(v)  # a number cell: the common case, as below
    if type(v) is str:  # plain Vietnamese number text ('1.234,5', '-471', '12'): as below, one match
        m = _FAST_NUMBER.fullmatch(v)
        if m is not None:
            frac = m[3]
            whole = float(m[2].replace(".", "") + "." + frac if frac else m[2].replace(".", ""))
            if whole < MAX_ABS_NUMBER:
                return (-1.0 if m[1] else 1.0) * whole
    _check_error(v)
    if v is None:
        return None
    if isinstance(v, bool):
        raise CellError("invalid_number", f"Không phải là số: {format_raw(v)}")
    if isinstance(v, (int, float)):
        f = float(v)  # a non-finite float was refused by _check_error
        if abs(f) >= MAX_ABS_NUMBER:
            raise _too_large(v)
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
        if _ENGLISH.match(" ".join(body.replace("\u00a0", " ").split())):
            vn = _vietnamese(body)
            hint = f"; nếu là số {vn} thì ghi '{vn}'" if vn else ""
            raise CellError("invalid_number", (
                f"Cách ghi số không rõ ràng: '{text}' — theo mẫu của tỉnh dấu '.' phân cách hàng nghìn và dấu ',' "
                f"là dấu thập phân{hint} (số ghi kiểu dấu phẩy phân cách hàng nghìn)"))
        raise CellError("invalid_number", f"Không phải là số hợp lệ: '{text}'")
    if n >= MAX_ABS_NUMBER:
        raise _too_large(text)
    return sign * n


def parse_int(v: object) -> int | None:
    """parse_number, then an integer (not_integer when it has a fractional part)."""
    n = parse_number(v)
    if n is None:
        return None
    text = clean_text(v) if isinstance(v, str) else ""
    if _ONE_COMMA_GROUP.match(text.lstrip("+-–−")):
        # "1,234" / "1,000" people: by the contract the comma is the decimal mark (1.234, 1.000);
        # a count has no decimals, so the writer grouped thousands the English way. Never 1.
        digits = text.lstrip("+-–−").replace(",", "")
        grouped = f"{int(digits):,}".replace(",", ".")
        if n != math.floor(n):
            raise CellError("not_integer", f"Phải là số nguyên: '{text}' (dấu ',' là dấu thập phân; nếu là số "
                                           f"{grouped} thì ghi '{grouped}' hoặc '{digits}')")
        raise CellError("invalid_number", f"Cách ghi số không rõ ràng: '{text}' — dấu ',' là dấu thập phân nên đây "
                                          f"là {format_raw(n)}; nếu là số {grouped} thì ghi '{grouped}' hoặc "
                                          f"'{digits}' (số nguyên ghi kiểu dấu phẩy phân cách hàng nghìn)")
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


#: A year typed alone (2015, or "2015") in a date cell: Excel would read it as serial 2015 =
#: 07/07/1905. Years 1900..2100 are refused with a request for the full date; as a date cell
#: they show 14/03/1905 .. 30/09/1905 (serials 1900..2100), no cooperative's date.
_YEAR_MIN, _YEAR_MAX = 1900, 2100


def _year_only(year: int, shown: str | None = None) -> CellError:
    seen = f" (Excel hiểu là ngày {shown})" if shown else ""
    return CellError("invalid_date", f"Chỉ ghi năm {year}{seen}: cần ghi đủ ngày/tháng/năm theo dạng dd/mm/yyyy, "
                                     f"ví dụ 15/03/{year} (ô ngày chỉ có năm)")


def parse_date(v: object, report_year: int | None = None) -> date | None:
    """Date/datetime cells, Excel serial numbers (1900 system), text dd/mm/yyyy, d/m/yyyy,
    dd-mm-yyyy, dd.mm.yyyy, yyyy-mm-dd. Impossible -> invalid_date; after 31 December of
    `report_year` -> date_after_report_year. Empty/'-' -> None."""
    t = type(v)
    if t is datetime or t is float or t is str:  # the common cells first, with the outcome of below
        fast = _fast_date(v)
        if fast is not None:
            return _in_report_year(fast, report_year)
    _check_error(v)
    if v is None:
        return None
    result: date
    if isinstance(v, bool):
        raise CellError("invalid_date", f"Ngày không hợp lệ: {format_raw(v)}")
    if isinstance(v, (datetime, date)):
        result = v.date() if isinstance(v, datetime) else v
        serial = (result - EXCEL_EPOCH).days
        midnight = not isinstance(v, datetime) or (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0)
        if _YEAR_MIN <= serial <= _YEAR_MAX and midnight:  # a year typed into a date-formatted cell
            raise _year_only(serial, result.strftime("%d/%m/%Y"))
    elif isinstance(v, timedelta):  # fastexcel duration cell: days since the Excel epoch
        raise CellError("invalid_date", f"Ngày không hợp lệ (ô thời lượng): {v}")
    elif isinstance(v, (int, float)):
        f = float(v)
        if math.isnan(f):
            return None
        # Excel serials: 1 = 1900-01-01 ... plausible range 1900..9999
        if f != math.floor(f) or f < 1 or f > 2958465:
            raise CellError("invalid_date", f"Ngày không hợp lệ: {format_raw(v)}")
        if _YEAR_MIN <= f <= _YEAR_MAX:
            raise _year_only(int(f))
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
    return _in_report_year(result, report_year)


def _in_report_year(result: date, report_year: int | None) -> date:
    if report_year is not None and result.year > report_year:
        raise CellError(
            "date_after_report_year",
            f"Ngày {result:%d/%m/%Y} sau ngày 31/12/{report_year} của năm báo cáo",
        )
    return result


#: dd/mm/yyyy, d-m-yyyy, dd.mm.yyyy and yyyy-mm-dd in ASCII without spaces (`clean_text` leaves
#: them as they are; `_DMY` / `_ISO` match them with the same groups).
_FAST_DMY = re.compile(r"([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4})")
_FAST_ISO = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")


def _fast_date(v: object) -> date | None:
    """The date of a common cell exactly as `parse_date`'s general path gives it (an impossible
    day raises the same CellError); None when the cell is not one of those (then that path
    decides): a datetime cell not holding a year alone, a whole Excel serial past 1900-02-28
    outside the year range, a dd/mm/yyyy or yyyy-mm-dd text."""
    if type(v) is datetime:
        result = v.date()
        serial = (result - EXCEL_EPOCH).days
        if _YEAR_MIN <= serial <= _YEAR_MAX and (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0):
            return None
        return result
    if type(v) is float:
        if 61 <= v <= 2958465 and v.is_integer() and not _YEAR_MIN <= v <= _YEAR_MAX:
            return EXCEL_EPOCH + timedelta(days=int(v))
        return None
    if type(v) is str:
        m = _FAST_DMY.fullmatch(v)
        if m is not None:
            return _make_date(int(m[4]), int(m[3]), int(m[1]), v)
        m = _FAST_ISO.fullmatch(v)
        if m is not None:
            return _make_date(int(m[1]), int(m[2]), int(m[3]), v)
    return None


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
    if type(v) is str and "#" not in v:  # a text cell: the common case, as below
        return clean_text(v) or None
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
_DIGITS_DASHES = re.compile(r"[0-9-]+")


def parse_reg_code(v: object) -> str | None:
    """Registration/tax code: spaces and a leading apostrophe removed, digits and '-' only,
    leading zeros kept; an integer numeric cell gives its digits."""
    if type(v) is str and _DIGITS_DASHES.fullmatch(v) and v.strip("-"):
        return v  # digits and '-' only, a digit among them: as below (clean_text leaves it as it is)
    if type(v) is float and v.is_integer() and 0 <= v < MAX_ABS_NUMBER:
        return str(int(v))  # an integer number cell: as below
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
        if v >= MAX_ABS_NUMBER:  # Excel keeps 15 significant digits: the last ones are already lost
            raise CellError("invalid_reg_code", f"Mã số {format_raw(v)} nhập dạng số quá dài: Excel chỉ giữ 15 chữ "
                                                f"số nên các chữ số cuối đã bị mất; ghi mã số dạng văn bản (thêm dấu ' "
                                                f"ở đầu) rồi gửi lại")
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
    if n is None or n >= MAX_ABS_NUMBER:
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
        if abs(f) >= MAX_ABS_NUMBER:
            raise CellError("invalid_target", f"Chỉ tiêu kế hoạch không hợp lệ: {format_raw(v)} (số quá lớn)")
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


# ------------------------------------------------------------------ a column's common cells at once
class _Undecided:
    """The type of `UNDECIDED`."""

    def __repr__(self) -> str:
        return "UNDECIDED"


#: A cell `parse_common_cells` leaves to the column's parser.
UNDECIDED: Final = _Undecided()


def _common_date(v: object, report_year: int | None) -> Any:
    """`parse_date(v, report_year)` for an empty cell and a cell `_fast_date` reads (within the
    report year); UNDECIDED for any other cell (an error included)."""
    if v is None:
        return None
    try:
        d = _fast_date(v)
    except CellError:
        return UNDECIDED
    if d is None or (report_year is not None and d.year > report_year):
        return UNDECIDED
    return d


def parse_common_cells(kind: str, values: list[Any], report_year: int | None) -> list[Any] | None:
    """The typed values of a column's common cells, each exactly what the kind's parser returns
    for it, and UNDECIDED for every other cell (which the parser then decides, errors included):
    an empty cell; a finite float number cell within `MAX_ABS_NUMBER` (number; int when whole);
    a date cell, Excel serial or dd/mm/yyyy / ISO text `_fast_date` reads (date, not after the
    report year); a text cell without '#' (text); a digits-and-dashes text or a whole float
    number cell (reg_code). None for another kind (no common cells: all go to the parser).
    One list comprehension per column, no call per cell for the number kinds
    (tests/test_ingest_speed.py checks it against the parsers)."""
    u = UNDECIDED
    m = MAX_ABS_NUMBER
    if kind == "number":
        return [v if type(v) is float and -m < v < m else None if v is None else u for v in values]
    if kind == "int":
        return [int(v) if type(v) is float and -m < v < m and v.is_integer() else None if v is None else u
                for v in values]
    if kind == "date":  # a datetime cell outside 1905 holds no year alone (serials 1900..2100)
        last = report_year if report_year is not None else 9999
        return [d if type(v) is datetime and (d := v.date()).year != 1905 and d.year <= last
                else _common_date(v, report_year) for v in values]
    if kind == "text":
        return [(clean_text(v) or None) if type(v) is str and "#" not in v else None if v is None else u
                for v in values]
    if kind == "reg_code":
        digits = _DIGITS_DASHES.fullmatch
        return [v if type(v) is str and digits(v) and v.strip("-")
                else str(int(v)) if type(v) is float and v.is_integer() and 0 <= v < m
                else None if v is None else u
                for v in values]
    return None
