"""schemas/forms.py: forms as data, header matching, form detection, cell parsing per column,
pandera validation mapped to reason codes."""

import datetime as dt

import polars as pl
import pytest

from coop.ingest.values import CellError
from schemas.forms import (
    FAILURE_SCHEMA,
    FORMS,
    TYPED_SCHEMAS,
    detect_form,
    empty_frame,
    header_map,
    match_header,
    validate_frame,
)

# forms.md tables, transcribed independently of schemas/forms.py
ALIASES = {
    "HTX": {
        "reg_code": ["Mã số HTX", "Mã số thuế", "MST", "Mã số doanh nghiệp", "Số đăng ký", "Mã số"],
        "name": ["Tên HTX", "Tên hợp tác xã", "Tên đơn vị", "Tên HTX, liên hiệp HTX"],
        "commune": ["Xã", "Xã/phường/thị trấn", "Địa chỉ", "Địa bàn"],
        "kind": ["Loại hình"],
        "established_on": ["Ngày thành lập", "Ngày đăng ký", "Ngày cấp GCN ĐKHTX", "Ngày cấp đăng ký"],
        "sector": ["Lĩnh vực", "Lĩnh vực hoạt động", "Ngành nghề"],
        "status": ["Tình trạng", "Tình trạng hoạt động", "Trạng thái"],
        "members": ["Số thành viên", "Thành viên"],
        "workers": ["Số lao động", "Lao động", "Số lao động thường xuyên"],
        "revenue": ["Doanh thu", "Tổng doanh thu"],
        "profit": ["Lợi nhuận", "Lãi", "Lợi nhuận trước thuế"],
        "income": ["Thu nhập bình quân", "Thu nhập BQ", "Thu nhập bình quân người lao động"],
        "rating": ["Xếp loại", "Phân loại", "Đánh giá"],
        "ocop_stars": ["OCOP", "Sản phẩm OCOP", "Số sao OCOP"],
        "high_tech": ["Ứng dụng công nghệ cao", "UDCNC", "HTX điển hình, ứng dụng CNC"],
    },
    "THT": {
        "name": ["Tên THT", "Tên tổ hợp tác"],
        "established_on": ["Ngày thành lập", "Ngày chứng thực hợp đồng"],
        "members": ["Số thành viên", "Thành viên"],
        "income": ["Thu nhập bình quân", "Thu nhập BQ"],
    },
    "HO_TRO": {
        "reg_code": ["Mã số HTX", "Mã số thuế", "MST", "Mã số doanh nghiệp", "Số đăng ký", "Mã số"],
        "support_type": ["Nội dung hỗ trợ", "Loại hỗ trợ", "Hình thức hỗ trợ"],
        "amount": ["Số tiền", "Kinh phí", "Kinh phí hỗ trợ"],
        "participants": ["Số lượt", "Số lượt người", "Số người tham gia"],
        "decision_no": ["Số quyết định", "Số QĐ"],
        "allocated_on": ["Ngày quyết định", "Ngày bố trí", "Ngày cấp"],
    },
    "CHI_TIEU": {
        "code": ["Mã chỉ tiêu", "Mã"],
        "label": ["Chỉ tiêu", "Nội dung"],
        "unit": ["Đơn vị", "Đơn vị tính", "ĐVT"],
        "target": ["Kế hoạch", "Chỉ tiêu kế hoạch", "KH"],
    },
}
REQUIRED = {
    "HTX": {"reg_code", "name", "established_on", "sector", "status", "members"},
    "THT": {"name", "established_on", "sector", "status", "members"},
    "HO_TRO": {"reg_code", "support_type", "amount", "allocated_on"},
    "CHI_TIEU": {"code", "target"},
}
ALIAS_CASES = [(f, c, a) for f, cols in ALIASES.items() for c, aliases in cols.items() for a in aliases]


@pytest.mark.parametrize("form,column,alias", ALIAS_CASES)
def test_every_alias(form, column, alias):
    assert match_header(form, alias) == column
    assert match_header(form, alias.upper()) == column
    assert match_header(form, f"{alias}\n(đơn vị)") == column


def test_forms_declare_required_columns():
    assert set(FORMS) == {"HTX", "THT", "HO_TRO", "CHI_TIEU"}
    for form, req in REQUIRED.items():
        assert set(FORMS[form].required) == req, form


@pytest.mark.parametrize(
    "form,header,column",
    [
        ("HTX", "Doanh thu (triệu đồng)", "revenue"),
        ("HTX", "DOANH THU\n(tr.đ)", "revenue"),
        ("HTX", "Thu nhap binh quan (trieu dong/nguoi/thang)", "income"),
        ("HTX", "So  thanh   vien", "members"),
        ("HTX", "Ghi chú", None),
        ("HTX", "STT", None),
        ("HTX", "Tên THT", None),
        ("HO_TRO", "Ngày cấp", "allocated_on"),
        ("HO_TRO", "Tên HTX", None),
        ("CHI_TIEU", "Mã số", None),
    ],
)
def test_match_header_tolerance(form, header, column):
    assert match_header(form, header) == column


def test_header_map_first_match_wins():
    assert header_map("HTX", ["STT", "Tên HTX", None, "Mã số thuế", "Mã số", "Ghi chú"]) == {"name": 1, "reg_code": 3}


@pytest.mark.parametrize(
    "headers,form",
    [
        (["STT", "Tên HTX", "Mã số thuế", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên"], "HTX"),
        (["TT", "Tên đơn vị", "MST", "Ngày đăng ký", "Ngành nghề", "Trạng thái", "Thành viên"], "HTX"),
        (["STT", "Tên THT", "Xã", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên"], "THT"),
        (["STT", "Tên tổ hợp tác", "Ngày chứng thực hợp đồng", "Lĩnh vực"], "THT"),
        (["STT", "Tên đơn vị", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên"], "THT"),  # no reg_code
        (["Mã số HTX", "Tên HTX", "Nội dung hỗ trợ", "Số tiền (triệu đồng)", "Ngày quyết định"], "HO_TRO"),
        (["STT", "Mã chỉ tiêu", "Chỉ tiêu", "ĐVT", "Kế hoạch"], "CHI_TIEU"),
        (["UBND HUYỆN LẠC SƠN", None, None], None),
        (["Tên đơn vị", "Ghi chú"], None),
        ([], None),
    ],
)
def test_detect_form(headers, form):
    assert detect_form(headers) == form


def test_detect_form_allowed():
    headers = ["STT", "Mã chỉ tiêu", "Chỉ tiêu", "Kế hoạch"]
    assert detect_form(headers, allowed=("HTX", "THT", "HO_TRO")) is None


# ------------------------------------------------------------------ ColumnSpec.parse
def test_column_parse():
    htx = FORMS["HTX"]
    assert htx.column("sector").parse("TM - DV") == "trade_services"
    assert htx.column("kind").parse("LH HTX") == "union"
    assert htx.column("kind").parse(None) is None
    assert htx.column("rating").parse("Yếu kém") == "weak"
    assert htx.column("members").parse("1.250") == 1250
    assert htx.column("established_on").parse("15/03/2020", 2020) == dt.date(2020, 3, 15)
    assert htx.column("high_tech").parse("x") is True
    assert htx.column("ocop_stars").parse("4*") == 4
    assert htx.column("reg_code").parse("'0101") == "0101"
    assert FORMS["CHI_TIEU"].column("target").parse("6 - 8%") == ("6 - 8%", 6.0, 8.0)
    assert FORMS["CHI_TIEU"].column("code").parse("new_htx") == "new_htx"
    with pytest.raises(CellError) as ei:
        htx.column("sector").parse("Nuôi ong")
    assert ei.value.code == "unknown_category" and "Nuôi ong" in ei.value.message
    with pytest.raises(CellError) as ei:
        FORMS["CHI_TIEU"].column("code").parse("new_coop")
    assert ei.value.code == "unknown_plan_code"
    with pytest.raises(CellError) as ei:
        htx.column("established_on").parse("31/02/2020", 2020)
    assert ei.value.code == "invalid_date"


# ------------------------------------------------------------------ pandera validation
def htx_frame(**overrides):
    base = {
        "reg_code": ["5400100001", "5400100002"],
        "name": ["HTX A", "HTX B"],
        "commune": ["Xã A", None],
        "kind": ["htx", None],
        "established_on": [dt.date(2019, 1, 2), dt.date(2020, 5, 6)],
        "sector": ["agriculture", "tourism"],
        "status": ["active", "dissolved"],
        "members": [7, 0],
        "workers": [None, 3],
        "revenue": [100.0, 0.0],
        "profit": [-20.5, None],
        "income": [3.5, None],
        "rating": ["good", None],
        "ocop_stars": [3, None],
        "high_tech": [True, None],
        "source_file": ["2020/lac-son/a.xlsx"] * 2,
        "sheet": ["HTX"] * 2,
        "row_number": [8, 9],
    }
    base.update(overrides)
    return pl.DataFrame(base)


def test_valid_htx_kept_with_defaults_and_lineage():
    valid, failures = validate_frame("HTX", htx_frame())
    assert failures.height == 0 and failures.schema == pl.Schema(FAILURE_SCHEMA)
    assert valid.height == 2
    assert valid.get_column("kind").to_list() == ["htx", "htx"]       # default kind
    assert valid.get_column("high_tech").to_list() == [True, False]   # empty yes/no = no
    assert valid.get_column("row_number").to_list() == [8, 9]
    assert list(valid.columns[:15]) == list(TYPED_SCHEMAS["HTX"])
    assert {"source_file", "sheet", "row_number"} <= set(valid.columns)


def failures_of(form, df):
    valid, failures = validate_frame(form, df)
    return valid, {(r["row_index"], r["column_name"], r["reason_code"]) for r in failures.iter_rows(named=True)}, failures


def test_missing_value():
    df = htx_frame(name=["HTX A", None], established_on=[None, dt.date(2020, 1, 1)], sector=[None, "tourism"])
    valid, got, failures = failures_of("HTX", df)
    assert got == {(1, "name", "missing_value"), (0, "established_on", "missing_value"), (0, "sector", "missing_value")}
    assert valid.height == 0
    reasons = failures.filter(pl.col("column_name") == "name").get_column("reason").to_list()
    assert reasons == ["Thiếu thông tin bắt buộc ở cột 'Tên HTX' [missing_value]"]


def test_missing_required_column_fails_every_row():
    df = htx_frame().drop("status")
    valid, got, _ = failures_of("HTX", df)
    assert got == {(0, "status", "missing_value"), (1, "status", "missing_value")}


def test_negative_value():
    df = htx_frame(members=[-1, 0], workers=[-2, None], revenue=[-5.0, 0.0], income=[None, -0.1], profit=[-99.0, -1.0])
    valid, got, failures = failures_of("HTX", df)
    assert got == {(0, "members", "negative_value"), (0, "workers", "negative_value"),
                   (0, "revenue", "negative_value"), (1, "income", "negative_value")}  # profit may be negative
    assert valid.height == 0
    r = failures.filter(pl.col("column_name") == "members").row(0, named=True)
    assert r["value"] == "-1" and "không được âm" in r["reason"] and r["reason"].endswith("[negative_value]")


def test_unknown_category_and_reg_code():
    df = htx_frame(sector=["agriculture", "bees"], rating=["excellent", None], reg_code=["54A01", "5400100002"],
                   ocop_stars=[2, None])
    valid, got, _ = failures_of("HTX", df)
    assert got == {(1, "sector", "unknown_category"), (0, "rating", "unknown_category"),
                   (0, "reg_code", "invalid_reg_code"), (0, "ocop_stars", "unknown_category")}
    assert valid.height == 0


def test_tht():
    df = pl.DataFrame({
        "name": ["THT A", "THT B", None], "commune": [None, None, None],
        "established_on": [dt.date(2020, 1, 1)] * 3, "sector": ["agriculture", "other", "agriculture"],
        "status": ["active", "paused", "active"], "members": [5, 6, 7], "row_number": [3, 4, 5],
    })
    valid, got, _ = failures_of("THT", df)
    assert got == {(1, "status", "unknown_category"), (2, "name", "missing_value")}
    assert valid.get_column("row_number").to_list() == [3]
    assert valid.get_column("workers").to_list() == [None]  # optional column added as null


def test_ho_tro_not_positive():
    df = pl.DataFrame({
        "reg_code": ["5400100001", "5400100002", "5400100003", "5400100004"],
        "support_type": ["training", "establishment", "credit", "magic"],
        "amount": [12.5, 0.0, -3.0, 1.0],
        "participants": [40, None, None, -1],
        "decision_no": [None, "12/QĐ-UBND", None, None],
        "allocated_on": [dt.date(2020, 3, 1), dt.date(2020, 3, 1), None, dt.date(2020, 3, 1)],
    })
    valid, got, _ = failures_of("HO_TRO", df)
    assert got == {(1, "amount", "not_positive"), (2, "amount", "not_positive"), (2, "allocated_on", "missing_value"),
                   (3, "support_type", "unknown_category"), (3, "participants", "negative_value")}
    assert valid.get_column("reg_code").to_list() == ["5400100001"]


def test_chi_tieu():
    df = pl.DataFrame({
        "code": ["new_htx", "bogus", "htx_revenue_growth_pct"],
        "label": [None, None, None], "unit": [None, "%", "%"],
        "target_raw": ["65", "1", "abc"], "target_min": [65.0, 1.0, None], "target_max": [65.0, 1.0, None],
    })
    valid, got, failures = failures_of("CHI_TIEU", df)
    assert got == {(1, "code", "unknown_plan_code"), (2, "target_min", "invalid_target")}
    assert valid.get_column("code").to_list() == ["new_htx"]
    assert all(r.endswith(f"[{c}]") for r, c in failures.select("reason", "reason_code").iter_rows())


def test_failures_sorted_and_one_per_cell():
    df = htx_frame(members=[-1, None], name=[None, None])
    _, failures = validate_frame("HTX", df)
    assert failures.select("row_index", "column_name").rows() == [(0, "name"), (0, "members"), (1, "name"), (1, "members")]


def test_empty_frames():
    for form in FORMS:
        e = empty_frame(form)
        assert e.height == 0 and {"source_file", "sheet", "row_number"} <= set(e.columns)
        valid, failures = validate_frame(form, e)
        assert valid.height == 0 and failures.height == 0


# ------------------------------------------------------------------ the sample's planted cells
VALID_ROW = {
    "HTX": {"reg_code": "5400100001", "name": "HTX A", "kind": "htx", "established_on": dt.date(2015, 1, 1),
            "sector": "agriculture", "status": "active", "members": 10, "high_tech": False},
    "HO_TRO": {"reg_code": "5400100001", "support_type": "training", "amount": 10.0,
               "allocated_on": dt.date(2015, 1, 1)},
}


def _planted_cells():
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "data" / "sample" / "ground_truth.json"
    if not path.is_file():
        return []
    rows = json.loads(path.read_text(encoding="utf-8"))["invalid_rows"]
    return [r for r in rows if r["reason_code"] not in ("duplicate_code", "duplicate_group")]


@pytest.mark.parametrize("row", _planted_cells(), ids=lambda r: f"{r['reason_code']}-{r['raw_value']}")
def test_sample_planted_cell_gets_its_reason(row):
    """Each cell the sample generator planted as invalid is refused with the planted reason by
    the column's parser or the form's pandera model (duplicates are ingest's rule)."""
    column = row["column_name"]
    form = "HO_TRO" if column in {"support_type", "amount", "participants", "allocated_on"} else "HTX"
    year = int(row["source_file"][:4])
    spec = FORMS[form].column(column)
    try:
        value = spec.parse(row["raw_value"], year)
    except CellError as e:
        assert e.code == row["reason_code"]
        return
    df = pl.DataFrame([{**VALID_ROW[form], column: value}]).cast(
        {c: t for c, t in TYPED_SCHEMAS[form].items() if c in VALID_ROW[form] or c == column}
    )
    _, failures = validate_frame(form, df)
    assert failures.select("column_name", "reason_code").rows() == [(column, row["reason_code"])]
