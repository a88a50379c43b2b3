"""The four district/province report forms of forms.md as data, and the pandera schemas
generated from them: the input contract written once.

- `FORMS[name]` -> `FormSpec(name, columns)`; each `ColumnSpec` has the canonical name, the
  header aliases exactly as forms.md writes them (matched by `coop.text.header_key`), whether
  it is required, its kind, vocabulary, minimum, pattern, allowed values and default.
  `ColumnSpec.rules()` -> its value rules (`Rule`: a polars expression and a reason code).
- `match_header(form, header_text)` -> canonical column or None.
- `detect_form(headers)` -> the form a header row belongs to (or None).
- `ColumnSpec.parse(value, report_year, reference)` -> typed value, raising `CellError`.
- `TYPED_SCHEMAS[form]` -> polars dtypes of the typed (accepted-row) frame, per
  docs/architecture.md; `empty_frame(form)`.
- `SCHEMAS[form]` pandera (polars backend) `DataFrameSchema` of the typed frame, generated
  from `FORMS` with pandera's object API: one `Column` per typed column (dtype, nullable =
  not required and no default, one `Check` per rule whose `error` is the rule's reason code,
  `metadata` with the form column and the reason code of a null), and
  `validate_frame(form, df) -> (valid, failures)`: reason codes read from pandera's failure
  cases (column + check number -> the Check object), never from check names;
  `check_frame(form, df) -> (conformed, failures)` the same without dropping the failing rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Literal

import pandera.errors as pa_errors
import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from coop.ingest import values as V
from coop.reference import Reference, load_reference
from coop.text import header_key

__all__ = [
    "ColumnKind",
    "ColumnSpec",
    "FormSpec",
    "FORMS",
    "FORM_NAMES",
    "DISTRICT_FORMS",
    "PROVINCE_FORMS",
    "TYPED_SCHEMAS",
    "LINEAGE_SCHEMA",
    "FAILURE_SCHEMA",
    "Rule",
    "SCHEMAS",
    "form_schema",
    "match_header",
    "header_map",
    "detect_form",
    "empty_frame",
    "validate_frame",
    "validate_frames",
    "check_frame",
    "reason_text",
]

ColumnKind = Literal["text", "reg_code", "date", "int", "number", "category", "yesno", "ocop", "target"]
REG_CODE_PATTERN = r"^[0-9-]+$"  # a registration code: digits and '-' only
OCOP_STARS = (3, 4, 5)


@dataclass(frozen=True)
class Rule:
    """One value rule of a typed column: `expr(column)` is true where a value passes; a null
    passes (required-ness is the column's nullable flag). `check()` is the same expression as
    a pandera Check whose `error` is the reason code; the screen in `validate_frame`
    evaluates the expressions of every rule at once."""

    op: Literal["ge", "gt", "isin", "matches"]
    value: Any
    reason_code: str

    def expr(self, column: str) -> pl.Expr:
        c = pl.col(column)
        if self.op == "ge":
            return c.ge(self.value)
        if self.op == "gt":
            return c.gt(self.value)
        if self.op == "isin":
            return c.is_in(pl.lit(pl.Series(list(self.value))).implode())
        if self.op == "matches":
            return c.str.contains(self.value)
        raise ValueError(f"unknown rule {self.op!r}")

    def surely_passes(self, values: list[Any], ignore_na: bool = True) -> bool:
        """True when every value certainly passes `expr` (as a Check: a null passes when
        `ignore_na`); False when one fails *or may fail* — then the polars screen decides.
        Used only to skip that screen on a small frame where nothing can fail (a polars query
        costs ~0.5 ms however small the frame); never True where `expr` would be false:
        a NaN, an integer beyond 2^53, a value of another type, a pattern with syntax beyond
        plain characters/classes/repeats, or text other than printable ASCII is "may fail"."""
        present = []
        for v in values:
            if v is not None:
                present.append(v)
            elif not ignore_na:
                return False
        if self.op in ("ge", "gt"):
            limit = self.value
            if type(limit) not in (int, float) or limit != limit:
                return False
            for v in present:
                t = type(v)
                if t is not float and t is not int or v != v or (t is int and abs(v) > 1 << 53):
                    return False
                if not (v >= limit if self.op == "ge" else v > limit):
                    return False
            return True
        if self.op == "isin":
            allowed = _allowed_set(self.value)
            return all((type(v) is str or type(v) is int and abs(v) <= 1 << 53) and v in allowed for v in present)
        if self.op == "matches":
            rx = _plain_regex(self.value)
            return rx is not None and all(
                type(v) is str and _PRINTABLE_ASCII.fullmatch(v) is not None and rx.search(v) is not None
                for v in present)
        return False

    def surely_passes_series(self, s: pl.Series, ignore_na: bool = True) -> bool:
        """`surely_passes(s.to_list(), ignore_na)`, the same answer from whole-column operations
        (no Python step per value for a number or pattern column; a set for `isin`): a NaN is
        found by the sum (NaN there when any value is NaN, or +inf and -inf meet: a -inf fails
        any finite limit anyway), a limit by the minimum, the 2^53 bound by min/max, the
        printable-ASCII test on the values joined by a space. Another dtype: the list path."""
        if s.null_count() and not ignore_na:
            return False
        dtype = s.dtype
        if self.op in ("ge", "gt") and dtype in (pl.Float64, pl.Int64):
            limit = self.value
            if type(limit) not in (int, float) or limit != limit or math.isinf(limit):
                return self.surely_passes(s.to_list(), ignore_na)
            if s.len() == s.null_count():
                return True
            lo, hi = s.min(), s.max()
            if dtype == pl.Float64:
                total = s.sum()
                if total != total:  # a NaN
                    return False
            elif lo < -(1 << 53) or hi > 1 << 53:  # type: ignore[operator]
                return False
            return bool(lo >= limit if self.op == "ge" else lo > limit)
        if self.op == "isin" and dtype in (pl.String, pl.Int64):
            present = set(s.to_list())
            present.discard(None)
            if dtype == pl.Int64 and present and (min(present) < -(1 << 53) or max(present) > 1 << 53):
                return False
            return present <= _allowed_set(self.value)
        if self.op == "matches" and dtype == pl.String:
            rx = _plain_regex(self.value)
            if rx is None:
                return False
            texts = [v for v in s.to_list() if v is not None]
            return _PRINTABLE_ASCII.fullmatch(" ".join(texts)) is not None and all(map(rx.search, texts))
        return self.surely_passes(s.to_list(), ignore_na)

    def check(self) -> pa.Check:
        """The rule as a pandera Check: `error` = the reason code, `statistics['rule']` = self."""
        return pa.Check(self._pandera_fn, name=self.op, error=self.reason_code,
                        statistics={"value": self.value, "rule": self})

    def _pandera_fn(self, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(self.expr(data.key))


_PRINTABLE_ASCII = re.compile(r"[ -~]*")
# a pattern of plain characters, classes, anchors, groups, alternation and repeats: on printable
# ASCII text (no line break) Python's re and polars' regex find a match alike
_PLAIN_PATTERN = re.compile(r"[\^$\[\]\w\-+*?{},.|() ]*")


@lru_cache(maxsize=64)
def _plain_regex(pattern: Any) -> re.Pattern[str] | None:
    if not isinstance(pattern, str) or not _PLAIN_PATTERN.fullmatch(pattern) or "(?" in pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


@lru_cache(maxsize=64)
def _allowed_set(values: tuple[Any, ...]) -> frozenset[Any]:
    """The values of an `isin` rule that compare alike in Python and polars (text, integers)."""
    return frozenset(v for v in values if type(v) in (str, int))


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    aliases: tuple[str, ...]
    required: bool = False
    kind: ColumnKind = "text"
    vocab: str | None = None
    minimum: float | None = None
    strict_minimum: bool = False  # True: value must be > minimum; False: >= minimum
    pattern: str | None = None  # regular expression the whole typed text must match
    allowed: tuple[Any, ...] | None = None  # accepted typed values outside a vocabulary (OCOP stars)
    default: Any = None  # typed value of an empty cell (so the column is never null)

    @property
    def label(self) -> str:
        """The column's Vietnamese header as the official form writes it (first alias)."""
        return self.aliases[0]

    @property
    def unknown_code(self) -> str:
        """Reason code of a value outside the column's vocabulary or allowed values."""
        return "unknown_plan_code" if self.vocab == "plan_code" else "unknown_category"

    @property
    def nullable(self) -> bool:
        """An empty cell is accepted: the column is not required and has no default."""
        return not self.required and self.default is None

    def typed_columns(self) -> dict[str, type[pl.DataType]]:
        """Typed column(s) of the accepted-row frame -> polars dtype (a target gives three)."""
        if self.kind == "target":
            return {"target_raw": pl.String, "target_min": pl.Float64, "target_max": pl.Float64}
        return {self.name: _KIND_DTYPE[self.kind]}

    def rules(self, reference: Reference | None = None) -> list[Rule]:
        """The value rules of the column, in check order (nulls pass; required-ness is the
        column's `nullable`): minimum -> negative_value (or not_positive when strict),
        vocabulary -> its codes (unknown_category / unknown_plan_code), allowed values ->
        unknown_category, pattern -> invalid_reg_code."""
        out: list[Rule] = []
        if self.minimum is not None:
            out.append(Rule("gt", self.minimum, "not_positive") if self.strict_minimum
                       else Rule("ge", self.minimum, "negative_value"))
        if self.vocab is not None:
            codes = (reference or load_reference()).vocab(self.vocab).codes
            out.append(Rule("isin", tuple(codes), self.unknown_code))
        if self.allowed is not None:
            out.append(Rule("isin", tuple(self.allowed), self.unknown_code))
        if self.pattern is not None:
            code = "invalid_reg_code" if self.kind == "reg_code" else "invalid_value"
            out.append(Rule("matches", self.pattern, code))
        return out

    def parse(self, value: Any, report_year: int | None = None, reference: Reference | None = None) -> Any:
        """Typed value of a raw cell for this column (None = not reported); CellError if bad.

        Ranges (minimum) and required-ness are NOT checked here: pandera does it on the
        typed frame. Category cells are matched to their vocabulary code. A 'target' column
        returns (target_raw, target_min, target_max)."""
        k = self.kind
        if k == "text":
            return V.parse_text(value)
        if k == "reg_code":
            return V.parse_reg_code(value)
        if k == "date":
            return V.parse_date(value, report_year)
        if k == "int":
            return V.parse_int(value)
        if k == "number":
            return V.parse_number(value)
        if k == "yesno":
            return V.parse_yes_no(value)
        if k == "ocop":
            return V.parse_ocop(value)
        if k == "target":
            raw = V.parse_text(value)
            lo, hi = V.parse_target(value)
            return raw, lo, hi
        if k == "category":
            text = V.parse_text(value)
            if text is None:
                return None
            voc = (reference or load_reference()).vocab(self.vocab or "")
            code = voc.match(text)
            if code is None:
                raise V.CellError(self.unknown_code, f"Giá trị '{text}' không có trong danh mục {self.label} "
                                  f"(ghi một trong: {voc.accepted()})")
            return code
        raise ValueError(f"unknown column kind {k!r}")


@dataclass(frozen=True)
class FormSpec:
    name: str
    columns: list[ColumnSpec]
    title: str = ""

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"form {self.name} has no column {name!r}")

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


# ------------------------------------------------------------------ the forms (forms.md)
_REG_CODE = ("Mã số HTX", "Mã số thuế", "MST", "Mã số doanh nghiệp", "Số đăng ký", "Mã số")
_COMMUNE = ("Xã", "Xã/phường/thị trấn", "Địa chỉ", "Địa bàn")
_ESTABLISHED = ("Ngày thành lập", "Ngày đăng ký", "Ngày cấp GCN ĐKHTX", "Ngày cấp đăng ký")
_SECTOR = ("Lĩnh vực", "Lĩnh vực hoạt động", "Ngành nghề")
_STATUS = ("Tình trạng", "Tình trạng hoạt động", "Trạng thái")
_MEMBERS = ("Số thành viên", "Thành viên")
_WORKERS = ("Số lao động", "Lao động", "Số lao động thường xuyên")
_REVENUE = ("Doanh thu", "Tổng doanh thu")
_PROFIT = ("Lợi nhuận", "Lãi", "Lợi nhuận trước thuế")
_INCOME = ("Thu nhập bình quân", "Thu nhập BQ", "Thu nhập bình quân người lao động")


def _register_tail() -> list[ColumnSpec]:
    return [
        ColumnSpec("sector", _SECTOR, True, "category", "sector"),
        ColumnSpec("status", _STATUS, True, "category", "status"),
        ColumnSpec("members", _MEMBERS, True, "int", minimum=0),
        ColumnSpec("workers", _WORKERS, False, "int", minimum=0),
        ColumnSpec("revenue", _REVENUE, False, "number", minimum=0),
        ColumnSpec("profit", _PROFIT, False, "number"),
        ColumnSpec("income", _INCOME, False, "number", minimum=0),
    ]


FORMS: dict[str, FormSpec] = {
    "HTX": FormSpec("HTX", [
        ColumnSpec("reg_code", _REG_CODE, True, "reg_code", pattern=REG_CODE_PATTERN),
        ColumnSpec("name", ("Tên HTX", "Tên hợp tác xã", "Tên đơn vị", "Tên HTX, liên hiệp HTX"), True, "text"),
        ColumnSpec("commune", _COMMUNE, False, "text"),
        ColumnSpec("kind", ("Loại hình",), False, "category", "kind", default="htx"),
        ColumnSpec("established_on", _ESTABLISHED, True, "date"),
        *_register_tail(),
        ColumnSpec("rating", ("Xếp loại", "Phân loại", "Đánh giá"), False, "category", "rating"),
        ColumnSpec("ocop_stars", ("OCOP", "Sản phẩm OCOP", "Số sao OCOP"), False, "ocop", allowed=OCOP_STARS),
        ColumnSpec("high_tech", ("Ứng dụng công nghệ cao", "UDCNC", "HTX điển hình, ứng dụng CNC"), False, "yesno",
                   default=False),
    ], "Danh sách hợp tác xã, liên hiệp hợp tác xã"),
    "THT": FormSpec("THT", [
        # "Tên đơn vị" is shared with form HTX: a sheet with it and no reg_code column is THT
        ColumnSpec("name", ("Tên THT", "Tên tổ hợp tác", "Tên đơn vị"), True, "text"),
        ColumnSpec("commune", _COMMUNE, False, "text"),
        ColumnSpec("established_on", (*_ESTABLISHED, "Ngày chứng thực hợp đồng"), True, "date"),
        *_register_tail(),
    ], "Danh sách tổ hợp tác"),
    "HO_TRO": FormSpec("HO_TRO", [
        ColumnSpec("reg_code", _REG_CODE, True, "reg_code", pattern=REG_CODE_PATTERN),
        ColumnSpec("support_type", ("Nội dung hỗ trợ", "Loại hỗ trợ", "Hình thức hỗ trợ"), True, "category",
                   "support_type"),
        ColumnSpec("amount", ("Số tiền", "Kinh phí", "Kinh phí hỗ trợ"), True, "number",
                   minimum=0, strict_minimum=True),
        ColumnSpec("participants", ("Số lượt", "Số lượt người", "Số người tham gia"), False, "int", minimum=0),
        ColumnSpec("decision_no", ("Số quyết định", "Số QĐ"), False, "text"),
        ColumnSpec("allocated_on", ("Ngày quyết định", "Ngày bố trí", "Ngày cấp"), True, "date"),
    ], "Kinh phí hỗ trợ hợp tác xã"),
    "CHI_TIEU": FormSpec("CHI_TIEU", [
        ColumnSpec("code", ("Mã chỉ tiêu", "Mã"), True, "category", "plan_code"),
        ColumnSpec("label", ("Chỉ tiêu", "Nội dung"), False, "text"),
        ColumnSpec("unit", ("Đơn vị", "Đơn vị tính", "ĐVT"), False, "text"),
        ColumnSpec("target", ("Kế hoạch", "Chỉ tiêu kế hoạch", "KH"), True, "target"),
    ], "Chỉ tiêu kế hoạch phát triển kinh tế tập thể"),
}
FORM_NAMES = tuple(FORMS)
DISTRICT_FORMS = ("HTX", "THT", "HO_TRO")
PROVINCE_FORMS = ("CHI_TIEU",)
_THT_NAME_KEYS = {header_key(a) for a in ("Tên THT", "Tên tổ hợp tác")}


@cache
def _alias_index(form: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for col in FORMS[form].columns:
        for alias in col.aliases:
            key = header_key(alias)
            if key in index and index[key] != col.name:
                raise AssertionError(f"{form}: alias {alias!r} of two columns")
            index[key] = col.name
    return index


def match_header(form: str, header_text: str) -> str | None:
    """Canonical column of `form` for a header cell, ignoring case, diacritics, line breaks,
    repeated spaces and a unit in parentheses; None when it is no column of the form."""
    if header_text is None:
        return None
    return _match_header(form, str(header_text))


@lru_cache(maxsize=1 << 16)
def _match_header(form: str, text: str) -> str | None:
    return _alias_index(form).get(header_key(text))


def header_map(form: str, headers: list[Any]) -> dict[str, int]:
    """canonical column -> position of its first matching header cell."""
    out: dict[str, int] = {}
    for i, h in enumerate(headers):
        if h is None:
            continue
        col = match_header(form, str(h))
        if col is not None and col not in out:
            out[col] = i
    return out


def detect_form(headers: list[Any], allowed: tuple[str, ...] | None = None) -> str | None:
    """The form a header row belongs to, by its header cells (never by the sheet name).

    - CHI_TIEU: a plan code column and a target column.
    - HO_TRO: a support type column and an amount column.
    - THT: a THT name header (Tên THT / Tên tổ hợp tác), or a name column without any
      reg_code column.
    - HTX: a name column and a reg_code column.
    A name form also needs at least two of established_on / sector / status / members, so a
    stray "Tên đơn vị" cell in a title block is not taken for a header. `allowed` restricts
    the candidates."""
    cells = [str(h) for h in headers if h is not None and str(h).strip()]
    keys = {header_key(h) for h in cells}
    found = {f: set(header_map(f, cells)) for f in FORMS}
    candidates: list[str] = []
    if {"code", "target"} <= found["CHI_TIEU"]:
        candidates.append("CHI_TIEU")
    if {"support_type", "amount"} <= found["HO_TRO"]:
        candidates.append("HO_TRO")
    register_cols = {"established_on", "sector", "status", "members"}
    if keys & _THT_NAME_KEYS and len(found["THT"] & register_cols) >= 2:
        candidates.append("THT")
    elif "name" in found["HTX"] and "reg_code" in found["HTX"] and len(found["HTX"] & register_cols) >= 2:
        candidates.append("HTX")
    elif "name" in found["THT"] and "reg_code" not in found["HTX"] and len(found["THT"] & register_cols) >= 2:
        candidates.append("THT")
    if allowed is not None:
        candidates = [c for c in candidates if c in allowed]
    return candidates[0] if candidates else None


# ------------------------------------------------------------------ typed frames
LINEAGE_SCHEMA: dict[str, type[pl.DataType]] = {"source_file": pl.String, "sheet": pl.String, "row_number": pl.Int64}
_KIND_DTYPE: dict[str, type[pl.DataType]] = {
    "text": pl.String, "reg_code": pl.String, "category": pl.String, "date": pl.Date,
    "int": pl.Int64, "number": pl.Float64, "yesno": pl.Boolean, "ocop": pl.Int64,
}


def _typed_schema(form: str) -> dict[str, type[pl.DataType]]:
    out: dict[str, type[pl.DataType]] = {}
    for c in FORMS[form].columns:
        out.update(c.typed_columns())
    return out


TYPED_SCHEMAS: dict[str, dict[str, type[pl.DataType]]] = {f: _typed_schema(f) for f in FORMS}


def empty_frame(form: str, lineage: bool = True) -> pl.DataFrame:
    """An empty accepted-row frame of `form` (canonical columns, then lineage columns)."""
    schema = dict(TYPED_SCHEMAS[form])
    if lineage:
        schema.update(LINEAGE_SCHEMA)
    return pl.DataFrame(schema=schema)


# ------------------------------------------------------------------ pandera schemas (generated from FORMS)
def _vocab_codes(name: str) -> list[str]:
    return list(load_reference().vocab(name).codes)


def _null_reason(column: str) -> str:
    """Reason code of a null in a non-nullable typed column: a target cell that gave no lower
    bound is `invalid_target`, any other empty cell `missing_value`."""
    return "invalid_target" if column == "target_min" else "missing_value"


def _schema_columns(spec: ColumnSpec) -> dict[str, pa.Column]:
    checks = [r.check() for r in spec.rules()]
    out: dict[str, pa.Column] = {}
    for name, dtype in spec.typed_columns().items():
        # target_max is the open end of 'từ N': always nullable; the rules go to the value column
        nullable = spec.nullable or name == "target_max"
        out[name] = pa.Column(
            dtype, checks=checks if name == spec.name else None, nullable=nullable, coerce=False, required=True,
            name=name, metadata={"form_column": spec.name, "null_reason": _null_reason(name)},
        )
    return out


def form_schema(form: str) -> pa.DataFrameSchema:
    """The pandera schema of a form's typed frame, built from `FORMS[form]` (not strict: the
    lineage columns pass through)."""
    columns: dict[str, pa.Column] = {}
    for spec in FORMS[form].columns:
        columns.update(_schema_columns(spec))
    return pa.DataFrameSchema(columns, strict=False, coerce=False, name=form,
                              title=FORMS[form].title or form)


SCHEMAS: dict[str, pa.DataFrameSchema] = {f: form_schema(f) for f in FORMS}

FAILURE_SCHEMA: dict[str, Any] = {
    "row_index": pl.Int64, "column_name": pl.String, "value": pl.String,
    "reason_code": pl.String, "reason": pl.String,
}

_NO_FAILURES = pl.DataFrame(schema=FAILURE_SCHEMA)


def _no_failures() -> pl.DataFrame:
    """A new empty failures frame (`clear()` of a template: no Series built from Python)."""
    return _NO_FAILURES.clear()


# typed column -> the form column it comes from (for labels)
_SOURCE_COLUMN = {"target_raw": "target", "target_min": "target", "target_max": "target"}


def _label(form: str, column: str) -> str:
    try:
        return FORMS[form].column(_SOURCE_COLUMN.get(column, column)).label
    except KeyError:
        return column


def reason_text(form: str, column: str, reason_code: str, value: str | None = None) -> str:
    """The Vietnamese reason (ending with ' [code]') for a failed check of `column`."""
    label = _label(form, column)
    v = f": {value}" if value not in (None, "", "null") else ""
    if reason_code == "missing_value":
        msg = f"Thiếu thông tin bắt buộc ở cột '{label}'"
        if form == "CHI_TIEU" and column.startswith("target"):
            msg = f"Thiếu chỉ tiêu kế hoạch ở cột '{label}'"
    elif reason_code == "negative_value":
        msg = f"Cột '{label}' không được âm{v}"
    elif reason_code == "not_positive":
        msg = f"Cột '{label}' phải lớn hơn 0{v}"
    elif reason_code == "unknown_category":
        if column == "ocop_stars":
            msg = f"Số sao OCOP chỉ là 3, 4 hoặc 5{v}"
        else:
            vocab = FORMS[form].column(column).vocab if column in FORMS[form].column_names else None
            accepted = f" (ghi một trong: {load_reference().vocab(vocab).accepted()})" if vocab else ""
            msg = f"Giá trị không có trong danh mục '{label}'{v}{accepted}"
    elif reason_code == "unknown_plan_code":
        msg = f"Mã chỉ tiêu không có trong danh mục{v} (ghi một trong: {', '.join(_vocab_codes('plan_code'))})"
    elif reason_code == "invalid_reg_code":
        msg = f"Mã số chỉ gồm chữ số và dấu '-'{v}"
    elif reason_code == "invalid_target":
        msg = f"Chỉ tiêu kế hoạch không hợp lệ{v}"
    else:
        msg = f"Giá trị không hợp lệ ở cột '{label}'{v}"
    return f"{msg} [{reason_code}]"


_DEFAULTS: dict[str, dict[str, Any]] = {
    f: {c.name: c.default for c in spec.columns if c.default is not None} for f, spec in FORMS.items()}
_NO_OPTIMIZATION = pl.QueryOptFlags.none()  # plain projections: the optimizer only costs time


def _conform_exprs(form: str, have: dict[str, Any]) -> list[pl.Expr]:
    """The projection of `_conform` for a frame whose schema is `have`."""
    schema = TYPED_SCHEMAS[form]
    exprs: list[pl.Expr] = []
    for name, dtype in schema.items():
        if name not in have:
            e = pl.lit(None, dtype=dtype)
        elif have[name] != dtype:
            e = pl.col(name).cast(dtype, strict=True)
        else:
            e = pl.col(name)
        default = _DEFAULTS[form].get(name)
        if default is not None:
            e = e.fill_null(default)
        exprs.append(e.alias(name))
    exprs += [pl.col(c) for c in have if c not in schema]
    return exprs


def _conform(form: str, df: pl.DataFrame) -> pl.DataFrame:
    """Cast the canonical columns to their typed dtypes, add missing ones as nulls, and
    apply the contract's defaults (`ColumnSpec.default`: kind -> 'htx', high_tech -> False);
    canonical columns first, then the others (lineage) as they were. One projection (none
    when no column needs a cast: see `_conform_direct`)."""
    direct = _conform_direct(form, df)
    if direct is not None:
        return direct
    return df.lazy().select(_conform_exprs(form, dict(df.schema))).collect(optimizations=_NO_OPTIMIZATION)


def _conform_direct(form: str, df: pl.DataFrame) -> pl.DataFrame | None:
    """`_conform` built from Series, without a polars query (a query costs ~0.3 ms however
    small the frame: the reader builds one frame per form and file), when every canonical
    column present already has its typed dtype (the reader builds them so); None otherwise."""
    schema = TYPED_SCHEMAS[form]
    have = df.schema
    if any(name in have and have[name] != dtype for name, dtype in schema.items()):
        return None
    n = df.height
    out: list[pl.Series] = []
    for name, dtype in schema.items():
        default = _DEFAULTS[form].get(name)
        if name not in have:
            s = pl.Series(name, [default] * n, dtype=dtype)
        else:
            s = df.get_column(name)
            if default is not None and s.null_count():
                s = pl.Series(name, [default if v is None else v for v in s.to_list()], dtype=dtype)
        out.append(s)
    out += [df.get_column(c) for c in have if c not in schema]
    return pl.DataFrame(out)


_SCREEN = "__screen_"  # prefix of the screen's result columns


@cache
def _screen_exprs(form: str) -> tuple[tuple[str, ...], tuple[pl.Expr, ...]]:
    """One boolean expression per (typed column, check) of the form's pandera schema, true
    where the cell passes: not-null for a non-nullable Column (pandera counts NaN as null in
    a float column), and each Check's rule with the Check's ignore_na (a null passes).
    Returns (the typed column of each expression, the expressions)."""
    owners: list[str] = []
    exprs: list[pl.Expr] = []
    for name, col in SCHEMAS[form].columns.items():
        if not col.nullable:
            e = pl.col(name).is_not_null()
            if TYPED_SCHEMAS[form][name] == pl.Float64:
                e = e & pl.col(name).is_not_nan()
            owners.append(name)
            exprs.append(e.fill_null(False))
        for check in col.checks:
            rule: Rule = check.statistics["rule"]
            owners.append(name)
            exprs.append(rule.expr(name).fill_null(bool(check.ignore_na)))
    return tuple(owners), tuple(e.alias(f"{_SCREEN}{i}") for i, e in enumerate(exprs))


@cache
def _rule_exprs(form: str) -> tuple[pl.Expr, ...]:
    """The screen's expressions of the Checks only: `_screen_exprs` without the not-null ones
    (which come first of their column's, one per non-nullable Column)."""
    _, exprs = _screen_exprs(form)
    out: list[pl.Expr] = []
    i = 0
    for col in SCHEMAS[form].columns.values():
        if not col.nullable:
            i += 1
        out += exprs[i:i + len(col.checks)]
        i += len(col.checks)
    return tuple(out)


def _surely_passes(form: str, df: pl.DataFrame) -> bool:
    """Every value of every checked column certainly passes its Checks (`Rule.surely_passes`)."""
    for name, col in SCHEMAS[form].columns.items():
        if not col.checks:
            continue
        if name not in df.columns:
            return False
        s = df.get_column(name)
        for check in col.checks:
            if not check.statistics["rule"].surely_passes_series(s, bool(check.ignore_na)):
                return False
    return True


def _nothing_null(form: str, df: pl.DataFrame) -> bool:
    """No null (and no NaN in a float column) in any non-nullable column of the schema: the
    screen's not-null expressions would all pass. Read from the Series directly (no query)."""
    for name, col in SCHEMAS[form].columns.items():
        if col.nullable:
            continue
        if name not in df.columns:
            return False
        s = df.get_column(name)
        if s.null_count():
            return False
        if TYPED_SCHEMAS[form][name] == pl.Float64 and s.sum() != s.sum():
            return False  # a NaN (or +inf and -inf: the screen decides then, as for a NaN)
    return True


@cache
def _sub_schema(form: str, columns: tuple[str, ...]) -> pa.DataFrameSchema:
    full = SCHEMAS[form]
    return pa.DataFrameSchema({c: full.columns[c] for c in columns}, strict=False, coerce=False, name=form)


def _screen(form: str, df: pl.DataFrame, ok: pl.DataFrame | None = None) -> tuple[list[int], tuple[str, ...]]:
    """Positions of the rows with at least one failing cell and the typed columns that fail,
    from ONE polars pass over every rule of the schema (no per-row Python). `ok`: that pass,
    already evaluated (rows x rules, bool; `check_frame` does it with the conforming)."""
    owners, exprs = _screen_exprs(form)
    if ok is None:
        if _nothing_null(form, df):  # the not-null expressions pass: evaluate the other rules only
            if _surely_passes(form, df):
                return [], ()  # no value can fail any Check (decided without a query)
            rules = _rule_exprs(form)
            ok = df.lazy().select(rules).collect(optimizations=_NO_OPTIMIZATION)
            if all(s.all() for s in ok.iter_columns()):
                return [], ()  # what the whole screen gives when every cell passes
        ok = df.lazy().select(exprs).collect(optimizations=_NO_OPTIMIZATION)  # rows x rules, bool
    failing = [i for i, s in enumerate(ok.iter_columns()) if not s.all()]
    if not failing:
        return [], ()
    bad = ~ok.to_series(failing[0])
    for i in failing[1:]:
        bad = bad | ~ok.to_series(i)
    rows = bad.arg_true().to_list()
    return rows, tuple(dict.fromkeys(owners[i] for i in failing))


def _check_reason(schema: pa.DataFrameSchema, column: str | None, check: str, check_number: Any) -> str:
    """Reason code of one pandera failure case, from the schema objects: a failed Check gives
    its `error` (the rule's reason code), a null in a non-nullable column the column's
    `metadata['null_reason']`, a missing column `missing_value`."""
    if column is None or column not in schema.columns:
        return "missing_value" if check == "column_in_dataframe" else "invalid_value"
    col = schema.columns[column]
    if check_number is not None:
        return str(col.checks[int(check_number)].error)
    if check == "not_nullable":
        return str((col.metadata or {}).get("null_reason", "missing_value"))
    return "invalid_value"  # e.g. a dtype failure (cannot happen after _conform)


def _failures(form: str, df: pl.DataFrame, ok: pl.DataFrame | None = None) -> pl.DataFrame:
    """The failing cells of a conformed frame (FAILURE_SCHEMA, sorted by row then column).

    One polars pass evaluates every rule of the schema (`_screen`); when every cell passes
    pandera is not called. Otherwise pandera validates the failing rows against the columns
    that failed (the same Column and Check objects), and its failure cases give the cells and
    their reason codes."""
    if df.height == 0:
        return _no_failures()
    rows, cols = _screen(form, df, ok)
    if not rows:
        return _no_failures()
    schema = _sub_schema(form, cols)
    position = rows if len(rows) < df.height else None
    try:
        schema.validate(df[rows] if position is not None else df, lazy=True)
        return _no_failures()  # pandera is the authority: nothing fails
    except pa_errors.SchemaErrors as exc:
        fc = exc.failure_cases
    order = {n: i for i, n in enumerate(TYPED_SCHEMAS[form])}
    cells: dict[tuple[int, str, str], dict[str, Any]] = {}  # one failure per (row, column, reason)
    for rec in fc.iter_rows(named=True):
        column = rec.get("column")
        code = _check_reason(schema, column, str(rec.get("check") or ""), rec.get("check_number"))
        value = rec.get("failure_case")
        value = None if value in (None, "null") else str(value)
        index = rec.get("index")
        if index is None:  # schema-level: every validated row
            targets = position if position is not None else list(range(df.height))
        else:
            targets = [position[int(index)] if position is not None else int(index)]
        column = column or ""
        for i in targets:
            if (int(i), column, code) not in cells:
                cells[(int(i), column, code)] = {"row_index": int(i), "column_name": column, "value": value,
                                                 "reason_code": code, "reason": reason_text(form, column, code, value)}
    ranked = sorted(cells.values(), key=lambda r: (r["row_index"], order.get(r["column_name"], len(order))))
    return pl.DataFrame(ranked, schema=FAILURE_SCHEMA)


def _without_rows(df: pl.DataFrame, failures: pl.DataFrame) -> pl.DataFrame:
    if failures.height == 0:
        return df
    bad = failures.get_column("row_index").unique()
    return df.filter(~pl.int_range(pl.len(), dtype=pl.Int64).is_in(pl.lit(bad).implode()))


def validate_frame(form: str, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate a typed frame of `form` with its pandera schema (lazy: every failure).

    Returns (valid rows, failures). Valid rows keep every column of `df` (lineage included),
    canonical columns cast to their typed dtypes and defaults applied. `failures` has one
    row per failing cell: row_index (position in df), column_name, value (the typed value
    as text, may be null), reason_code, reason (Vietnamese + ' [code]'); sorted by
    row_index then the form's column order. A frame where every cell passes costs one
    polars pass; pandera runs on the failing rows only (see `_failures`)."""
    conformed, failures = check_frame(form, df)
    return _without_rows(conformed, failures), failures


def check_frame(form: str, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`validate_frame` without dropping the failing rows: (the conformed frame, every row of
    `df` in order, canonical columns cast and defaults applied; the failures, row_index =
    position in it). For a caller that drops rows for reasons of its own as well (the reader:
    cells the parser refused, duplicates) in one pass; the same pandera schema decides."""
    if form not in SCHEMAS:
        raise KeyError(f"unknown form {form!r}")
    direct = _conform_direct(form, df)
    if direct is not None:
        return direct, _failures(form, direct)
    conform = _conform_exprs(form, dict(df.schema))
    names = list(TYPED_SCHEMAS[form]) + [c for c in df.columns if c not in TYPED_SCHEMAS[form]]
    _, screen = _screen_exprs(form)
    # one polars pass: the conformed columns and, over them, the screen's rules
    both = df.lazy().select(conform).with_columns(screen).collect(optimizations=_NO_OPTIMIZATION)
    conformed = both[names]
    return conformed, _failures(form, conformed, both[[e.meta.output_name() for e in screen]])


def validate_frames(form: str, frames: list[pl.DataFrame]) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    """`validate_frame` of several frames of one form at once (e.g. every sheet of a file):
    one screen and at most one pandera run over their typed columns; for each frame the same
    (valid, failures) as `validate_frame(form, frame)` (row_index within that frame)."""
    if form not in SCHEMAS:
        raise KeyError(f"unknown form {form!r}")
    conformed = [_conform(form, df) for df in frames]
    if len(conformed) <= 1:
        return [(_without_rows(df, f), f) for df in conformed for f in [_failures(form, df)]]
    typed = list(TYPED_SCHEMAS[form])
    failures = _failures(form, pl.concat([df.select(typed) for df in conformed], how="vertical"))
    out: list[tuple[pl.DataFrame, pl.DataFrame]] = []
    offset = 0
    for df in conformed:
        mine = failures.filter(pl.col("row_index").is_between(offset, offset + df.height - 1)) \
            .with_columns(pl.col("row_index") - offset)
        out.append((_without_rows(df, mine), mine))
        offset += df.height
    return out
