"""The reading path made cheaper (issue 10, "the reading path") without changing a result.

- the memoized text functions keep 1, 1.0, True and a ProblemCell apart, and the faster
  `fold` equals its definition (NFC, lower, NFD, marks dropped, đ -> d) on every code point;
- the THT duplicate key without polars equals the vectorized one it replaces;
- `schemas.forms.check_frame` (conformed frame + failures, no row dropped) agrees with
  `validate_frame` on clean frames, frames with failures, nulls, NaN, a missing column, a
  default to fill and a column that needs a cast (the query path);
- a file's sheets of one form are validated together: one `check_frame` per form and file,
  and the accepted/quarantined rows per sheet are the hand-worked ones;
- header detection still takes a header split over rows, and a blank row still ends it.

Expected figures are written by hand from forms.md, not taken from the code's output.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

import polars as pl
import pytest

from coop.ingest.values import UncalculatedFormula
from coop.text import clean_text, fold, header_key
from reader_fixtures import HTX_HEAD, THT_HEAD, G, htx_row, ingest, rejected, tht_row, write_xlsx


# --------------------------------------------------------------------------- memoized text
def test_memoized_text_keeps_types_apart():
    # 1 == 1.0 == True as keys of a plain cache; the texts differ
    assert clean_text(1.0) == "1.0"
    assert clean_text(1) == "1"
    assert clean_text(True) == "True"
    f = UncalculatedFormula("=A1*2")
    assert clean_text(f) == "=A1*2" and clean_text("=A1*2") == "=A1*2"
    assert header_key("Số thành viên (người)") == "so thanh vien"
    assert header_key("(1)") == "1"


def _fold_definition(s: str) -> str:
    s = unicodedata.normalize("NFD", clean_text(s).lower())
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn")
    return s.replace("đ", "d").replace("Đ", "d")


def test_fold_equals_its_definition_code_point_by_code_point():
    fold.cache_clear()
    # every code point of the Basic Multilingual Plane, and the next planes' marks and letters
    for cp in [*range(0xD800), *range(0xE000, 0x10000), *range(0x10000, 0x20000, 7)]:
        s = "Ơ" + chr(cp) + "a"
        assert fold(s) == _fold_definition(s), hex(cp)
    for s in ["Hoà", "Hòa", "THỦY", "Thuỷ", "Đắk Lắk", "  xã\u00a0Tân\tLập ", "Ho\u0300a", "a \u0301 b", "ASCII Only"]:
        assert fold(s) == _fold_definition(s)
    assert fold("Hoà") == fold("Hòa") == "hoa"
    assert fold("Đồng  Tâm") == "dong tam"


# --------------------------------------------------------------------------- THT duplicate key
def test_duplicate_key_equals_the_vectorized_fold():
    from coop.ingest.normalize import _dup_key, _fold_series

    values = ["Tổ hợp tác Rau sạch", "TỔ HỢP TÁC RAU SẠCH", "Tổ hợp tác rau sach", "Xã Đồng Tâm", "xa dong tam",
              "Thuỷ sản", "Thủy sản", "a \u0301 b", "12", "01/02/2020", None, "Ho\u0300a Bình", "Đ"]
    typed = [None if v is None else clean_text(v) for v in values]  # what the parser hands over
    assert [_dup_key(v) for v in typed] == _fold_series(typed)
    assert _dup_key("TỔ HỢP TÁC RAU SẠCH") == _dup_key("Tổ hợp tác rau sach") == "to hop tac rau sach"


# --------------------------------------------------------------------------- check_frame vs validate_frame
def _htx(**over):
    base = {"reg_code": ["0101", "0102", "0103"], "name": ["HTX A", "HTX B", "HTX C"],
            "established_on": [dt.date(2015, 1, 2)] * 3, "sector": ["agriculture"] * 3,
            "status": ["active"] * 3, "members": [10, 20, 30]}
    base.update(over)
    return base


def _frame(data, schema=None):
    from schemas.forms import TYPED_SCHEMAS

    types = schema or TYPED_SCHEMAS["HTX"]
    return pl.DataFrame({k: pl.Series(k, v, dtype=types.get(k), strict=False) for k, v in data.items()})


@pytest.mark.parametrize("case,bad_rows", [
    ("clean", []),
    ("negative members", [1]),
    ("missing name", [2]),
    ("bad code and unknown status", [0, 2]),
    ("members as float (cast)", [1]),
])
def test_check_frame_agrees_with_validate_frame(case, bad_rows):
    from schemas.forms import TYPED_SCHEMAS, check_frame, validate_frame

    data = {
        "clean": _htx(),
        "negative members": _htx(members=[10, -1, 30]),
        "missing name": _htx(name=["HTX A", "HTX B", None]),
        "bad code and unknown status": _htx(reg_code=["01A", "0102", "0103"], status=["active"] * 2 + ["xyz"]),
        "members as float (cast)": _htx(members=[10.0, -2.0, 30.0]),
    }[case]
    schema = {"members": pl.Float64} if "cast" in case else None
    df = _frame(data, {**TYPED_SCHEMAS["HTX"], **(schema or {})})
    df = df.with_columns(pl.lit("f.xlsx").alias("source_file"), pl.Series("row_number", [5, 6, 7]))
    conformed, failures = check_frame("HTX", df)
    valid, failures2 = validate_frame("HTX", df)
    assert failures.equals(failures2)
    assert sorted(set(failures["row_index"].to_list())) == bad_rows
    assert conformed.height == 3  # no row dropped
    assert conformed["kind"].to_list() == ["htx"] * 3  # the missing column got the contract's default
    assert conformed["high_tech"].to_list() == [False] * 3
    assert conformed.columns[-2:] == ["source_file", "row_number"]  # lineage kept, after the canonical columns
    keep = [i for i in range(3) if i not in bad_rows]
    assert conformed[keep].equals(valid)


def test_check_frame_nan_in_a_required_float_counts_as_missing():
    from schemas.forms import TYPED_SCHEMAS, check_frame

    data = {"reg_code": ["0101", "0102"], "support_type": ["training", "training"], "amount": [5.0, float("nan")],
            "allocated_on": [dt.date(2020, 1, 1)] * 2}
    _, failures = check_frame("HO_TRO", _frame(data, TYPED_SCHEMAS["HO_TRO"]))
    assert failures.select("row_index", "column_name", "reason_code").rows() == [(1, "amount", "missing_value")]


def test_check_frame_default_fills_nulls_and_nulls_in_required_columns_fail():
    from schemas.forms import check_frame

    df = _frame(_htx(kind=[None, "htx", None], established_on=[dt.date(2015, 1, 2), None, dt.date(2015, 1, 2)]))
    conformed, failures = check_frame("HTX", df)
    assert conformed["kind"].to_list() == ["htx", "htx", "htx"]
    assert failures.select("row_index", "column_name", "reason_code").rows() == [(1, "established_on", "missing_value")]


# --------------------------------------------------------------------------- one validation per form and file
def test_sheets_of_a_form_are_validated_together(tmp_path, monkeypatch):
    import schemas.forms as F

    calls = []
    real = F.check_frame

    def counting(form, df):
        calls.append((form, df.height))
        return real(form, df)

    monkeypatch.setattr(F, "check_frame", counting)
    monkeypatch.setenv("COOP_READ_ISOLATION", "0")  # normalized here, where the counter is (not in the worker)
    sheet1 = [HTX_HEAD, htx_row(1, "0101", "HTX Một"), htx_row(2, "0102", "HTX Hai", members=-5)]
    sheet2 = [HTX_HEAD, htx_row(1, "0103", "HTX Ba"), htx_row(2, "0101", "HTX Một bis"),
              htx_row(3, "0104", "HTX Bốn", established_on="31/02/2019")]
    tht = [THT_HEAD, tht_row(1, "THT Rau"), tht_row(2, "THT RAU")]  # the same group twice (case aside)
    path = write_xlsx(tmp_path / "f.xlsx", [G("HTX 1", sheet1), G("HTX 2", sheet2), G("THT", tht)])
    res = ingest(path)
    assert sorted(calls) == [("HTX", 5), ("THT", 2)]  # one per form and file, every row of its sheets
    # hand-worked: row 3 of 'HTX 1' members -5; code 0101 on 'HTX 1' row 2 and 'HTX 2' row 3; a
    # 31 February on 'HTX 2' row 4; the THT group twice (rows 2 and 3)
    assert rejected(res) == sorted([
        ("HTX 1", 2, "reg_code", "duplicate_code"), ("HTX 1", 3, "members", "negative_value"),
        ("HTX 2", 3, "reg_code", "duplicate_code"), ("HTX 2", 4, "established_on", "invalid_date"),
        ("THT", 2, "name", "duplicate_group"), ("THT", 3, "name", "duplicate_group"),
    ])
    htx = res.forms["HTX"]
    assert htx.select("sheet", "row_number", "reg_code").rows() == [("HTX 2", 2, "0103")]
    assert res.forms["THT"].height == 0
    info = {s.name: (s.rows_accepted, s.rows_rejected) for s in res.sheets}
    assert info == {"HTX 1": (0, 2), "HTX 2": (1, 2), "THT": (0, 2)}


# --------------------------------------------------------------------------- header detection
def test_header_over_two_rows_and_a_blank_row_above(tmp_path):
    # a group title row over "Số lao động"/"Doanh thu", a blank row above the header block
    top = ["DANH SÁCH HỢP TÁC XÃ"]
    group = [""] * 9 + ["Kết quả", "", "", ""]
    head = HTX_HEAD[:9] + ["Số lao động", "Doanh thu", "Lợi nhuận", "Thu nhập bình quân"]
    rows = [top, [], group, head, htx_row(1, "0101", "HTX Một")[:13]]
    path = write_xlsx(tmp_path / "h.xlsx", [G("HTX", rows)])
    res = ingest(path)
    assert [(s.name, s.form, s.header_row) for s in res.sheets] == [("HTX", "HTX", 4)]
    assert res.forms["HTX"].select("row_number", "reg_code", "workers").rows() == [(5, "0101", 10)]


# --------------------------------------------------------------------------- the skip of the screen is never wrong
def test_surely_passes_is_never_true_where_the_polars_rule_fails():
    """`Rule.surely_passes` lets a clean frame skip the polars screen: it may say "may fail"
    for a passing value, never "passes" for a failing one. Every rule of every form, against
    the rule's own polars expression, on values including the awkward ones."""
    import random

    awkward = {
        pl.String: ["0101", "12-3", "", "-", "01A", "0101\n", "\n0101", "٠١٢", "１２", "0101 ", " 0101", "agriculture",
                    "active", "htx", "union", "other", "Agriculture", "x" * 300, "a\u0301", "01\x1c01"],
        pl.Int64: [0, 1, -1, 3, 4, 5, 6, 2**53, 2**53 + 1, -(2**62), 2**62],
        pl.Float64: [0.0, -0.0, 1.5, -1e-300, 1e300, float("inf"), float("-inf"), float("nan"), 5e-324, -5e-324],
    }
    checked = 0
    for form, name, dtype, check, rule, values in _rule_samples(awkward, random.Random(10), 1, 4):
        if not rule.surely_passes(values, bool(check.ignore_na)):
            continue
        s = pl.Series(name, values, dtype=dtype)
        got = pl.DataFrame([s]).select(rule.expr(name).fill_null(bool(check.ignore_na))).to_series()
        assert got.all(), (form, name, rule.op, values)
        checked += 1
    assert checked > 100  # the fast path is taken, not always refused


def _rule_samples(awkward, rnd, least, most):
    """(form, column, dtype, pandera check, its Rule, values): 300 random lists of `least`..`most`
    values per rule of every form, drawn from `awkward[dtype]` (and an `isin` rule's own values)."""
    from schemas.forms import SCHEMAS, TYPED_SCHEMAS

    for form, schema in SCHEMAS.items():
        for name, col in schema.columns.items():
            dtype = TYPED_SCHEMAS[form][name]
            pool = awkward.get(dtype)
            if pool is None or not col.checks:
                continue
            for check in col.checks:
                rule = check.statistics["rule"]
                pool_here = pool + [v for v in rule.value if type(v) in (str, int)] if rule.op == "isin" else pool
                for _ in range(300):
                    yield form, name, dtype, check, rule, [rnd.choice(pool_here + [None])
                                                           for _ in range(rnd.randint(least, most))]


def test_parse_cache_lives_and_dies_with_its_reference():
    import dataclasses
    import gc

    from coop.ingest import normalize as N
    from coop.reference import load_reference

    ref = load_reference()
    other = dataclasses.replace(ref)  # an equal Reference, another object: its own cache
    a, b = N._parse_cache(ref), N._parse_cache(other)
    assert a is N._parse_cache(ref) and a is not b
    key = id(other)
    del other, b
    gc.collect()
    assert key not in N._PARSE_CACHES  # gone with its Reference: an id reused later starts empty


def _random_sheet(rnd, head):
    """A sheet under `head` whose rows mix data rows, layout rows and odd cells (dashes, blank
    texts, column numbers, numbers as text, signature lines, sections, totals), now and then a
    cell breaking the Sheet's contract (a value of another kind's type, a formula cell)."""
    from coop.ingest.read import CELL_BOOL, CELL_DATE, CELL_ERROR, CELL_NUMBER, CELL_PROBLEM, CELL_TEXT, Sheet

    texts = ["HTX Tân Tiến", "Xã Tân Lập", "Nông nghiệp", "Đang hoạt động", "HTX", "-", "x", "…", "  ", "",
             "(1)", "12", " 7 ", "1.234", "I.", "II", "A", "b)", "Tổng cộng", "Cộng", "TỔNG SỐ", "Người lập biểu",
             "(Ký, ghi rõ họ tên)", "Hà Nội, ngày 5 tháng 3 năm 2021", "Ghi chú: số liệu 2020", "DANH SÁCH HTX",
             "Tên HTX", "Số thành viên", "(người)", "Nguyễn Văn A", "I. Nông nghiệp", "3601234567"]
    kinds_of = {str: CELL_TEXT, float: CELL_NUMBER, dt.datetime: CELL_DATE, bool: CELL_BOOL}

    def cell(rnd):
        r = rnd.random()
        if r < 0.25:
            return None
        if r < 0.6:
            return rnd.choice(texts)
        if r < 0.85:
            return rnd.choice([1.0, 2.0, 3.0, 15.0, 999.0, 1000.0, 4.5, 0.0, -1.0])
        if r < 0.95:
            return dt.datetime(2015, 3, 1)
        return rnd.choice([True, False])

    width = len(head)
    rows = [list(head)]
    for _ in range(rnd.randint(5, 40)):
        shape = rnd.random()
        if shape < 0.45:  # a data row, a few cells changed
            row = [float(len(rows)), f"36{rnd.randint(0, 99):02d}", f"HTX số {len(rows)}", "Xã Tân Lập", "HTX",
                   dt.datetime(2015, 3, 1), "Nông nghiệp", "Đang hoạt động", 20.0, 10.0, "1500", 120.0, 4.5, "Khá",
                   None, None][:width]
            row += [None] * (width - len(row))
            for _ in range(rnd.randint(0, 4)):
                row[rnd.randrange(width)] = cell(rnd)
        elif shape < 0.55:  # column numbers
            row = [rnd.choice([float(j + 1), f"({j + 1})", str(j + 1)]) for j in range(width)]
        elif shape < 0.65:
            row = [None] * width
        else:  # a few cells
            row = [None] * width
            for _ in range(rnd.randint(1, 4)):
                row[rnd.randrange(width)] = cell(rnd)
        rows.append(row)
    columns = [[row[j] for row in rows] for j in range(width)]
    kinds = [[kinds_of[type(v)] if v is not None else None for v in col] for col in columns]
    for _ in range(rnd.choice([0, 0, 0, 1, 2])):  # break the contract here and there
        j, i = rnd.randrange(width), rnd.randrange(1, len(rows))
        v, k = rnd.choice([(None, CELL_NUMBER), ("Xã A", None), (3, CELL_NUMBER), ("5", CELL_NUMBER),
                           (2.0, CELL_TEXT), (UncalculatedFormula("=A1"), CELL_PROBLEM),
                           (UncalculatedFormula(" "), CELL_TEXT), ("#N/A", CELL_ERROR), ("#DIV/0!", CELL_ERROR),
                           (" - ", CELL_ERROR), ("", CELL_ERROR), ("12", CELL_ERROR)])
        columns[j][i], kinds[j][i] = v, k
    return Sheet("S", True, list(range(1, len(rows) + 1)), columns, kinds)


def test_row_kinds_equal_the_rules_row_by_row():
    """The quick telling of the rows below a header (three cells, then a row's summary) equals
    `_RowRules.kind` row by row on random sheets of data, layout and odd rows, and a row's
    summary computed from its cells equals the summary of its cells' codes."""
    import random

    from coop.ingest.read import _cell_code, _header, _row_kinds, _row_kinds_by_rules, _row_rules

    rnd = random.Random(20260101)
    told = 0
    for n in range(300):
        sheet = _random_sheet(rnd, HTX_HEAD if n % 3 else THT_HEAD)
        h = _header(sheet)
        if h is None:
            continue
        rules = _row_rules(sheet, h)
        assert _row_kinds(rules, h.row + 1) == _row_kinds_by_rules(rules, h.row + 1)
        told += 1
        for i in range(h.row + 1, sheet.height):
            summary = rules.summary_of_row(i)
            if summary is not None:
                codes = [_cell_code(col[i], kc[i]) for col, kc in zip(sheet.columns, sheet.kinds, strict=True)]
                assert summary == rules.summary(codes)
    assert told > 200

# --------------------------------------------------------------------------- fast paths equal their definitions
def _outcome(fn, v, *args):
    from coop.ingest.values import CellError

    try:
        out = fn(v, *args)
        return ("ok", type(out), out)
    except CellError as e:
        return ("error", e.code, e.reason)


def test_fast_value_paths_equal_the_general_path():
    """parse_number / parse_date / parse_reg_code take common cells (plain str, float, datetime)
    by a shortcut; a subclass of the same value takes the general path: same value, same type,
    same CellError, on the shapes the files hold and on the awkward ones next to them."""
    import random

    from coop.ingest.values import parse_date, parse_number, parse_reg_code

    class S(str):
        pass

    class F(float):
        pass

    class D(dt.datetime):
        pass

    rnd = random.Random(7)
    texts = ["0", "-0", "12", "0123", "1.234", "1.234,5", "12,345", "1,234", "-471", "-1.234,5", "0,5", "-0,5",
             "9.99", "0.500", "1.234.567,89", "12.34.567", "1.23", "+5", "--5", "-", "", "1 234", "٣", "１２",
             "99999999999999999", "999999999999999", "1000000000000000", "1.000.000.000.000.000", "5,", ",5",
             "31/12/2020", "1/2/2021", "29/02/2021", "31-04-2019", "07.12.1998", "2004-08-07", "2004-13-01",
             "1/2/21", "01/02/2020 00:00", "2020-1-5", "01/02-2020", "00/00/0000", "2015", "45000",
             "5400116406", "2600614054-002", "-", "--", "-0-", "0101-", "0593 893 893", "'0561663600", "54A1",
             "0101\n", "\u00a00101", "#N/A", "5#1"]
    texts += [f"{rnd.randint(0, 9999):,}".replace(",", ".") + rnd.choice(["", f",{rnd.randint(0, 99)}"])
              for _ in range(200)]
    texts += [f"{rnd.randint(1, 31)}{sep}{rnd.randint(1, 13)}{sep}{rnd.randint(1890, 2030)}"
              for sep in "/.-" for _ in range(100)]
    floats = [0.0, -0.0, 1.0, 60.0, 61.0, 1899.0, 1900.0, 2100.0, 2101.0, 45000.0, 45000.5, 2958465.0, 2958466.0,
              -3.0, 1e15, 1e15 - 1, 5400116406.0, float("nan"), float("inf"), float("-inf")]
    floats += [float(rnd.randint(0, 3_000_000)) for _ in range(300)]
    dates = [dt.datetime(1905, 3, 14), dt.datetime(1905, 3, 14, 8), dt.datetime(2020, 5, 1),
             dt.datetime(2020, 5, 1, 0, 0, 1), dt.datetime(1899, 12, 31), dt.datetime(2031, 1, 1)]
    for fn, args in ((parse_number, ()), (parse_reg_code, ()), (parse_date, (2025,)), (parse_date, (None,))):
        for t in texts:
            assert _outcome(fn, t, *args) == _outcome(fn, S(t), *args), (fn.__name__, t)
        for f in floats:
            a, b = _outcome(fn, f, *args), _outcome(fn, F(f), *args)
            assert a[:2] == b[:2] and (a[2] == b[2] or a[2] != a[2]), (fn.__name__, f)
        for d in dates:
            assert _outcome(fn, d, *args) == _outcome(fn, D.fromisoformat(d.isoformat()), *args), (fn.__name__, d)


def test_parse_sheet_memo_equals_parse_cell_by_cell():
    """`_parse_sheet` parses each distinct cell of a column once (memoized across files): the
    typed values and bad cells are those of `ColumnSpec.parse` on every cell, with True and 1.0,
    1 and 1.0, a ProblemCell and its text, NaN and -0.0 in one column, twice over (the memo
    filled by the first sheet)."""
    from coop.ingest import normalize as N
    from coop.ingest.read import FormSheet, Sheet
    from coop.ingest.values import CellError
    from coop.reference import load_reference
    from schemas.forms import FORMS

    ref = load_reference()
    cells = [True, 1.0, 1, "1", UncalculatedFormula("1"), UncalculatedFormula("=A1"), float("nan"), -0.0, 0.0,
             None, "", "x", "1.234", "'0101", 45000.0, dt.datetime(2020, 1, 2), "02/01/2020", "Nông nghiệp",
             "Đang hoạt động", 3.0, "4*", False, "#N/A", True]
    spec = FORMS["HTX"]
    columns = {c.name: j for j, c in enumerate(spec.columns)}
    for rep in range(2):
        sheet = Sheet(f"S{rep}", True, list(range(2, 2 + len(cells))), [list(cells) for _ in columns],
                      [[None] * len(cells) for _ in columns])
        fs = FormSheet(sheet, "HTX", 1, columns, {}, list(range(len(cells))))
        parsed = N._parse_sheet(fs, 2024, ref)
        bad = [(b.row, b.column, b.raw, b.code, b.reason) for b in parsed.bad]
        want_bad = []
        for col in spec.columns:
            want = []
            for k, v in enumerate(cells):
                try:
                    want.append(col.parse(v, 2024, ref))
                except CellError as e:
                    want.append(None)
                    want_bad.append((k, col.name, N.format_raw(v), e.code, e.reason))
            got = parsed.typed[col.name]
            assert [(type(x), x) for x in got] == [(type(x), x) for x in want], col.name
        assert bad == want_bad


def test_surely_passes_series_equals_the_list_definition():
    """The whole-column `Rule.surely_passes_series` gives the answer of `surely_passes` on the
    column's values, for every rule of every form, on awkward values (NaN, ±inf, huge
    integers, -0.0, text beyond printable ASCII)."""
    import random

    awkward = {
        pl.String: ["0101", "12-3", "", "-", "01A", "0101\n", "٠١٢", "0101 ", "agriculture", "active", "htx",
                    "Agriculture", "a\u0301", "01\x1c01"],
        pl.Int64: [0, 1, -1, 3, 4, 5, 6, 2**53, 2**53 + 1, -(2**53), -(2**53) - 1, -(2**62), 2**62],
        pl.Float64: [0.0, -0.0, 1.5, -1e-300, 1e300, float("inf"), float("-inf"), float("nan"), 5e-324, -5e-324],
    }
    for form, name, dtype, _check, rule, values in _rule_samples(awkward, random.Random(11), 0, 5):
        for ignore_na in (True, False):
            s = pl.Series(name, values, dtype=dtype)
            assert rule.surely_passes_series(s, ignore_na) == rule.surely_passes(values, ignore_na), \
                (form, name, rule.op, values, ignore_na)


def test_common_cells_of_a_column_equal_the_parser():
    """`parse_common_cells` (a column's plain numbers, dates, texts, codes in one comprehension)
    gives for every cell it decides exactly what the column's parser gives (value and type; a
    cell the parser refuses is never decided), on the cells the files hold and the awkward ones
    (NaN, ±inf, -0.0, 1e15, year-only dates in 1905, dates after the report year, texts with
    '#', spaces, zero-width or NFD characters, ProblemCells, booleans)."""
    import random

    from coop.ingest.values import UNDECIDED, CellError, parse_common_cells
    from coop.reference import load_reference
    from schemas.forms import FORMS

    rnd = random.Random(3)
    cells = [None, True, False, 1, 0.0, -0.0, 1.0, 0.5, -7.25, 60.0, 61.0, 1900.0, 2100.0, 2101.0, 45000.0,
             45000.5, 2958465.0, 2958466.0, 1e15, -1e15, 1e15 - 1, float("nan"), float("inf"), float("-inf"),
             5400116406.0, "", " ", "-", "12", "0123", "1.234,5", "-471", "1,234", "31/12/2020", "29/02/2021",
             "2004-08-07", "2015", "5400116406", "2600614054-002", "--", "'0561663600", "0593 893 893", "#N/A",
             "5#1", "Nông nghiệp", "No\u0302ng", "a  b", " a", "a\u00a0b", "x\u200by", "a\x1cb", "Đang hoạt động",
             UncalculatedFormula("=A1"), UncalculatedFormula("12"), dt.datetime(1905, 3, 14),
             dt.datetime(1905, 3, 14, 8), dt.datetime(1905, 10, 1), dt.datetime(2020, 5, 1),
             dt.datetime(2020, 5, 1, 0, 0, 1), dt.datetime(2026, 1, 1), dt.datetime(1899, 12, 31), dt.date(2020, 1, 2)]
    cells += [float(rnd.randint(-5, 3_000_000)) for _ in range(300)] + [rnd.uniform(-1e6, 1e6) for _ in range(100)]
    cells += [dt.datetime(rnd.randint(1900, 2030), rnd.randint(1, 12), rnd.randint(1, 28)) for _ in range(200)]
    cells += [f"{rnd.randint(1, 31)}/{rnd.randint(1, 13)}/{rnd.randint(1890, 2030)}" for _ in range(100)]
    ref = load_reference()
    decided = 0
    for spec in FORMS.values():
        for col in spec.columns:
            for year in (2025, 2020, None):
                out = parse_common_cells(col.kind, cells, year)
                if out is None:
                    continue
                assert len(out) == len(cells)
                for v, got in zip(cells, out, strict=True):
                    if got is UNDECIDED:
                        continue
                    decided += 1
                    try:
                        want = col.parse(v, year, ref)
                    except CellError as e:
                        raise AssertionError(f"{col.name}: {v!r} decided as {got!r}, the parser refuses it") from e
                    assert (type(got), got) == (type(want), want), (col.name, v, year)
    assert decided > 5000


def test_clean_text_and_fold_equal_their_definitions_on_random_texts():
    """`clean_text` drops zero-width characters only when it finds one, `fold` takes the ASCII
    characters of a Vietnamese NFD text without `translate`: both equal their definitions on
    random texts of Vietnamese letters, marks (precomposed, combining, other Mn), zero-width
    characters, odd spaces and other letters."""
    import random

    def clean_definition(s: str) -> str:
        s = unicodedata.normalize("NFC", s)
        s = "".join(ch for ch in s if ch not in "\u200b\u200c\u200d\u2060\ufeff")
        return " ".join(s.split())

    alphabet = ("aăâbcdđeêghiklmnoôơpqrstuưvxyAĂÂĐÊÔƠƯàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợ"
                "ùúủũụừứửữựỳýỷỹỵ  -.,()0123456789\u0300\u0301\u0303\u0309\u0323\u031b\u0345\u1dc0\u20d0"
                "\u200b\u200d\ufeff\u00a0\u3000\x1c\tñçøßİıǅﬁ①")
    rnd = random.Random(5)
    clean_text.cache_clear()
    fold.cache_clear()
    for _ in range(20000):
        s = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 14)))
        assert clean_text(s) == clean_definition(s), repr(s)
        assert fold(s) == _fold_definition(s), repr(s)


def test_cell_alias_equals_its_definition_on_codes_and_numbers_as_text():
    """`_cell_alias` says no to an ASCII text with a digit and no '(' without computing its
    header key (no alias has a digit): the same answer as the definition (the cell's text is
    some form's header) on random texts of header words, digits and punctuation."""
    import random

    from coop.ingest import read as R

    R._init_aliases()
    words = ["ma", "so", "htx", "Mã số", "thành viên", "ten", "STT", "0101", "12", "2020", "(1)", "(người)",
             "*", ":", "/", "-", ".", ",", "a1", "Doanh thu", "lợi nhuận", " ", "\u00a0"]
    rnd = random.Random(9)
    R._cell_alias.cache_clear()
    for _ in range(20000):
        v = " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 4)))
        want = bool(R._cell_text(v)) and header_key(R._cell_text(v)) in R._alias_keys
        assert R._cell_alias(v) == want, v
