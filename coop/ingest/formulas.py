"""Formulas without a calculated value in an .xlsx/.xlsm (forms.md "Values": nothing silently
changed). A spreadsheet program stores each formula with its result (`<c r="K5"><f>A5*2</f>
<v>40</v></c>`); a file written by a program (openpyxl, xlsxwriter, reporting software) may
store the formula alone. The reader (calamine) then gives an empty cell — a revenue read as
"not reported", a name formula's row skipped as blank — or xlsxwriter's placeholder 0.

`uncalculated_formulas(path)` reads the worksheets' XML (no parse of anything else) and lists
the formula cells whose result is not in the file:

- `<f>` with no `<v>`, or an empty `<v>` / `<v/>`, except a calculated empty text (`t="str"`,
  what Excel writes for `=""`) in a workbook that does not ask to be recalculated;
- in a workbook whose `<calcPr fullCalcOnLoad="1">` says its stored results are not to be
  trusted (what xlsxwriter and openpyxl write; Excel and LibreOffice never do), also a
  number result of exactly 0 (xlsxwriter's placeholder for "not calculated") and any empty
  result. A result the writing program did give (xlsxwriter's `value=`) other than 0 is kept;
- never an error result (`t="e"`: the reader gives the error, `excel_error`).

Cost: the worksheet XML is streamed in 1 MiB pieces; a piece without `<f` costs one regex
search; only formula cells are looked at (the cell's start tag is the `<` right before its
`<f>`). A cell without an `r` attribute makes the sheet be walked cell by cell. Measured on the
sample (301 .xlsx): see docs/performance.md / docs/architecture.md.
"""

from __future__ import annotations

import html
import logging
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["FormulaCell", "uncalculated_formulas", "scan_worksheets", "WorksheetScan", "ZIP_SUFFIXES"]

ZIP_SUFFIXES = (".xlsx", ".xlsm")
_CHUNK = 1 << 20
_MAX_XML = 4 << 20  # workbook.xml and its rels: bigger is no workbook a district sends


@dataclass(frozen=True)
class FormulaCell:
    row: int        # Excel row, 1-based
    column: int     # Excel column, 0-based (A = 0)
    formula: str    # as the clerk would see it: "=A5*2"


_TAG = re.compile(r"<(?:[\w.-]+:)?(sheet|Relationship|calcPr)\b([^>]*)>", re.S)
_ATTR = re.compile(r"([\w:.-]+)\s*=\s*[\"']([^\"']*)[\"']")
_F_START = re.compile(rb"<(?:[\w.-]+:)?f[\s/>]")
_CELL_TAG = re.compile(rb"<(?:[\w.-]+:)?c(?:\s([^>]*?))?\s*>\s*$", re.S)
_CELL_END = re.compile(rb"</(?:[\w.-]+:)?c>")
_F_ELEM = re.compile(rb"<(?:[\w.-]+:)?f\b([^>]*?)(?:/>|>(.*?)</(?:[\w.-]+:)?f>)", re.S)
_V_ELEM = re.compile(rb"<(?:[\w.-]+:)?v\s*(?:/>|>(.*?)</(?:[\w.-]+:)?v>)", re.S)
_ATTR_B = re.compile(rb"([\w:.-]+)\s*=\s*[\"']([^\"']*)[\"']")
_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d+)$")
# the walk cell by cell (sheets with a formula cell without `r`)
_ROW_OR_CELL = re.compile(rb"<(?:[\w.-]+:)?(row|c)\b([^>]*?)(/?)>", re.S)


def _workbook(zf: zipfile.ZipFile) -> tuple[list[tuple[str, str]], bool]:
    """([(sheet name, worksheet entry)], full_calc_on_load) from xl/workbook.xml and its rels."""
    infos = {i.filename.lower(): i for i in zf.infolist()}
    wb, rels = infos.get("xl/workbook.xml"), infos.get("xl/_rels/workbook.xml.rels")
    if wb is None or rels is None or wb.file_size > _MAX_XML or rels.file_size > _MAX_XML:
        return [], False
    targets: dict[str, str] = {}
    for kind, attrs in _TAG.findall(zf.read(rels).decode("utf-8", "replace")):
        a = dict(_ATTR.findall(attrs))
        if kind == "Relationship" and "Id" in a and "Target" in a:
            t = a["Target"]
            t = t.lstrip("/") if t.startswith("/") else f"xl/{t}"
            targets[a["Id"]] = t.lower()
    sheets: list[tuple[str, str]] = []
    full_calc = False
    for kind, attrs in _TAG.findall(zf.read(wb).decode("utf-8", "replace")):
        a = dict(_ATTR.findall(attrs))
        if kind == "calcPr":
            full_calc = a.get("fullCalcOnLoad", "").strip().lower() in ("1", "true")
        elif kind == "sheet":
            rid = next((v for k, v in a.items() if k.endswith(":id")), None)
            entry = targets.get(rid or "")
            if entry and entry in infos and "name" in a:
                sheets.append((html.unescape(a["name"]), infos[entry].filename))
    return sheets, full_calc


def _ref(ref: str) -> tuple[int, int] | None:
    m = _REF.match(ref.strip())
    if not m:
        return None
    col = 0
    for ch in m.group(1).upper():
        col = col * 26 + (ord(ch) - 64)
    return int(m.group(2)), col - 1


def _uncalculated(attrs: dict[bytes, bytes], content: bytes, full_calc: bool) -> bool:
    t = attrs.get(b"t", b"n").decode("ascii", "replace")
    if t == "e":
        return False
    v = _V_ELEM.search(content)
    value = (v.group(1) or b"").strip() if v else b""
    if not value:  # no result stored
        return full_calc or t not in ("str", "inlineStr")
    return full_calc and t == "n" and value in (b"0", b"0.0")


class _Scan:
    def __init__(self, full_calc: bool) -> None:
        self.full_calc = full_calc
        self.found: list[FormulaCell] = []
        self.shared: dict[bytes, tuple[str, str]] = {}  # si -> (formula, cell ref) of the master
        self.needs_walk = False

    def cell(self, attrs: dict[bytes, bytes], content: bytes, where: tuple[int, int] | None) -> None:
        f = _F_ELEM.search(content)
        if f is None:
            return
        f_attrs = dict(_ATTR_B.findall(f.group(1) or b""))
        text = html.unescape((f.group(2) or b"").decode("utf-8", "replace")).strip()
        ref = attrs.get(b"r", b"").decode("ascii", "replace")
        if f_attrs.get(b"t") == b"shared" and b"si" in f_attrs:
            if text:
                self.shared[f_attrs[b"si"]] = (text, ref)
            elif f_attrs[b"si"] in self.shared:
                master, mref = self.shared[f_attrs[b"si"]]
                text = f"{master} (chép từ ô {mref})" if mref else master
        if not _uncalculated(attrs, content, self.full_calc):
            return
        if where is None:
            where = _ref(ref)
        if where is None:
            self.needs_walk = True
            return
        self.found.append(FormulaCell(where[0], where[1], "=" + (text or "…")))

    def piece(self, seg: bytes) -> None:
        """Formula cells of a piece of sheet XML holding whole cells, each cell with its `r`."""
        pos = 0
        while True:
            m = _F_START.search(seg, pos)
            if m is None:
                return
            start = seg.rfind(b"<", 0, m.start())
            tag = _CELL_TAG.match(seg, start, m.start()) if start >= 0 else None
            end = _CELL_END.search(seg, m.start())
            if tag is None or end is None:
                pos = m.end()  # a <f…> that is no cell's first child (not in sheetData)
                continue
            attrs = dict(_ATTR_B.findall(tag.group(1) or b""))
            if b"r" not in attrs:
                self.needs_walk = True
                return
            self.cell(attrs, seg[m.start():end.start()], None)
            pos = end.end()

    def walk(self, data: bytes) -> None:
        """Cell by cell, counting rows and columns where `r` is missing (whole sheet in memory)."""
        self.found, self.shared, self.needs_walk = [], {}, False
        row, col = 0, -1
        for m in _ROW_OR_CELL.finditer(data):
            attrs = dict(_ATTR_B.findall(m.group(2) or b""))
            if m.group(1) == b"row":
                r = attrs.get(b"r")
                row = int(r) if r and r.isdigit() else row + 1
                col = -1
                continue
            where = _ref(attrs.get(b"r", b"").decode("ascii", "replace"))
            if where is None:
                where = (row, col + 1)
            col = where[1]
            if m.group(3) == b"/":
                continue
            end = _CELL_END.search(data, m.end())
            if end is None:
                return
            content = data[m.end():end.start()]
            if _F_START.search(content):
                self.cell(attrs, content, where)


def _is_worksheet(name: str) -> bool:
    n = name.lower()
    return n.startswith("xl/worksheets/") and n.endswith(".xml") and n.count("/") == 2


def _entry_flags(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[bool, bool]:
    """(a `<f` element anywhere in the entry, maybe a cell of type `t="d"`) — streamed; pieces
    overlap by a tag's length. A piece with neither `<f` nor `:f` (a prefixed `<x:f`) has no
    match of `_F_START`: one byte search instead of the regular expression. `t="d"` (a date
    written as ISO text: calamine's `DateTimeIso`) is flagged by its quoted `d` alone, so a
    false alarm is possible, a miss is not."""
    tail = b""
    formula = iso = False
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            if not chunk:
                return formula, iso
            buf = tail + chunk
            if not iso and _quoted_d(buf):
                iso = True
            if not formula and _after(buf, b"f", b"<:") and _F_START.search(buf):
                formula = True
            if formula and iso:
                return formula, iso
            tail = chunk[-64:]


_RARE_LOOKS = 64  # letters looked at one by one before a search of the whole piece instead


def _after(buf: bytes, letter: bytes, before: bytes) -> bool:
    """Whether `letter` follows a byte of `before` somewhere in `buf` (`b"<f" in buf or b":f" in
    buf`). Worksheet XML holds the letters d and f in a few names only (`sheetData`,
    `sheetFormatPr`, `ref=`): a C-level search for the letter alone (memchr) and a look at the byte
    before each is quicker than a search for the pairs, whose first byte is everywhere; after
    `_RARE_LOOKS` letters (text written in the sheet), the pairs are searched."""
    i = buf.find(letter, 1)
    for _ in range(_RARE_LOOKS):
        if i < 0:
            return False
        if buf[i - 1] in before:
            return True
        i = buf.find(letter, i + 1)
    return i >= 0 and any(bytes((b,)) + letter in buf for b in before)


def _quoted_d(buf: bytes) -> bool:
    """`b'"d"' in buf or b"'d'" in buf`, the letter looked for first (see `_after`)."""
    i = buf.find(b"d", 1)
    for _ in range(_RARE_LOOKS):
        if i < 0:
            return False
        q = buf[i - 1]
        if (q == 34 or q == 39) and i + 1 < len(buf) and buf[i + 1] == q:  # "d" or 'd'
            return True
        i = buf.find(b"d", i + 1)
    return i >= 0 and (b'"d"' in buf or b"'d'" in buf)


@dataclass(frozen=True)
class WorksheetScan:
    """One pass over an .xlsx's worksheets: the entries holding a formula, and whether any
    may hold a cell of type `t="d"` (ISO date text; never written by Excel)."""

    with_formulas: frozenset[str]
    iso_cells: bool


def scan_worksheets(path: Path) -> WorksheetScan | None:
    """The `WorksheetScan` of an .xlsx/.xlsm; None when the file is no such zip or a worksheet
    cannot be read to its end (then nothing is known)."""
    path = Path(path)
    if path.suffix.lower() not in ZIP_SUFFIXES:
        return None
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        return None
    with zf:
        try:
            return _scan_entries(zf)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError):
            return None


def _scan_entries(zf: zipfile.ZipFile) -> WorksheetScan:
    formulas: set[str] = set()
    iso = False
    for i in zf.infolist():
        if _is_worksheet(i.filename):
            f, d = _entry_flags(zf, i)
            if f:
                formulas.add(i.filename)
            iso = iso or d
    return WorksheetScan(frozenset(formulas), iso)


def _scan_sheet(zf: zipfile.ZipFile, entry: str, full_calc: bool) -> list[FormulaCell]:
    scan = _Scan(full_calc)
    carry = b""
    with zf.open(entry) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            buf = carry + chunk
            if not chunk:
                if buf and _F_START.search(buf):
                    scan.piece(buf)
                break
            cut = buf.rfind(b"row>")  # after a </row>: no cell is cut in two
            if cut < 0:
                carry = buf
                continue
            cut += 4
            seg, carry = buf[:cut], buf[cut:]
            if _F_START.search(seg):
                scan.piece(seg)
            if scan.needs_walk:
                break
    if scan.needs_walk:
        scan.walk(zf.read(entry))
    return scan.found


def uncalculated_formulas(path: Path, scan: WorksheetScan | None = None) -> dict[str, list[FormulaCell]]:
    """Sheet name -> its formula cells without a calculated value (only sheets that have some).
    {} for a file that is not an .xlsx/.xlsm zip (the reader says what is wrong with it).
    `scan`: the file's `scan_worksheets` when already made (its pass is then not repeated)."""
    path = Path(path)
    if path.suffix.lower() not in ZIP_SUFFIXES or (scan is not None and not scan.with_formulas):
        return {}  # the scan found no worksheet with a formula: no second opening of the zip
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        return {}
    out: dict[str, list[FormulaCell]] = {}
    with zf:
        try:  # most workbooks hold no formula at all: one pass over the worksheets decides
            with_formulas = (scan or _scan_entries(zf)).with_formulas
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError) as e:
            log.warning("formulas of %s not checked: %s", path.name, e)
            return {}
        if not with_formulas:
            return {}
        sheets, full_calc = _workbook(zf)
        for name, entry in sheets:
            if entry not in with_formulas:
                continue
            try:
                found = _scan_sheet(zf, entry, full_calc)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError) as e:
                # a damaged entry: the reader itself fails on it (its own message), or reads
                # less than is there; nothing more can be said about its formulas
                log.warning("formulas of sheet %r of %s not checked: %s", name, path.name, e)
                continue
            if found:
                out[name] = found
    return out
