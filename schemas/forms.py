"""The four district/province report forms of forms.md as data, and their pandera models.

- `FORMS[name]` -> `FormSpec(name, columns)`; each `ColumnSpec` has the canonical name, the
  header aliases exactly as forms.md writes them (matched by `coop.text.header_key`), whether
  it is required, its kind, vocabulary and minimum.
- `match_header(form, header_text)` -> canonical column or None.
- `detect_form(headers)` -> the form a header row belongs to (or None).
- `ColumnSpec.parse(value, report_year, reference)` -> typed value, raising `CellError`.
- `TYPED_SCHEMAS[form]` -> polars dtypes of the typed (accepted-row) frame, per
  docs/architecture.md; `empty_frame(form)`.
- `MODELS[form]` pandera (polars backend) DataFrameModels on the typed frame, and
  `validate_frame(form, df) -> (valid, failures)`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Optional

import pandera.errors as pa_errors
import pandera.polars as pa
import polars as pl

from coop import values as V
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
    "MODELS",
    "match_header",
    "header_map",
    "detect_form",
    "empty_frame",
    "validate_frame",
    "reason_text",
]

ColumnKind = Literal["text", "reg_code", "date", "int", "number", "category", "yesno", "ocop", "target"]


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    aliases: tuple[str, ...]
    required: bool = False
    kind: ColumnKind = "text"
    vocab: str | None = None
    minimum: float | None = None
    strict_minimum: bool = False  # True: value must be > minimum; False: >= minimum

    @property
    def label(self) -> str:
        """The column's Vietnamese header as the official form writes it (first alias)."""
        return self.aliases[0]

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
                rc = "unknown_plan_code" if self.vocab == "plan_code" else "unknown_category"
                raise V.CellError(rc, f"Giá trị '{text}' không có trong danh mục {self.label} "
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
        ColumnSpec("reg_code", _REG_CODE, True, "reg_code"),
        ColumnSpec("name", ("Tên HTX", "Tên hợp tác xã", "Tên đơn vị", "Tên HTX, liên hiệp HTX"), True, "text"),
        ColumnSpec("commune", _COMMUNE, False, "text"),
        ColumnSpec("kind", ("Loại hình",), False, "category", "kind"),
        ColumnSpec("established_on", _ESTABLISHED, True, "date"),
        *_register_tail(),
        ColumnSpec("rating", ("Xếp loại", "Phân loại", "Đánh giá"), False, "category", "rating"),
        ColumnSpec("ocop_stars", ("OCOP", "Sản phẩm OCOP", "Số sao OCOP"), False, "ocop"),
        ColumnSpec("high_tech", ("Ứng dụng công nghệ cao", "UDCNC", "HTX điển hình, ứng dụng CNC"), False, "yesno"),
    ], "Danh sách hợp tác xã, liên hiệp hợp tác xã"),
    "THT": FormSpec("THT", [
        # "Tên đơn vị" is shared with form HTX: a sheet with it and no reg_code column is THT
        ColumnSpec("name", ("Tên THT", "Tên tổ hợp tác", "Tên đơn vị"), True, "text"),
        ColumnSpec("commune", _COMMUNE, False, "text"),
        ColumnSpec("established_on", (*_ESTABLISHED, "Ngày chứng thực hợp đồng"), True, "date"),
        *_register_tail(),
    ], "Danh sách tổ hợp tác"),
    "HO_TRO": FormSpec("HO_TRO", [
        ColumnSpec("reg_code", _REG_CODE, True, "reg_code"),
        ColumnSpec("support_type", ("Nội dung hỗ trợ", "Loại hỗ trợ", "Hình thức hỗ trợ"), True, "category", "support_type"),
        ColumnSpec("amount", ("Số tiền", "Kinh phí", "Kinh phí hỗ trợ"), True, "number", minimum=0, strict_minimum=True),
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


@lru_cache(maxsize=None)
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
    return _alias_index(form).get(header_key(str(header_text)))


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
LINEAGE_SCHEMA: dict[str, pl.DataType] = {"source_file": pl.String, "sheet": pl.String, "row_number": pl.Int64}
_KIND_DTYPE: dict[str, Any] = {
    "text": pl.String, "reg_code": pl.String, "category": pl.String, "date": pl.Date,
    "int": pl.Int64, "number": pl.Float64, "yesno": pl.Boolean, "ocop": pl.Int64,
}


def _typed_schema(form: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in FORMS[form].columns:
        if c.kind == "target":
            out.update({"target_raw": pl.String, "target_min": pl.Float64, "target_max": pl.Float64})
        else:
            out[c.name] = _KIND_DTYPE[c.kind]
    return out


TYPED_SCHEMAS: dict[str, dict[str, Any]] = {f: _typed_schema(f) for f in FORMS}


def empty_frame(form: str, lineage: bool = True) -> pl.DataFrame:
    """An empty accepted-row frame of `form` (canonical columns, then lineage columns)."""
    schema = dict(TYPED_SCHEMAS[form])
    if lineage:
        schema.update(LINEAGE_SCHEMA)
    return pl.DataFrame(schema=schema)


# ------------------------------------------------------------------ pandera models
def _vocab_codes(name: str) -> list[str]:
    return list(load_reference().vocab(name).codes)


_REG_CODE_PATTERN = r"^[0-9-]+$"


class _RegisterModel(pa.DataFrameModel):
    """Columns shared by the HTX and THT registers."""

    name: str = pa.Field(nullable=False)
    commune: Optional[str] = pa.Field(nullable=True)
    established_on: _dt.date = pa.Field(nullable=False)
    sector: str = pa.Field(nullable=False, isin=_vocab_codes("sector"))
    status: str = pa.Field(nullable=False, isin=_vocab_codes("status"))
    members: int = pa.Field(nullable=False, ge=0)
    workers: Optional[int] = pa.Field(nullable=True, ge=0)
    revenue: Optional[float] = pa.Field(nullable=True, ge=0)
    profit: Optional[float] = pa.Field(nullable=True)
    income: Optional[float] = pa.Field(nullable=True, ge=0)

    class Config:
        strict = False
        coerce = False


class HtxModel(_RegisterModel):
    reg_code: str = pa.Field(nullable=False, str_matches=_REG_CODE_PATTERN)
    kind: str = pa.Field(nullable=False, isin=_vocab_codes("kind"))
    rating: Optional[str] = pa.Field(nullable=True, isin=_vocab_codes("rating"))
    ocop_stars: Optional[int] = pa.Field(nullable=True, isin=[3, 4, 5])
    high_tech: bool = pa.Field(nullable=False)


class ThtModel(_RegisterModel):
    """Form THT: the shared register columns only (no reg_code)."""


class HoTroModel(pa.DataFrameModel):
    reg_code: str = pa.Field(nullable=False, str_matches=_REG_CODE_PATTERN)
    support_type: str = pa.Field(nullable=False, isin=_vocab_codes("support_type"))
    amount: float = pa.Field(nullable=False, gt=0)
    participants: Optional[int] = pa.Field(nullable=True, ge=0)
    decision_no: Optional[str] = pa.Field(nullable=True)
    allocated_on: _dt.date = pa.Field(nullable=False)

    class Config:
        strict = False
        coerce = False


class ChiTieuModel(pa.DataFrameModel):
    code: str = pa.Field(nullable=False, isin=_vocab_codes("plan_code"))
    label: Optional[str] = pa.Field(nullable=True)
    unit: Optional[str] = pa.Field(nullable=True)
    target_raw: str = pa.Field(nullable=False)
    target_min: float = pa.Field(nullable=False)
    target_max: Optional[float] = pa.Field(nullable=True)

    class Config:
        strict = False
        coerce = False


MODELS: dict[str, type[pa.DataFrameModel]] = {
    "HTX": HtxModel, "THT": ThtModel, "HO_TRO": HoTroModel, "CHI_TIEU": ChiTieuModel,
}

FAILURE_SCHEMA: dict[str, Any] = {
    "row_index": pl.Int64, "column_name": pl.String, "value": pl.String,
    "reason_code": pl.String, "reason": pl.String,
}

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


def _reason_code(form: str, column: str, check: str) -> str:
    if check == "not_nullable":
        return "invalid_target" if column == "target_min" else "missing_value"
    if check.startswith("greater_than_or_equal_to"):
        return "negative_value"
    if check.startswith("greater_than"):
        return "not_positive"
    if check.startswith("isin"):
        return "unknown_plan_code" if (form, column) == ("CHI_TIEU", "code") else "unknown_category"
    if check.startswith("str_matches"):
        return "invalid_reg_code"
    return "invalid_value"


def _conform(form: str, df: pl.DataFrame) -> pl.DataFrame:
    """Cast the canonical columns to their typed dtypes, add missing ones as nulls, and
    apply the contract's defaults (kind -> 'htx', high_tech -> False)."""
    schema = TYPED_SCHEMAS[form]
    exprs = []
    for name, dtype in schema.items():
        if name in df.columns:
            if df.schema[name] != dtype:
                exprs.append(pl.col(name).cast(dtype, strict=True))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    if exprs:
        df = df.with_columns(exprs)
    if form == "HTX":
        df = df.with_columns(pl.col("kind").fill_null("htx"), pl.col("high_tech").fill_null(False))
    return df.select([*schema, *[c for c in df.columns if c not in schema]])


def validate_frame(form: str, df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate a typed frame of `form` with its pandera model (lazy: every failure).

    Returns (valid rows, failures). Valid rows keep every column of `df` (lineage included),
    canonical columns cast to their typed dtypes and defaults applied. `failures` has one
    row per failing cell: row_index (position in df), column_name, value (the typed value
    as text, may be null), reason_code, reason (Vietnamese + ' [code]'); sorted by
    row_index then the form's column order."""
    if form not in MODELS:
        raise KeyError(f"unknown form {form!r}")
    df = _conform(form, df)
    failures = pl.DataFrame(schema=FAILURE_SCHEMA)
    if df.height == 0:
        return df, failures
    try:
        MODELS[form].validate(df, lazy=True)
        return df, failures
    except pa_errors.SchemaErrors as exc:
        fc = exc.failure_cases
    rows: list[dict[str, Any]] = []
    for rec in fc.iter_rows(named=True):
        column = rec.get("column")
        check = str(rec.get("check") or "")
        index = rec.get("index")
        value = rec.get("failure_case")
        value = None if value in (None, "null") else str(value)
        if column is None:
            column = ""
        code = _reason_code(form, column, check)
        targets = [index] if index is not None else list(range(df.height))  # schema-level: all rows
        for i in targets:
            rows.append({
                "row_index": int(i), "column_name": column, "value": value,
                "reason_code": code, "reason": reason_text(form, column, code, value),
            })
    order = {n: i for i, n in enumerate(TYPED_SCHEMAS[form])}
    failures = (
        pl.DataFrame(rows, schema=FAILURE_SCHEMA)
        .unique(subset=["row_index", "column_name", "reason_code"], keep="first", maintain_order=True)
        .with_columns(pl.col("column_name").replace_strict(order, default=len(order), return_dtype=pl.Int64).alias("_o"))
        .sort(["row_index", "_o"])
        .drop("_o")
    )
    bad = failures.get_column("row_index").unique()
    valid = df.with_row_index("_ri").filter(~pl.col("_ri").is_in(bad.implode())).drop("_ri")
    return valid, failures
