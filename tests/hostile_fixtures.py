"""Small hostile inputs for the reading-limits tests (tests/test_hostile_*.py).

Each builder writes one file (a few kB, generated here, never committed) that used to crash
the reader, exhaust its memory, or take the whole run down:

- `xlsx_xml`: an .xlsx written by hand as XML in a zip (any cells, any declared dimension):
  a cell at XFD1048576, a stray cell in the last row, a dimension missing;
- `zip_bomb_xlsx`: a valid .xlsx whose worksheet XML is padded to `mb` MB of blanks, so the
  zip declares a few MB from a few kB (compression ratio ~1000:1);
- `good_htx` / `htx_file`: a district's HTX list through tests/reader_fixtures.py (xlsxwriter);
- `HTX_ROWS`: the rows of the good file, as the warehouse must hold them.

Expected outcomes are written by hand in the tests from forms.md and the issue, not taken
from the reader.
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reader_fixtures import (
    CHI_TIEU_HEAD,
    HO_TRO_HEAD,
    HTX_HEAD,
    THT_HEAD,
    G,
    ho_tro_row,
    htx_row,
    tht_row,
    write_csv,
    write_ods,
    write_xls,
    write_xlsx,
)

#: The good file's rows: (reg_code, name, members).
HTX_ROWS = [("0101", "HTX Một", 10), ("0102", "HTX Hai", 20), ("0103", "HTX Ba", 30)]


def good_htx(path: Path) -> Path:
    """A clean district HTX list (3 rows, all valid)."""
    rows = [htx_row(i + 1, code, name, members=m) for i, (code, name, m) in enumerate(HTX_ROWS)]
    return write_xlsx(path, [G("HTX", [HTX_HEAD] + rows)])


def htx_file(path: Path, rows: list[list[Any]], extra: list[G] | None = None) -> Path:
    return write_xlsx(path, [G("HTX", [HTX_HEAD] + rows)] + list(extra or []))


# --------------------------------------------------------------------------- hand-written xlsx
_CT = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
       '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
       '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
       '<Default Extension="xml" ContentType="application/xml"/>'
       '<Override PartName="/xl/workbook.xml" '
       'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
       '{sheets}</Types>')
_CT_SHEET = ('<Override PartName="/xl/worksheets/sheet{n}.xml" '
             'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
         'officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WB = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
       '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{sheets}</sheets>'
       '</workbook>')
_WB_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}'
            '</Relationships>')


def _col(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


class Formula(str):
    """A formula cell written without a cached value (as openpyxl and other tools write them)."""


def _sheet_xml(cells: dict[tuple[int, int], Any], dimension: str | None, padding: int = 0) -> str:
    """Worksheet XML: `cells` {(row, col) 1-based: value} (Formula = a formula without a cached
    value, str = inline string, number)."""
    rows: dict[int, list[str]] = {}
    for (r, c), v in sorted(cells.items()):
        ref = f"{_col(c)}{r}"
        if isinstance(v, Formula):
            rows.setdefault(r, []).append(f'<c r="{ref}"><f>{escape(v)}</f></c>')
        elif isinstance(v, str):
            rows.setdefault(r, []).append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(v)}</t></is></c>')
        else:
            rows.setdefault(r, []).append(f'<c r="{ref}"><v>{v!r}</v></c>')
    body = "".join(f'<row r="{r}">{"".join(cs)}</row>' for r, cs in sorted(rows.items()))
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    pad = " " * padding
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f'{dim}<sheetData>{body}</sheetData>{pad}</worksheet>')


def xlsx_xml(path: Path, sheets: list[tuple[str, dict[tuple[int, int], Any], str | None]], padding: int = 0) -> Path:
    """An .xlsx written by hand: sheets = [(name, cells, dimension ref or None)]; `padding`
    blanks are added to each worksheet's XML (a zip bomb when large)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT.format(sheets="".join(_CT_SHEET.format(n=i + 1)
                                                                       for i in range(len(sheets)))))
        z.writestr("_rels/.rels", _RELS)
        z.writestr("xl/workbook.xml", _WB.format(sheets="".join(
            f'<sheet name="{escape(name)}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, (name, _, _) in enumerate(sheets))))
        z.writestr("xl/_rels/workbook.xml.rels", _WB_RELS.format(rels="".join(
            f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            f'relationships/worksheet" Target="worksheets/sheet{i + 1}.xml"/>' for i in range(len(sheets)))))
        for i, (_, cells, dim) in enumerate(sheets):
            z.writestr(f"xl/worksheets/sheet{i + 1}.xml", _sheet_xml(cells, dim, padding))
    return path


def htx_cells(rows: list[tuple[str, str, int]] = HTX_ROWS) -> dict[tuple[int, int], Any]:
    """A small HTX form as cells (header in row 1: code, name, members, date as text)."""
    cells: dict[tuple[int, int], Any] = {(1, 1): "Mã số HTX", (1, 2): "Tên HTX", (1, 3): "Số thành viên",
                                         (1, 4): "Ngày thành lập"}
    for i, (code, name, members) in enumerate(rows):
        cells.update({(i + 2, 1): code, (i + 2, 2): name, (i + 2, 3): members, (i + 2, 4): "01/03/2015"})
    return cells


def xfd_cell_xlsx(path: Path, declared: bool = True) -> Path:
    """An HTX form plus one cell at XFD1048576 (the last cell of a sheet). `declared`: the
    dimension says so (A1:XFD1048576, caught before the parse); else no dimension at all (the
    reader itself would try to allocate 549,755,813,888 bytes: the worker's limit catches it)."""
    cells = htx_cells()
    cells[(1_048_576, 16_384)] = 1
    return xlsx_xml(path, [("HTX", cells, "A1:XFD1048576" if declared else None)])


def stray_last_row_xlsx(path: Path) -> Path:
    """An HTX form plus a stray cell in row 1,048,576 (declared A1:D1048576)."""
    cells = htx_cells()
    cells[(1_048_576, 1)] = "x"
    return xlsx_xml(path, [("HTX", cells, "A1:D1048576")])


def zip_bomb_xlsx(path: Path, mb: int = 5) -> Path:
    """A valid small HTX form whose worksheet XML is padded with `mb` MB of blanks."""
    return xlsx_xml(path, [("HTX", htx_cells(), "A1:D4")], padding=mb << 20)


def big_notes_value_rows() -> list[list[Any]]:
    """Rows of a 'Ghi chú' (notes) sheet holding a loss of -2e11 VND as a plain number."""
    return [["Ghi chú"], ["Lỗ lũy kế (đồng)", -2e11], ["Ngày lập", dt.datetime(2021, 1, 15)]]


# =========================================================================== the hostile corpus
# One class per case of issue 9 (sections 2 and 3, "What to build") and per existing hostile
# fixture: a small deterministic file (or path) and the rows planted in it, written by hand from
# ../shared/spec/forms.md and the issue — never taken from the reader. `tests/test_hostile_corpus.py`
# reads each class through the real reader and the real `coop validate`; `tests/test_hostile_runs.py`
# puts every class beside a good small province in one `coop run`.
Bad = tuple[str, int, str, str]       # (sheet, Excel row, canonical column, reason code)
Issue = tuple[str, str, str]          # (sheet or "" for the whole file, reason code, severity)


@dataclass(frozen=True)
class Outcome:
    """What the province must make of one class's file: every non-blank row below a header is
    loaded, quarantined (`bad`: one record per bad cell) or skipped with its kind."""

    loaded: int = 0
    bad: frozenset[Bad] = frozenset()
    skipped: Mapping[str, int] = field(default_factory=dict)   # kind -> rows (column_numbers, section, total, …)
    issues: frozenset[Issue] = frozenset()
    values: Mapping[tuple[str, int, str], Any] = field(default_factory=dict)  # (sheet, row, column) -> loaded value
    header_rows: Mapping[str, int] = field(default_factory=dict)  # sheet -> Excel row of the (lowest) header row
    words: tuple[str, ...] = ()   # in the reasons, when this is the outcome (beside `Case.words`)

    @property
    def bad_rows(self) -> int:
        return len({(s, r) for s, r, _, _ in self.bad})

    @property
    def planted(self) -> int:
        """Non-blank rows below the header(s): loaded + quarantined + skipped."""
        return self.loaded + self.bad_rows + sum(self.skipped.values())

    @property
    def codes(self) -> set[str]:
        return {c for _, _, _, c in self.bad} | {c for _, c, _ in self.issues}

    @property
    def file_rejected(self) -> bool:
        return any(s == "" and sev == "rejected" for s, _, sev in self.issues)

    @property
    def verdict(self) -> str:
        """What `coop validate` says of it (coop/ingest/preflight.py)."""
        if self.file_rejected:
            return "rejected"
        sheet_rejected = any(sev == "rejected" for _, _, sev in self.issues)
        if self.loaded == 0 and not self.bad:
            return "rejected" if sheet_rejected else "empty"
        return "partial" if self.bad or sheet_rejected else "ok"


@dataclass(frozen=True)
class Validate:
    """`coop validate` of the class's file, when it differs from what the run does (path classes:
    validate sees the file it is given, discovery sees the raw folder)."""

    exit: int
    verdict: str | None          # None: no file to check (a folder holding none)
    codes: frozenset[str] = frozenset()
    loaded: int = 0


@dataclass
class Ctx:
    """Where a class writes: `dir` its unit folder (created), `raw` the raw folder; `code(k)` the
    k-th registration code of this class (unique over the corpus: one class never repeats
    another's code in a year)."""

    dir: Path
    raw: Path
    prefix: int

    def code(self, k: int) -> str:
        return f"25{self.prefix:04d}{k:04d}"


@dataclass(frozen=True)
class Case:
    name: str
    issue: str                                  # where issue 9 lists it
    make: Callable[[Ctx], Path]                  # writes the class's file; returns the path given to validate
    expect: Outcome
    also: tuple[Outcome, ...] = ()               # other outcomes the issue's own words accept
    folder: str | None = None                    # under the raw folder; None = the next free district slot
    stage: str = "read"                          # "read" (the reader sees it) | "discover" (refused before)
    validate: Validate | None = None             # None = derived from `expect`
    words: tuple[str, ...] = ()                  # in the reason (validate's output and the run's audit)
    deny: bool = False                           # no read permission (chmod 000; as root, open() refused)
    feature: str = ""                            # the issue-9 part that builds it, when it was not built yet
    year: int = 0                                # filled by `corpus()`
    source_glob: str = ""                        # source_file in the run when the path is not the file given

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        return (self.expect, *self.also)

    def validate_expect(self) -> list[Validate]:
        if self.validate is not None:
            return [self.validate]
        return [Validate(0 if o.verdict == "ok" else 1, o.verdict,
                         frozenset(o.codes | ({"empty_file"} if o.verdict == "empty" else set())), o.loaded)
                for o in self.outcomes]


def bad(*cells: Bad) -> frozenset[Bad]:
    return frozenset(cells)


def iss(*items: Issue) -> frozenset[Issue]:
    return frozenset(items)


REJECTED = "rejected"
IGNORED = "ignored"

# ----------------------------------------------------------------------------------- builders
HTX_SHEET = "HTX"


def _htx(ctx: Ctx, rows: list[list[Any]], name: str = "htx.xlsx", extra: list[G] | None = None,
         head: list[str] = HTX_HEAD, row0: int = 0) -> Path:
    return write_xlsx(ctx.dir / name, [G(HTX_SHEET, [head] + rows, row0=row0)] + list(extra or []))


def _rows(ctx: Ctx, n: int, **over: Any) -> list[list[Any]]:
    return [htx_row(k, ctx.code(k), f"HTX Số {k}", **over) for k in range(1, n + 1)]


def _good_bytes(ctx: Ctx) -> bytes:
    tmp = ctx.raw.parent / "scratch" / f"good-{ctx.prefix}.xlsx"
    return _htx(Ctx(tmp.parent, ctx.raw, ctx.prefix), _rows(ctx, 2), name=tmp.name).read_bytes()


def cp1258(text: str) -> bytes:
    """Unicode -> Windows-1258 as Windows writes it (precomposed where the code page has the
    letter, else the base letter and the tone as a combining byte)."""
    tones = "\u0300\u0301\u0303\u0309\u0323"
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        d = unicodedata.normalize("NFD", ch)
        out += unicodedata.normalize("NFC", "".join(c for c in d if c not in tones)).encode("cp1258")
        out += "".join(c for c in d if c in tones).encode("cp1258")
    return bytes(out)


CSV_HEAD = "Mã số HTX,Tên HTX,Ngày thành lập,Lĩnh vực,Tình trạng,Số thành viên,Doanh thu"


def _csv_rows(ctx: Ctx, rows: list[tuple[str, str]]) -> str:
    """CSV text: header + one line per (name, revenue)."""
    lines = [CSV_HEAD] + [f"{ctx.code(k)},{name},01/03/2015,Nông nghiệp,Đang hoạt động,12,{rev}"
                          for k, (name, rev) in enumerate(rows, 1)]
    return "\n".join(lines) + "\n"


def _formula_xlsx(path: Path, cells: dict[tuple[int, int], Any]) -> Path:
    return xlsx_xml(path, [("HTX", cells, None)])


def _replace_entry(path: Path, entry: str, data: bytes) -> None:
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, body in items:
            z.writestr(info.filename, data if info.filename == entry else body)
        if entry not in {i.filename for i, _ in items}:
            z.writestr(entry, data)


_TEXT_HTX = ["Mã số HTX", "Tên HTX", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Số thành viên"]


def _text_htx_cells(ctx: Ctx, n: int) -> dict[tuple[int, int], Any]:
    cells: dict[tuple[int, int], Any] = {(1, c + 1): h for c, h in enumerate(_TEXT_HTX)}
    for k in range(1, n + 1):
        for c, v in enumerate([ctx.code(k), f"HTX Số {k}", "01/03/2015", "Nông nghiệp", "Đang hoạt động", 10 + k]):
            cells[(k + 1, c + 1)] = v
    return cells


# §2: one file takes the night down ------------------------------------------------------------
def mk_xfd(ctx: Ctx) -> Path:
    return xfd_cell_xlsx(ctx.dir / "xfd.xlsx")


def mk_xfd_undeclared(ctx: Ctx) -> Path:
    return xfd_cell_xlsx(ctx.dir / "xfd-nodim.xlsx", declared=False)


def mk_stray(ctx: Ctx) -> Path:
    return stray_last_row_xlsx(ctx.dir / "stray.xlsx")


def mk_bomb(ctx: Ctx) -> Path:
    return zip_bomb_xlsx(ctx.dir / "bomb.xlsx", mb=5)


def mk_huge_shared_string(ctx: Ctx) -> Path:
    """A normal list whose shared strings hold one 20 MB text (the issue: 200 MB in 210 kB)."""
    p = _htx(ctx, _rows(ctx, 2), name="chuoi-dai.xlsx")
    with zipfile.ZipFile(p) as z:
        sst = z.read("xl/sharedStrings.xml").decode("utf-8")
    sst = sst.replace("</sst>", "<si><t>" + "a" * (20 << 20) + "</t></si></sst>")
    _replace_entry(p, "xl/sharedStrings.xml", sst.encode("utf-8"))
    return p


def mk_many_sheets(ctx: Ctx) -> Path:
    return xlsx_xml(ctx.dir / "nhieu-trang.xlsx", [("HTX", htx_cells(), "A1:D4")]
                    + [(f"T{i}", {}, None) for i in range(1, 201)])


def mk_many_cells(ctx: Ctx) -> Path:
    return xlsx_xml(ctx.dir / "vung-rong.xlsx", [("HTX", htx_cells(), "A1:AZ100000")])


def mk_neg_notes(ctx: Ctx) -> Path:
    return _htx(ctx, [htx_row(1, ctx.code(1), "HTX Bốn")], name="ghi-chu-lo.xlsx",
                extra=[G("Ghi chú", big_notes_value_rows())])


def mk_neg_date_cell(ctx: Ctx) -> Path:
    import xlsxwriter

    p = ctx.dir / "ngay-am.xlsx"
    wb = xlsxwriter.Workbook(str(p))
    ws = wb.add_worksheet("HTX")
    f = wb.add_format({"num_format": "dd/mm/yyyy"})
    ws.write_row(0, 0, HTX_HEAD)
    for k in (1, 2):
        row = htx_row(k, ctx.code(k), f"HTX Số {k}", established_on=None)
        ws.write_row(k, 0, [v for v in row[:5]])
        ws.write_row(k, 6, row[6:])
    ws.write_datetime(1, 5, dt.datetime(2015, 3, 1), f)
    ws.write_number(2, 5, -2e11, f)  # a date cell no calendar has (it used to panic the reader)
    wb.close()
    return p


def mk_ten_digit_codes(ctx: Ctx) -> Path:
    return _htx(ctx, [htx_row(1, int(ctx.code(1)), "HTX Một", established_on=dt.datetime(2015, 3, 1)),
                      htx_row(2, int(ctx.code(2)), "HTX Hai", established_on=dt.datetime(2019, 12, 31))],
                name="ma-so.xlsx")


def mk_non_utf8_name(ctx: Ctx) -> Path:
    name = os.fsencode(ctx.dir) + b"/B\xe1o c\xe1o.xlsx"  # cp1258 bytes, as unzip leaves them
    with open(name, "wb") as fh:
        fh.write(_good_bytes(ctx))
    return Path(os.fsdecode(name))


def mk_non_utf8_folder(ctx: Ctx) -> Path:
    folder = os.fsencode(ctx.dir) + b"/Huy\xea\xf2n L\xb9c S\xACn"
    os.makedirs(folder, exist_ok=True)
    with open(folder + b"/bao-cao.xlsx", "wb") as fh:
        fh.write(_good_bytes(ctx))
    return Path(os.fsdecode(folder + b"/bao-cao.xlsx"))


def mk_locked(ctx: Ctx) -> Path:
    return _htx(ctx, _rows(ctx, 2), name="khoa.xlsx")


def mk_shared_code(ctx: Ctx) -> Path:
    return _htx(ctx, [htx_row(k, ctx.code(1), f"HTX {k}") for k in range(1, 1001)], name="trung-ma.xlsx")


def mk_truncated(ctx: Ctx) -> Path:
    data = _good_bytes(ctx)
    p = ctx.dir / "cat-cut.xlsx"
    p.write_bytes(data[: len(data) * 2 // 3])  # no end of central directory: CalamineError "EOCD"
    return p


def mk_ole_as_xlsx(ctx: Ctx) -> Path:
    p = ctx.dir / "mat-khau.xlsx"  # an OLE container (what an encrypted .xlsx is) named .xlsx
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4088))
    return p


def mk_html_as_xls(ctx: Ctx) -> Path:
    p = ctx.dir / "xuat-tu-web.xls"  # "Excel" exported by a web application: HTML
    p.write_text("<html><body><table><tr><td>Mã số HTX</td><td>Tên HTX</td></tr>"
                 f"<tr><td>{ctx.code(1)}</td><td>HTX Một</td></tr></table></body></html>", encoding="utf-8")
    return p


def mk_zero_bytes(ctx: Ctx) -> Path:
    p = ctx.dir / "rong.xlsx"
    p.write_bytes(b"")
    return p


def mk_blank_sheets(ctx: Ctx) -> Path:
    return write_xlsx(ctx.dir / "trang-trong.xlsx", [G("Sheet1", []), G("Sheet2", [])])


def mk_xlsx_named_csv(ctx: Ctx) -> Path:
    p = ctx.dir / "doi-ten.csv"
    p.write_bytes(_good_bytes(ctx))
    return p


def mk_binary_csv(ctx: Ctx) -> Path:
    p = ctx.dir / "nhi-phan.csv"
    p.write_bytes(bytes(range(256)) * 4)
    return p


def mk_koi8_csv(ctx: Ctx) -> Path:
    p = ctx.dir / "koi8.csv"
    p.write_bytes("Имя;Адрес\nКооператив Север;Москва\nИванов;Тверь\n".encode("koi8-r"))
    return p


def mk_damaged_utf8_csv(ctx: Ctx) -> Path:
    p = ctx.dir / "utf8-hong.csv"
    p.write_bytes("Mã số HTX;Tên HTX\n1;Hợp tác xã Đông Hòa\n2;Hợp tác xã Tân".encode() + b"\xff\n")
    return p


# §3: rows silently lost or wrong ---------------------------------------------------------------
def mk_unbalanced_quote(ctx: Ctx) -> Path:
    text = _csv_rows(ctx, [("HTX Một", "100"), ('HTX "Hai', "200"), ("HTX Ba", "300"), ("HTX Bốn", "400"),
                           ("HTX Năm", "500")])
    return write_csv(ctx.dir / "ngoac-kep.csv", text)


def mk_side_by_side(ctx: Ctx) -> Path:
    left = [THT_HEAD, tht_row(1, "THT Trồng rau Tân Lập"), tht_row(2, "THT Nuôi ong Hòa Bình")]
    right = [HTX_HEAD] + _rows(ctx, 3)
    rows = [lft + [None] + rgt for lft, rgt in zip(left + [[None] * len(THT_HEAD)], right, strict=True)]
    return write_xlsx(ctx.dir / "hai-bang.xlsx", [G("Bảng", rows)])


def mk_formula_no_value(ctx: Ctx) -> Path:
    cells = _text_htx_cells(ctx, 3)
    cells[(3, 6)] = Formula("F2+1")  # members computed by a formula, never calculated
    return _formula_xlsx(ctx.dir / "cong-thuc.xlsx", cells)


def mk_name_formula_no_value(ctx: Ctx) -> Path:
    cells = _text_htx_cells(ctx, 3)
    cells[(3, 2)] = Formula('CONCATENATE("HTX ","Ba")')
    return _formula_xlsx(ctx.dir / "ten-cong-thuc.xlsx", cells)


def mk_total_like_names(ctx: Ctx) -> Path:
    return _htx(ctx, [htx_row(1, ctx.code(1), "Cộng đồng HTX Mường Bi"),
                      htx_row(2, ctx.code(2), "Tổng hợp Dịch vụ Nông nghiệp Tân Lập"),
                      [None, None, "Tổng cộng", None, None, None, None, None, 40, 20, 3000, 240]],
                name="ten-cong-tong.xlsx")


def mk_letter_stt(ctx: Ctx) -> Path:
    return _htx(ctx, [["A", None, "Nông nghiệp"] + [None] * 13,
                      htx_row("a", None, "HTX Hoa Ban", established_on=None),
                      htx_row("b", ctx.code(2), "HTX Hoa Mai")], name="stt-chu.xlsx")


def mk_no_name(ctx: Ctx) -> Path:
    return _htx(ctx, [htx_row(1, ctx.code(1), "HTX Một"), htx_row(2, ctx.code(2), None),
                      htx_row(3, ctx.code(3), "HTX Ba")], name="thieu-ten.xlsx")


def mk_header_row_41(ctx: Ctx) -> Path:
    top: list[list[Any]] = [[None]] * 40
    top = [list(r) for r in top]
    top[0] = ["UBND HUYỆN"]
    top[1] = ["DANH SÁCH HỢP TÁC XÃ"]
    top[19] = ["Ghi chú: số liệu tạm tính đến 30/11"]
    top[38] = ["Đơn vị tính: triệu đồng"]
    return write_xlsx(ctx.dir / "tieu-de-sau.xlsx", [G("HTX", top + [HTX_HEAD] + _rows(ctx, 3))])


def mk_three_row_header(ctx: Ctx) -> Path:
    r1 = ["STT", "Mã số HTX", "Tên HTX", "Ngày thành lập", "Lĩnh vực", "Tình trạng", "Thông tin thành viên", None,
          "Kết quả sản xuất kinh doanh", None, None]
    r2 = [None] * 6 + ["Thành viên và lao động", None, "Năm báo cáo", None, None]
    r3 = [None] * 6 + ["Số thành viên", "Số lao động", "Doanh thu", "Lợi nhuận", "Thu nhập bình quân"]
    data = [[k, ctx.code(k), f"HTX Số {k}", dt.datetime(2015, 3, 1), "Nông nghiệp", "Đang hoạt động", 10 + k, 5, 100,
             10, 3.5] for k in (1, 2, 3)]
    merges = [(0, c, 2, c) for c in range(6)] + [(0, 6, 0, 7), (0, 8, 0, 10), (1, 6, 1, 7), (1, 8, 1, 10)]
    return write_xlsx(ctx.dir / "tieu-de-3-dong.xlsx", [G("HTX", [r1, r2, r3] + data, merges=merges)])


def mk_symlinked_folder(ctx: Ctx) -> Path:
    target = ctx.raw / "2020" / "thu-muc-that"
    target.mkdir(parents=True, exist_ok=True)  # empty: nothing else to account for
    ctx.dir.rmdir()
    ctx.dir.symlink_to(target, target_is_directory=True)
    return ctx.dir


def mk_symlink_outside(ctx: Ctx) -> Path:
    outside = ctx.raw.parent / "ngoai" / f"that-{ctx.prefix}.xlsx"
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_bytes(_good_bytes(ctx))
    link = ctx.dir / "lien-ket.xlsx"
    link.symlink_to(outside)
    return link


def mk_symlink_loop(ctx: Ctx) -> Path:
    link = ctx.dir / "vong.xlsx"
    link.symlink_to(link)
    return link


def mk_fifo(ctx: Ctx) -> Path:
    p = ctx.dir / "ong.csv"
    os.mkfifo(p)
    return p


def mk_revenue_1e308(ctx: Ctx) -> Path:
    return _htx(ctx, [htx_row(1, ctx.code(1), "HTX Một"), htx_row(2, ctx.code(2), "HTX Hai", revenue=1e308)],
                name="doanh-thu.xlsx")


def mk_workers_beyond_int64(ctx: Ctx) -> Path:
    return _htx(ctx, [htx_row(1, ctx.code(1), "HTX Một"), htx_row(2, ctx.code(2), "HTX Hai", workers=9.3e18)],
                name="lao-dong.xlsx")


def mk_inf_nan_text(ctx: Ctx) -> Path:
    rows = [("HTX Một", "100"), ("HTX Hai", "inf"), ("HTX Ba", "NaN")]
    return write_csv(ctx.dir / "vo-cuc.csv", _csv_rows(ctx, rows))


def mk_year_text(ctx: Ctx) -> Path:
    return _htx(ctx, [htx_row(1, ctx.code(1), "HTX Một"), htx_row(2, ctx.code(2), "HTX Hai", established_on="2015")],
                name="nam-chu.xlsx")


def mk_year_number(ctx: Ctx) -> Path:
    return _htx(ctx, [htx_row(1, ctx.code(1), "HTX Một"), htx_row(2, ctx.code(2), "HTX Hai", established_on=2015)],
                name="nam-so.xlsx")


def _legacy(ctx: Ctx, encode: Callable[[str], str], name: str) -> Path:
    def enc(v: Any) -> Any:
        return encode(v) if isinstance(v, str) else v

    head = [enc(h) for h in HTX_HEAD]
    rows = [[enc(v) for v in htx_row(1, ctx.code(1), "Hợp tác xã Nông nghiệp Đồng Tâm", commune="Xã Tân Lập")],
            [enc(v) for v in htx_row(2, ctx.code(2), "HTX Dịch vụ Thủy lợi Hòa Bình", commune="Xã Mường Thàng")]]
    return write_xlsx(ctx.dir / name, [G("HTX", [head] + rows)])


def mk_tcvn3(ctx: Ctx) -> Path:
    from coop.ingest.legacy_text import encode_tcvn3  # its table is checked against glibc in test_legacy_text

    return _legacy(ctx, encode_tcvn3, "tcvn3.xlsx")


def mk_vni(ctx: Ctx) -> Path:
    from coop.ingest.legacy_text import encode_vni

    return _legacy(ctx, encode_vni, "vni.xlsx")


_UNICODE_CSV = [("Hợp tác xã Nông nghiệp Đồng Tâm", '"1.234,5"'), ("HTX Thủy sản Hồ Hòa Bình", "300")]


def mk_utf16_csv(ctx: Ctx) -> Path:
    p = ctx.dir / "utf16.csv"
    p.write_bytes(b"\xff\xfe" + _csv_rows(ctx, _UNICODE_CSV).encode("utf-16-le"))
    return p


def mk_cp1258_csv(ctx: Ctx) -> Path:
    p = ctx.dir / "cp1258.csv"
    p.write_bytes(cp1258(_csv_rows(ctx, _UNICODE_CSV)))
    return p


def _signature(cols: int, at: dict[str, int]) -> list[list[Any]]:
    """The signature block under a list: date line, captions, '(Ký, ghi rõ họ tên)', a blank, the names."""
    def line(**cells: Any) -> list[Any]:
        row: list[Any] = [None] * cols
        for k, v in cells.items():
            row[at[k]] = v
        return row

    return [[None] * cols,
            line(right="Lạc Sơn, ngày 15 tháng 01 năm 2021"),
            line(left="NGƯỜI LẬP BIỂU", right="THỦ TRƯỞNG ĐƠN VỊ"),
            line(left="(Ký, ghi rõ họ tên)", right="(Ký tên, đóng dấu)"),
            [None] * cols,
            line(left="Nguyễn Văn An", right="Trần Thị Bình")]


def mk_signature_in_name_column(ctx: Ctx) -> Path:
    return _htx(ctx, _rows(ctx, 3) + _signature(len(HTX_HEAD), {"left": 2, "right": 10}), name="chu-ky.xlsx")


def mk_signature_elsewhere(ctx: Ctx) -> Path:
    return _htx(ctx, _rows(ctx, 3) + _signature(len(HTX_HEAD), {"left": 0, "right": 12}), name="chu-ky-2.xlsx")


def mk_duplicate_plan_code(ctx: Ctx) -> Path:
    rows = [[1, "Số HTX thành lập mới", "new_htx", "HTX", 65], [2, "Số HTX thành lập mới", "new_htx", "HTX", 70],
            [3, "Số THT thành lập mới", "new_tht", "THT", 20], [4, "Số lượt đào tạo", "training_turns", "lượt", 300]]
    return write_xlsx(ctx.dir / "ke-hoach.xlsx", [G("KH", [CHI_TIEU_HEAD] + rows)])


def mk_separators(ctx: Ctx) -> Path:
    revs = ["1,234.5", "1.234,5", "3.240", "1.4", "12 700"]
    return _htx(ctx, [htx_row(k, ctx.code(k), f"HTX Số {k}", revenue=v) for k, v in enumerate(revs, 1)],
                name="dau-phay.xlsx")


# reason codes of forms.md, one each ---------------------------------------------------------
def mk_excel_errors(ctx: Ctx) -> Path:
    from reader_fixtures import Err

    return _htx(ctx, [htx_row(1, ctx.code(1), "HTX Một", members=Err("#N/A")),
                      htx_row(2, ctx.code(2), "HTX Hai", revenue=Err("#DIV/0!")),
                      htx_row(3, ctx.code(3), "HTX Ba")], name="loi-excel.xlsx")


def _one_bad(**over: Any) -> Callable[[Ctx], Path]:
    def make(ctx: Ctx) -> Path:
        return _htx(ctx, [htx_row(1, ctx.code(1), "HTX Một"), htx_row(2, ctx.code(2), "HTX Hai", **over)],
                    name="mot-dong-loi.xlsx")
    return make


def mk_after_report_year(ctx: Ctx) -> Path:
    year = int(ctx.dir.parent.name)  # the report year of the folder
    return _one_bad(established_on=dt.datetime(year + 1, 5, 1))(ctx)


def mk_support(ctx: Ctx) -> Path:
    return write_xlsx(ctx.dir / "ho-tro.xlsx", [G("Hỗ trợ", [HO_TRO_HEAD, ho_tro_row(1, ctx.code(1)),
                                                             ho_tro_row(2, ctx.code(2), amount=0),
                                                             ho_tro_row(3, ctx.code(3), amount=None)])])


def mk_plan_target(ctx: Ctx) -> Path:
    rows = [[1, "Số HTX thành lập mới", "new_htx", "HTX", "từ 65"],
            [2, "Số THT thành lập mới", "new_tht", "THT", "nhiều"]]
    return write_xlsx(ctx.dir / "ke-hoach.xlsx", [G("KH", [CHI_TIEU_HEAD] + rows)])


def mk_plan_code(ctx: Ctx) -> Path:
    rows = [[1, "Số HTX thành lập mới", "new_htx", "HTX", 60], [2, "HTX mới", "htx_moi", "HTX", 5]]
    return write_xlsx(ctx.dir / "ke-hoach.xlsx", [G("KH", [CHI_TIEU_HEAD] + rows)])


def mk_duplicate_group(ctx: Ctx) -> Path:
    rows = [tht_row(1, "THT Trồng rau"), tht_row(2, "THT Nuôi ong"), tht_row(3, "THT trồng rau")]
    return write_xlsx(ctx.dir / "tht.xlsx", [G("THT", [THT_HEAD] + rows)])


def mk_plan_in_district(ctx: Ctx) -> Path:
    return write_xlsx(ctx.dir / "ke-hoach.xlsx", [G("KH", [CHI_TIEU_HEAD, [1, "HTX mới", "new_htx", "HTX", 65]])])


def mk_register_in_province(ctx: Ctx) -> Path:
    return _htx(ctx, _rows(ctx, 2), name="htx-tinh.xlsx")


def mk_no_form(ctx: Ctx) -> Path:
    return write_xlsx(ctx.dir / "cong-van.xlsx", [G("Công văn", [["UBND HUYỆN"], ["Kính gửi: Sở Tài chính"],
                                                               ["Báo cáo tình hình kinh tế tập thể năm 2020"]])])


def mk_docx(ctx: Ctx) -> Path:
    p = ctx.dir / "bao-cao.docx"
    p.write_bytes(b"PK\x03\x04 word")
    return p


def mk_good(name: str = "bao-cao.xlsx") -> Callable[[Ctx], Path]:
    def make(ctx: Ctx) -> Path:
        return _htx(ctx, _rows(ctx, 2), name=name)
    return make


def mk_layout(ctx: Ctx) -> Path:
    titles = [["UBND HUYỆN LẠC SƠN"], ["DANH SÁCH HỢP TÁC XÃ NĂM 2020"], ["Đơn vị tính: triệu đồng"], []]
    numbers = [f"({i})" for i in range(1, len(HTX_HEAD) + 1)]
    rows = [HTX_HEAD, numbers, ["I", None, "Nông nghiệp"], htx_row(1, ctx.code(1), "HTX Một"),
            htx_row(2, ctx.code(2), "HTX Hai"), [], ["II", None, "Dịch vụ"],
            htx_row(3, ctx.code(3), "HTX Ba", sector="Dịch vụ"),
            [None, None, "Tổng cộng", None, None, None, None, None, 60, 30, 4500, 360]]
    return write_xlsx(ctx.dir / "bo-cuc.xlsx", [G("HTX", titles + rows)])


def mk_hidden_sheet(ctx: Ctx) -> Path:
    return write_xlsx(ctx.dir / "an.xlsx", [G("Ghi chú", [["Xem trang HTX"]]),
                                            G("HTX", [HTX_HEAD] + _rows(ctx, 2), hidden=True)])


def mk_xls(ctx: Ctx) -> Path:
    return write_xls(ctx.dir / "cu.xls", [G("HTX", [HTX_HEAD] + _rows(ctx, 2))])


def mk_ods(ctx: Ctx) -> Path:
    return write_ods(ctx.dir / "libre.ods", [G("HTX", [HTX_HEAD] + _rows(ctx, 2))])


def mk_semicolon_bom_csv(ctx: Ctx) -> Path:
    text = _csv_rows(ctx, [("HTX Một", "100"), ("HTX Hai", "200")]).replace(",", ";")
    return write_csv(ctx.dir / "cham-phay.csv", text, bom=True)


def mk_blank_template(ctx: Ctx) -> Path:
    from coop.outputs.template import build_template

    return build_template(int(ctx.dir.parent.name), ctx.dir, ctx.dir.name)


def mk_one_bad_of_121(ctx: Ctx) -> Path:
    rows = [htx_row(k, ctx.code(k), f"HTX Số {k}", members=-1 if k == 60 else 20) for k in range(1, 122)]
    return _htx(ctx, rows, name="121-dong.xlsx")


def mk_same_code_two_units(ctx: Ctx) -> Path:
    row = htx_row(1, "2599990001", "HTX Liên xã Bình Minh", status="Đang hoạt động")  # the same code in both units
    return _htx(Ctx(ctx.dir, ctx.raw, 9999), [row], name="htx.xlsx")


# ----------------------------------------------------------------------------------- the corpus
def _htx_bad(row: int, column: str, code: str, sheet: str = HTX_SHEET) -> Bad:
    return (sheet, row, column, code)


def _csv(name: str) -> str:
    return Path(name).stem


_RL = iss(("", "resource_limit", REJECTED))
_UNREADABLE = iss(("", "unreadable_file", REJECTED))


def _discover(code: str) -> Outcome:
    return Outcome(issues=iss(("", code, REJECTED)))


CASES: list[Case] = [
    # ---- §2: one district file takes down everyone's night
    Case("cell_at_XFD1048576_declared", "§2 one cell at XFD1048576", mk_xfd, Outcome(issues=_RL),
         words=("A1:XFD1048576", "COOP_READ_MAX_SHEET_ROWS")),
    Case("cell_at_XFD1048576_undeclared", "§2 one cell at XFD1048576 (Rust abort, exit 134)", mk_xfd_undeclared,
         Outcome(issues=_RL), words=("COOP_READ_MEMORY_MB",)),
    Case("stray_cell_in_row_1048576", "§2 a stray cell in row 1,048,576", mk_stray, Outcome(issues=_RL),
         words=("A1:D1048576",)),
    Case("zip_bomb", "§2 a 783 kB zip bomb", mk_bomb, Outcome(issues=_RL),
         words=("xl/worksheets/sheet1.xml", "COOP_READ_MAX_COMPRESSION_RATIO")),
    Case("huge_shared_string", "§2 one 200 MB shared string", mk_huge_shared_string, Outcome(issues=_RL),
         words=("sharedStrings.xml",)),
    Case("too_many_sheets", "build 2 pre-check: sheet count", mk_many_sheets, Outcome(issues=_RL),
         words=("201 trang tính", "COOP_READ_MAX_SHEETS")),
    Case("declared_range_too_many_cells", "build 2 pre-check: declared dimension", mk_many_cells,
         Outcome(issues=_RL), words=("A1:AZ100000", "5.200.000 ô", "COOP_READ_MAX_SHEET_CELLS")),
    Case("minus_2e11_on_a_notes_sheet", "§2 numeric cell <= -1.07e11 (PanicException)", mk_neg_notes,
         Outcome(loaded=1, issues=iss(("Ghi chú", "unrecognized_sheet", IGNORED)))),
    Case("minus_2e11_in_a_date_cell", "§2 the datetime load panics on a date cell <= -1.07e11", mk_neg_date_cell,
         Outcome(loaded=1, bad=bad(_htx_bad(3, "established_on", "invalid_date")))),
    Case("ten_digit_codes_beside_dates", "§2 OverflowError: date value out of range", mk_ten_digit_codes,
         Outcome(loaded=2, values={("HTX", 3, "established_on"): dt.date(2019, 12, 31)})),
    Case("file_name_not_utf8", "§2 a file name that is not valid UTF-8", mk_non_utf8_name,
         _discover("invalid_file_name"), stage="discover", words=("UTF-8",),
         validate=Validate(1, "rejected", frozenset({"invalid_file_name"}))),
    Case("folder_name_not_utf8", "§2 a folder name that is not valid UTF-8", mk_non_utf8_folder,
         _discover("invalid_file_name"), stage="discover", folder="2021", words=("UTF-8",),
         validate=Validate(1, "rejected", frozenset({"invalid_file_name"}))),
    Case("no_read_permission", "§2 one file without read permission (and §4: never cached)", mk_locked,
         Outcome(issues=_UNREADABLE), deny=True, words=("Không có quyền đọc tệp",)),
    Case("rows_sharing_a_code", "§2 30,000 rows sharing a code (O(N²) reasons; 1,000 here, 30,000 in "
         "test_hostile_runs)", mk_shared_code,
         Outcome(bad=frozenset(_htx_bad(r, "reg_code", "duplicate_code") for r in range(2, 1002))),
         words=("1000 dòng (2, 3, 4, 5, 6, …)",)),
    Case("truncated_xlsx", "§9 clerks see raw `CalamineError: … Could not find EOCD`", mk_truncated,
         Outcome(issues=_UNREADABLE), words=("EOCD",)),
    Case("ole_container_named_xlsx", "build 9 every reader error in Vietnamese (encrypted/OLE)", mk_ole_as_xlsx,
         Outcome(issues=_UNREADABLE), words=("CalamineError",)),
    Case("html_named_xls", "build 9 every reader error in Vietnamese (HTML saved as .xls)", mk_html_as_xls,
         Outcome(issues=_UNREADABLE), words=("HTML",)),
    Case("zero_byte_file", "forms.md empty file", mk_zero_bytes, Outcome(issues=iss(("", "empty_file", REJECTED))),
         words=("0 byte",)),
    Case("blank_sheets_only", "forms.md empty file (sheets without a cell)", mk_blank_sheets,
         Outcome(issues=iss(("", "empty_file", REJECTED)))),
    Case("workbook_renamed_csv", "build 4 CSV decoding: a zip called .csv", mk_xlsx_named_csv,
         Outcome(issues=_UNREADABLE), words=("bảng tính Excel",)),
    Case("binary_csv", "build 4 CSV decoding: binary", mk_binary_csv, Outcome(issues=_UNREADABLE),
         words=("tệp nhị phân",)),
    Case("koi8_csv", "build 4 CSV decoding: no Vietnamese code page", mk_koi8_csv, Outcome(issues=_UNREADABLE),
         words=("không ở bảng mã được nhận",)),
    Case("damaged_utf8_csv", "build 4 CSV decoding: damaged UTF-8", mk_damaged_utf8_csv, Outcome(issues=_UNREADABLE),
         words=("UTF-8 bị hỏng", "dòng 3")),
    # ---- §3: rows silently lost or silently wrong
    Case("csv_unbalanced_quote", "§3 a CSV with one unbalanced quote swallows every later row", mk_unbalanced_quote,
         Outcome(loaded=5, header_rows={"ngoac-kep": 1}),
         also=(Outcome(issues=_UNREADABLE, words=("dòng 3",)),), feature="d1b"),
    Case("two_tables_side_by_side", "§3 two tables side by side on one sheet", mk_side_by_side,
         Outcome(loaded=5), also=(Outcome(issues=iss(("Bảng", "two_tables_on_sheet", REJECTED))),), feature="d1a"),
    Case("formula_without_cached_value", "§3 formulas without cached values read as NULL", mk_formula_no_value,
         Outcome(loaded=2, bad=bad(_htx_bad(3, "members", "formula_not_calculated"))), feature="d1b"),
    Case("name_formula_without_cached_value", "§3 a name formula's row vanishes", mk_name_formula_no_value,
         Outcome(loaded=2, bad=bad(_htx_bad(3, "name", "formula_not_calculated"))), feature="d1b"),
    Case("names_starting_cong_dong_tong", "§3 names starting 'Cộng đồng…'/'Tổng…' taken as totals", mk_total_like_names,
         Outcome(loaded=2, skipped={"total": 1}, values={("HTX", 2, "name"): "Cộng đồng HTX Mường Bi"}), feature="d1a"),
    Case("letter_stt_without_date", "§3 a letter STT without a date taken as a section", mk_letter_stt,
         Outcome(loaded=1, skipped={"section": 1},
                 bad=bad(_htx_bad(3, "reg_code", "missing_value"), _htx_bad(3, "established_on", "missing_value"))),
         feature="d1a"),
    Case("full_row_with_empty_name", "§3 a full row with an empty name skipped", mk_no_name,
         Outcome(loaded=2, bad=bad(_htx_bad(3, "name", "missing_value"))), feature="d1a"),
    Case("header_in_row_41", "§3 header in row 41 -> 'no form'", mk_header_row_41,
         Outcome(loaded=3, header_rows={"HTX": 41}), feature="d1a"),
    Case("three_row_merged_header", "§3 a 3-row merged header quarantines every row", mk_three_row_header,
         Outcome(loaded=3, header_rows={"HTX": 3}, values={("HTX", 5, "members"): 12, ("HTX", 6, "revenue"): 100.0}),
         feature="d1a"),
    Case("symlinked_district_folder", "§3 a symlinked district folder skipped without a word", mk_symlinked_folder,
         _discover("symlinked_folder"), stage="discover", validate=Validate(0, None)),
    Case("symlink_to_a_workbook_outside", "§5 a symlink inside data/raw to a workbook outside it", mk_symlink_outside,
         _discover("outside_raw_folder"), stage="discover", validate=Validate(0, "ok", loaded=2)),
    Case("symlink_loop", "build 5 link loops reported per file", mk_symlink_loop, _discover("symlink_loop"),
         stage="discover", validate=Validate(1, "rejected", frozenset({"symlink_loop"}))),
    Case("fifo_named_csv", "build 2 stat/path errors reject that file only", mk_fifo, _discover("unreadable_file"),
         stage="discover", validate=Validate(1, "rejected", frozenset({"unreadable_file"}))),
    Case("revenue_1e308", "§3 revenue 1e308 publishes avg_revenue_mvnd = inf", mk_revenue_1e308,
         Outcome(loaded=1, bad=bad(_htx_bad(3, "revenue", "invalid_number"))), feature="d1b"),
    Case("workers_beyond_int64", "§3 workers 9.3e18 -> NULL silently", mk_workers_beyond_int64,
         Outcome(loaded=1, bad=bad(_htx_bad(3, "workers", "invalid_number"))), feature="d1b"),
    Case("inf_and_nan_text", "build 3 non-finite numbers quarantined (invalid_number), never NULL", mk_inf_nan_text,
         Outcome(loaded=1, bad=bad(_htx_bad(3, "revenue", "invalid_number", "vo-cuc"),
                                   _htx_bad(4, "revenue", "invalid_number", "vo-cuc"))), feature="d1b"),
    Case("bare_year_text_in_a_date_cell", "§3 a bare year '2015' in a date cell -> 1905-07-07", mk_year_text,
         Outcome(loaded=1, bad=bad(_htx_bad(3, "established_on", "invalid_date"))),
         also=(Outcome(loaded=1, bad=bad(_htx_bad(3, "established_on", "year_only_date"))),), feature="d1b"),
    Case("bare_year_number_in_a_date_cell", "§3 a bare year 2015 (a number) in a date cell", mk_year_number,
         Outcome(loaded=1, bad=bad(_htx_bad(3, "established_on", "invalid_date"))),
         also=(Outcome(loaded=1, bad=bad(_htx_bad(3, "established_on", "year_only_date"))),), feature="d1b"),
    Case("tcvn3_cells", "§3 TCVN3 legacy text loaded as mojibake", mk_tcvn3,
         Outcome(loaded=2, issues=iss(("HTX", "legacy_encoding_converted", IGNORED)),
                 values={("HTX", 2, "name"): "Hợp tác xã Nông nghiệp Đồng Tâm",
                         ("HTX", 3, "commune"): "Xã Mường Thàng"})),
    Case("vni_cells", "§3 VNI legacy text loaded as mojibake", mk_vni,
         Outcome(loaded=2, issues=iss(("HTX", "legacy_encoding_converted", IGNORED)),
                 values={("HTX", 3, "name"): "HTX Dịch vụ Thủy lợi Hòa Bình"})),
    Case("utf16_csv", "§3 UTF-16 CSV called 'binary'", mk_utf16_csv,
         Outcome(loaded=2, values={("utf16", 2, "name"): "Hợp tác xã Nông nghiệp Đồng Tâm",
                                   ("utf16", 2, "revenue"): 1234.5})),
    Case("windows_1258_csv", "§3 Windows-1258 CSV rejected instead of decoded", mk_cp1258_csv,
         Outcome(loaded=2, values={("cp1258", 3, "name"): "HTX Thủy sản Hồ Hòa Bình"})),
    Case("signature_block_in_the_name_column", "§3 a signature block quarantined and sent back as an error",
         mk_signature_in_name_column, Outcome(loaded=3, skipped={"signature": 4}), feature="d1a"),
    Case("signature_block_elsewhere", "build 3 signature blocks recognised wherever they fall",
         mk_signature_elsewhere, Outcome(loaded=3, skipped={"signature": 4}), feature="d1a"),
    Case("duplicated_plan_code", "§9 one duplicated plan code blocks the whole publish", mk_duplicate_plan_code,
         Outcome(loaded=2, bad=bad(("KH", 2, "code", "duplicate_plan_code"), ("KH", 3, "code", "duplicate_plan_code"))),
         folder="2020/province", feature="d2"),
    Case("ambiguous_separators", "build 3 '1,234.5' read as the contract says or quarantined", mk_separators,
         Outcome(loaded=4, bad=bad(_htx_bad(2, "revenue", "invalid_number")),
                 values={("HTX", 3, "revenue"): 1234.5, ("HTX", 4, "revenue"): 3240.0, ("HTX", 5, "revenue"): 1.4,
                         ("HTX", 6, "revenue"): 12700.0}), feature="d1b"),
    # ---- the contract's row reasons (forms.md), one class each
    Case("excel_error_cells", "forms.md Excel error values", mk_excel_errors,
         Outcome(loaded=1, bad=bad(_htx_bad(2, "members", "excel_error"), _htx_bad(3, "revenue", "excel_error")))),
    Case("impossible_date", "forms.md 31/02/2020", _one_bad(established_on="31/02/2020"),
         Outcome(loaded=1, bad=bad(_htx_bad(3, "established_on", "invalid_date")))),
    Case("date_after_the_report_year", "forms.md a date after 31 December", mk_after_report_year,
         Outcome(loaded=1, bad=bad(_htx_bad(3, "established_on", "date_after_report_year")))),
    Case("unknown_sector", "forms.md categories", _one_bad(sector="Khai khoáng"),
         Outcome(loaded=1, bad=bad(_htx_bad(3, "sector", "unknown_category")))),
    Case("negative_members", "forms.md members >= 0", _one_bad(members=-5),
         Outcome(loaded=1, bad=bad(_htx_bad(3, "members", "negative_value")))),
    Case("fractional_members", "forms.md members integer", _one_bad(members=2.5),
         Outcome(loaded=1, bad=bad(_htx_bad(3, "members", "not_integer")))),
    Case("reg_code_with_letters", "forms.md reg_code digits and '-'", _one_bad(reg_code="ABC-12"),
         Outcome(loaded=1, bad=bad(_htx_bad(3, "reg_code", "invalid_reg_code")))),
    Case("support_amount_zero_or_missing", "forms.md amount > 0, required", mk_support,
         Outcome(loaded=1, bad=bad(("Hỗ trợ", 3, "amount", "not_positive"), ("Hỗ trợ", 4, "amount", "missing_value")))),
    Case("plan_target_not_a_number", "forms.md target", mk_plan_target,
         Outcome(loaded=1, bad=bad(("KH", 3, "target", "invalid_target"))), folder="2021/province"),
    Case("unknown_plan_code", "forms.md plan codes", mk_plan_code,
         Outcome(loaded=1, bad=bad(("KH", 3, "code", "unknown_plan_code"))), folder="2022/province"),
    Case("duplicate_cooperative_group", "forms.md THT key repeated", mk_duplicate_group,
         Outcome(loaded=1, bad=bad(("THT", 2, "name", "duplicate_group"), ("THT", 4, "name", "duplicate_group")))),
    Case("plan_in_a_district_folder", "forms.md province forms only in the province folder", mk_plan_in_district,
         Outcome(issues=iss(("", "form_not_allowed_here", REJECTED)))),
    Case("register_in_the_province_folder", "forms.md district forms not in the province folder",
         mk_register_in_province, Outcome(issues=iss(("", "form_not_allowed_here", REJECTED))), folder="2026/province"),
    Case("no_recognized_form", "forms.md a sheet whose header matches no form", mk_no_form,
         Outcome(issues=iss(("", "no_recognized_form", REJECTED)))),
    # ---- where files go (forms.md, units.md): refused by discovery, the night goes on
    Case("unsupported_file_type", "forms.md extensions", mk_docx, _discover("unsupported_file_type"), stage="discover",
         validate=Validate(1, "rejected", frozenset({"unsupported_file_type"}))),
    Case("misplaced_file", "forms.md not under <year>/<unit>/", mk_good(), _discover("misplaced_file"),
         stage="discover", folder="2020", validate=Validate(1, "rejected", frozenset({"misplaced_file"}))),
    Case("invalid_year_folder", "forms.md non-year folder", mk_good(), _discover("invalid_year_folder"),
         stage="discover", folder="nam-2020/157", validate=Validate(1, "rejected", frozenset({"misplaced_file"}))),
    Case("unknown_district_folder", "forms.md unknown district", mk_good(), _discover("unknown_district"),
         stage="discover", folder="2020/Hà Nội", validate=Validate(1, "rejected", frozenset({"unknown_district"}))),
    Case("district_after_its_merger", "forms.md a district outside its validity (Kỳ Sơn 2021)", mk_good(),
         _discover("district_not_valid_for_year"), stage="discover", folder="2021/Kỳ Sơn",
         validate=Validate(1, "rejected", frozenset({"district_not_valid_for_year"}))),
    Case("district_folder_after_the_reform", "units.md a district folder from 2025", mk_good(),
         _discover("district_after_reform"), stage="discover", folder="2026/Huyện Lạc Sơn",
         validate=Validate(1, "rejected", frozenset({"district_after_reform"}))),
    Case("commune_folder_before_the_reform", "units.md a commune of today before 2025", mk_good(),
         _discover("commune_before_reform"), stage="discover", folder="2020/Xã Lạc Sơn",
         validate=Validate(1, "rejected", frozenset({"commune_before_reform"}))),
    Case("unknown_commune_folder", "units.md unknown commune", mk_good(), _discover("unknown_commune"),
         stage="discover", folder="2026/Xã Không Có Tên Này",
         validate=Validate(1, "rejected", frozenset({"unknown_commune"}))),
    # ---- layouts the contract tolerates (forms.md "Layout tolerated in every sheet")
    Case("titles_column_numbers_sections_totals", "forms.md layout; build 3 skipped rows counted by kind", mk_layout,
         Outcome(loaded=3, skipped={"column_numbers": 1, "section": 2, "total": 1}, header_rows={"HTX": 5})),
    Case("hidden_sheet", "forms.md hidden sheets are read", mk_hidden_sheet,
         Outcome(loaded=2, issues=iss(("Ghi chú", "unrecognized_sheet", IGNORED)))),
    Case("xls_biff", "forms.md .xls", mk_xls, Outcome(loaded=2)),
    Case("ods", "forms.md .ods", mk_ods, Outcome(loaded=2)),
    Case("csv_semicolons_with_bom", "forms.md .csv", mk_semicolon_bom_csv, Outcome(loaded=2)),
    # ---- §9 clerk verdicts
    Case("blank_template", "§9 a blank template validates as OK", mk_blank_template,
         Outcome(issues=iss(("Hướng dẫn", "unrecognized_sheet", IGNORED)),
                 header_rows={"HTX": 4, "THT": 4, "Hỗ trợ HTX": 4})),
    Case("one_bad_row_of_121", "§9 validate calls a file with 1 bad row of 121 'REJECTED'", mk_one_bad_of_121,
         # validate: "120 dòng sẽ được nhận, 1 dòng bị loại"
         Outcome(loaded=120, bad=bad(_htx_bad(61, "members", "negative_value")))),
    # ---- build 3: a registration code reported by two units in one year (counted once)
    Case("same_code_in_two_units_a", "build 3 a reg_code reported by two units in one year", mk_same_code_two_units,
         Outcome(loaded=1), folder="2022/148", feature="d2"),
    Case("same_code_in_two_units_b", "build 3 a reg_code reported by two units in one year", mk_same_code_two_units,
         Outcome(loaded=1), folder="2022/150", feature="d2"),
]

#: Folders handed out to the classes without a folder of their own: the districts of 2020, then
#: of 2021, then communes of today in 2026 (the small province of the whole-run test reports 2023-2025).
SLOT_DISTRICTS = ("148", "150", "152", "153", "154", "155", "156", "157", "158", "159", "227", "228", "230", "231",
                  "232", "233", "234", "235", "236", "237", "238", "239", "240", "243", "244", "246", "247", "248",
                  "249", "251", "252", "253")
SLOT_COMMUNES = ("04792", "04795", "04828", "04831", "04846", "04849", "04873", "04876", "04891", "04894")


def corpus() -> list[Case]:
    """The classes with their folders: each class without one gets its own unit folder (never
    shared: two files of one folder would be resubmissions of each other)."""
    from dataclasses import replace

    slots = [f"{y}/{d}" for y in (2020, 2021) for d in SLOT_DISTRICTS] + [f"2026/{c}" for c in SLOT_COMMUNES]
    taken = {c.folder for c in CASES if c.folder}
    free = iter(s for s in slots if s not in taken)
    out = []
    for c in CASES:
        folder = c.folder or next(free)
        year = int(folder.split("/")[0]) if folder[:4].isdigit() else 0
        out.append(replace(c, folder=folder, year=year))
    names = [c.name for c in out]
    assert len(set(names)) == len(names), "class names are unique"
    return out


def build(case: Case, raw: Path) -> Path:
    """Write one class under `raw` (its folder created); the path `coop validate` is given."""
    assert case.folder is not None
    d = raw / case.folder
    d.mkdir(parents=True, exist_ok=True)
    return case.make(Ctx(d, raw, [c.name for c in CASES].index(case.name) + 1))


def deny(monkeypatch: Any, target: Path) -> None:
    """Reading `target` fails with PermissionError: chmod 000, or (as root, who reads anyway)
    a monkeypatched open() in this process."""
    import builtins

    os.chmod(target, 0)
    if os.geteuid() != 0:
        return
    real = builtins.open
    denied = str(Path(target).resolve())

    def guarded(file: Any, *a: Any, **k: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)) == denied:
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real(file, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded)


#: Letters that only Vietnamese text has (a reason must begin in Vietnamese).
VIETNAMESE_LETTERS = set("ăâđêôơưĂÂĐÊÔƠƯáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
                         "ÁÀẢÃẠẤẦẨẪẬẮẰẲẴẶÉÈẺẼẸẾỀỂỄỆÍÌỈĨỊÓÒỎÕỌỐỒỔỖỘỚỜỞỠỢÚÙỦŨỤỨỪỬỮỰÝỲỶỸỴ")


def vietnamese_first(reason: str, code: str) -> bool:
    """The reason opens with a Vietnamese sentence (before any technical detail in brackets)
    and ends with its reason code in brackets, like every message of the contract."""
    head = unicodedata.normalize("NFC", reason).split("(")[0]
    return any(ch in VIETNAMESE_LETTERS for ch in head) and reason.rstrip().endswith(f"[{code}]")
