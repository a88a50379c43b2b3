"""One file -> `FileResult`: typed rows per form, quarantined rows, file/sheet issues.

- `ingest_file(raw, reference)` for a file found by discovery; `ingest_path(path, year=...,
  district=..., source_file=..., reference=...)` for any file (used by `coop validate`).
- Per row every used column is parsed with `ColumnSpec.parse` (coop.ingest.values); then the
  form's pandera model (`schemas.forms.check_frame`, the file's sheets of the form in one
  frame) checks the value rules. A row with any bad cell is quarantined whole (one record per
  bad cell) and counts nowhere.
- Duplicate rules (per file, over all sheets of the form): an HTX reg_code on more than one
  row -> every such row `duplicate_code` (column reg_code); a THT key (commune + name,
  folded) repeated -> every such row `duplicate_group` (column name); a CHI_TIEU plan code
  (the code the label or code cell resolves to) on more than one row -> every such row
  `duplicate_plan_code` (column code): the rest of the plan loads. Rows with other errors
  take part in the count too (the code does appear on several rows).
- The province folder may hold only CHI_TIEU, a district folder only HTX/THT/HO_TRO
  (`form_not_allowed_here`, per sheet; for the whole file when no sheet is usable).
- A file never raises: unreadable -> `unreadable_file`, nothing in it -> `empty_file`, no
  sheet of any form -> `no_recognized_form`; sheets without a recognizable header are
  listed as `unrecognized_sheet` (severity ignored). Blank sheets are skipped silently.
- The spreadsheet is read, and its sheets normalized (`ingest_sheets`), under the reading
  limits (`coop.ingest.isolation.ingest_limited`: container pre-checks, then a worker process
  with memory and time limits, one per core): over a limit
  -> `resource_limit` with the figure; a reader crash or panic -> `unreadable_file`. Every
  exception but Ctrl-C/exit/cancellation is caught at the file boundary (a reader panic is a
  BaseException). `FileResult.transient` marks a failure the same bytes may not repeat
  (file not readable right now, time limit, killed worker): such a result is never cached.
- A duplicate's reason names how many rows share the code and the first few of them
  (`DUPLICATE_ROWS_SHOWN`), so 30,000 rows sharing a code stay linear in memory.
- `select_submissions(results)`: of two files of one year/district folder carrying the same
  form, the most recently modified (tie: later source_file) keeps it; the other loses that
  form's rows (accepted and quarantined) and gets a `superseded` issue naming the winner. A
  file left with no form at all is dropped from the selection; its issues then travel with
  the winning file's `file_issues` (still under the loser's source_file), so the loader
  records them and the ledger shows the file as superseded.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import polars as pl

from coop.ingest.discover import FileIssue, RawFile, file_issue
from coop.ingest.read import FormSheet, ReadError, Sheet, form_sheet, is_fatal, reader_error_message
from coop.ingest.values import UNDECIDED, CellError, format_raw, parse_common_cells
from coop.reference import Reference
from coop.reference import Unit as District
from coop.text import fold

if TYPE_CHECKING:
    from schemas.forms import ColumnSpec

log = logging.getLogger(__name__)

__all__ = [
    "FileResult", "SheetInfo", "FileIssue", "REJECTED_ROW_SCHEMA",
    "ingest_file", "ingest_path", "ingest_many", "select_submissions",
]

REJECTED_ROW_SCHEMA: dict[str, type[pl.DataType]] = {
    "source_file": pl.String,
    "sheet": pl.String,
    "row_number": pl.Int64,
    "column_name": pl.String,
    "raw_value": pl.String,
    "reason_code": pl.String,
    "reason": pl.String,
}


_NO_REJECTED = pl.DataFrame(schema=REJECTED_ROW_SCHEMA)


def _no_rejected() -> pl.DataFrame:
    """A new empty rejected-rows frame (`clear()` of a template: ~2 µs, not ~75 µs)."""
    return _NO_REJECTED.clear()


@dataclass
class SheetInfo:
    name: str
    form: str | None
    rows_accepted: int
    rows_rejected: int
    header_row: int | None
    #: non-blank rows below the header neither loaded nor quarantined, per kind
    #: (`coop.ingest.read.SKIP_KINDS`: title, column_numbers, section, total, signature, no_data)
    rows_skipped: dict[str, int] = field(default_factory=dict)


@dataclass
class FileResult:
    source_file: str            # path relative to the raw folder, POSIX separators
    year: int | None
    unit_code: str | None   # None for the province folder
    file_hash: str              # sha256 of the bytes
    modified_at: datetime
    forms: dict[str, pl.DataFrame] = field(default_factory=dict)
    rejected_rows: pl.DataFrame = field(default_factory=_no_rejected)
    file_issues: list[FileIssue] = field(default_factory=list)
    sheets: list[SheetInfo] = field(default_factory=list)

    def __post_init__(self) -> None:
        #: The failure may not repeat with the same bytes: never cache this result. A plain
        #: per-instance attribute, not a dataclass field (the fields are the contract of
        #: docs/architecture.md and what `coop.run.store.store_result` caches): never stored in
        #: the parsed-file cache, not compared, not in repr; a `dataclasses.replace` copy and a
        #: result loaded from the cache start False.
        self.transient: bool = False

    @property
    def rejected(self) -> bool:
        """The whole file is unusable."""
        return any(i.sheet is None and i.severity == "rejected" for i in self.file_issues)


# --------------------------------------------------------------------------- per sheet
@dataclass
class _Bad:
    row: int                  # position in the sheet's data rows
    column: str               # canonical column
    raw: str | None
    code: str
    reason: str


@dataclass
class _Parsed:
    fs: FormSheet
    typed: dict[str, list[Any]]          # typed column -> values (None where bad)
    raw: dict[str, list[Any]]            # canonical column -> raw cell values
    bad: list[_Bad]
    row_numbers: list[int]


class _RejectedRecord(TypedDict):
    """One quarantine record (a row of `FileResult.rejected_rows`, REJECTED_ROW_SCHEMA)."""

    source_file: str
    sheet: str
    row_number: int
    column_name: str
    raw_value: str | None
    reason_code: str
    reason: str


_TYPED_SOURCE = {"target_raw": "target", "target_min": "target", "target_max": "target"}


#: Parsed cells per Reference, one memo per (form, column, report year): cell -> typed value
#: (None where the cell is bad) and, apart, cell -> its CellError. `ColumnSpec.parse` is a pure
#: function of these and the reference, and the same cells come back in every file
#: (categories, statuses, small counts). A cell of a plain class (`_PLAIN_CELLS`) is its own
#: key; any other (a bool, a `ProblemCell`, ...) is keyed (class, cell), so `True` and `1.0`, or
#: a `ProblemCell` and its text, never share an entry. Dropped with its Reference (a finalizer,
#: so an id is never reused while its entries live); a column's memo is emptied when it grows
#: past `_PARSE_CACHE_COLUMN_MAX` entries, all of them past `_PARSE_CACHE_MAX` in all.
_ParseMemo = tuple[dict[Any, Any], dict[Any, CellError]]
_PARSE_CACHES: dict[int, dict[tuple[str, str, int | None], _ParseMemo]] = {}
_PARSE_CACHE_MAX = 50_000  # ~12 MB at most
_PARSE_CACHE_COLUMN_MAX = 8_000  # a column of distinct names or dates does not evict the categories
#: Cell classes of which no two values of different classes compare equal (nor hash alike by
#: accident of equality): such a cell can key the memo by itself.
_PLAIN_CELLS = frozenset({type(None), str, float, datetime})


def _parse_cache(reference: Reference) -> dict[tuple[str, str, int | None], _ParseMemo]:
    caches = _PARSE_CACHES.get(id(reference))
    if caches is None:
        caches = _PARSE_CACHES[id(reference)] = {}
        weakref.finalize(reference, _PARSE_CACHES.pop, id(reference), None)
    elif sum(len(ok) + len(err) for ok, err in caches.values()) > _PARSE_CACHE_MAX:
        caches.clear()
    return caches


def _parse_sheet(fs: FormSheet, year: int | None, reference: Reference) -> _Parsed:
    """Parse every used column of a sheet: its common cells (empty, plain numbers, dates, texts)
    in one pass (`coop.ingest.values.parse_common_cells`, no memo: mostly distinct values), the
    cells of a category-like column looked up in the column's memo; every other cell through
    `ColumnSpec.parse`, each distinct one once (memoized across files, `_parse_cache`)."""
    from schemas.forms import FORMS

    spec = FORMS[fs.form]
    sheet = fs.sheet
    rows = fs.data_rows
    contiguous = bool(rows) and rows == list(range(rows[0], rows[-1] + 1))
    caches = _parse_cache(reference)
    typed: dict[str, list[Any]] = {}
    raw: dict[str, list[Any]] = {}
    bad: list[_Bad] = []
    for col in spec.columns:
        j = fs.columns.get(col.name)
        if j is None:
            continue
        column = sheet.columns[j]
        whole = contiguous and len(column) > rows[-1]  # a slice: no index past the column's end
        values = column[rows[0]:rows[-1] + 1] if whole else list(map(column.__getitem__, rows))
        raw[col.name] = values
        memo = caches.get((fs.form, col.name, year))
        if memo is None or len(memo[0]) + len(memo[1]) > _PARSE_CACHE_COLUMN_MAX:
            memo = caches[(fs.form, col.name, year)] = ({}, {})
        ok, errors = memo
        out = parse_common_cells(col.kind, values, year)
        if out is None:  # categories, yes/no, stars, targets: few distinct cells, the memo's
            get, plain = ok.get, _PLAIN_CELLS
            out = [get(v, UNDECIDED) if v.__class__ in plain else UNDECIDED for v in values]
        slow = [k for k, t in enumerate(out) if t is UNDECIDED]
        if slow:
            _parse_cells(col, [values[k] for k in slow], slow, out, memo, year, reference, bad)
        if col.kind == "target":
            typed["target_raw"] = [t[0] if t else None for t in out]
            typed["target_min"] = [t[1] if t else None for t in out]
            typed["target_max"] = [t[2] if t else None for t in out]
        else:
            typed[col.name] = out
    numbers = sheet.row_numbers
    row_numbers = (numbers[rows[0]:rows[-1] + 1] if contiguous and len(numbers) > rows[-1]
                   else [numbers[i] for i in rows])
    return _Parsed(fs, typed, raw, bad, row_numbers)


def _parse_cells(col: ColumnSpec, cells: list[Any], where: list[int], out: list[Any], memo: _ParseMemo,
                 year: int | None, reference: Reference, bad: list[_Bad]) -> None:
    """`out[where[i]]` = the typed value of `cells[i]` (None where bad, a bad cell added to `bad`),
    each distinct cell parsed once: looked up in, or added to, the column's memo."""
    ok, errors = memo
    keys: list[Any] = cells if set(map(type, cells)) <= _PLAIN_CELLS else [(v.__class__, v) for v in cells]
    distinct = dict(zip(keys, cells, strict=True))  # each distinct cell once (the first of equal ones)
    for key in set(distinct).difference(ok).difference(errors):  # C loops, over the smaller side
        try:
            ok[key] = col.parse(distinct[key], year, reference)
        except CellError as e:
            errors[key] = e
    for k, key, v in zip(where, keys, cells, strict=True):
        if key in ok:
            out[k] = ok[key]
            continue
        error = errors[key]
        bad.append(_Bad(k, col.name, format_raw(v), error.code, error.reason))
        out[k] = (format_raw(v), None, None) if col.kind == "target" else None


def _fold_series(values: list[Any]) -> list[str | None]:
    """coop.text.fold, vectorized: NFC -> lower -> NFD without marks, đ -> d, spaces collapsed.
    (The definition `_dup_key` follows; kept to check it against, tests/test_ingest_speed.py.)"""
    if not values:
        return []
    return (pl.Series(values, dtype=pl.String)
            .str.normalize("NFC").str.to_lowercase().str.normalize("NFD")
            .str.replace_all(r"\p{Mn}", "").str.replace_all("đ", "d")
            .str.replace_all(r"\s+", " ").str.strip_chars().to_list())


def _dup_key(value: Any) -> str | None:
    """The THT duplicate key of a typed commune or name (already `clean_text`ed by the parser,
    or digits/a date from `format_raw`): `coop.text.fold` (memoized) with the spaces collapsed
    again (a combining mark standing alone between two spaces leaves two) — the same key as
    `_fold_series`, without a polars call per sheet."""
    if value is None:
        return None
    return " ".join(fold(str(value)).split())


#: Row numbers named in a duplicate's reason (then "…"; the count is always given).
DUPLICATE_ROWS_SHOWN = 5


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:DUPLICATE_ROWS_SHOWN])
    return shown + (", …" if len(rows) > DUPLICATE_ROWS_SHOWN else "")


def _duplicates(form: str, parsed: list[_Parsed]) -> dict[int, list[_Bad]]:
    """Extra bad cells from the duplicate rules, per index into `parsed`."""
    out: dict[int, list[_Bad]] = defaultdict(list)
    if form not in ("HTX", "THT", "CHI_TIEU"):
        return out
    keys: list[list[Any]] = []  # per sheet: the rule's key of each row (None: no key)
    for p in parsed:
        if form in ("HTX", "CHI_TIEU"):
            codes = p.typed.get("reg_code" if form == "HTX" else "code") or []
            keys.append([code or None for code in codes])
        else:
            names = p.typed.get("name") or []
            communes = p.typed.get("commune") or [None] * len(names)
            folded = {v: _dup_key(v) for v in {*names, *communes}}  # each distinct text folded once
            keys.append([(folded[c] or "", folded[n]) if folded[n] else None
                         for c, n in zip(communes, names, strict=True)])
    # the keys on two rows or more (C-level counting), in the order of their first row; then
    # only their rows are collected
    counts = Counter(key for sheet_keys in keys for key in sheet_keys)
    repeated = {key for key, n in counts.items() if n > 1 and key is not None}
    groups: dict[Any, list[tuple[int, int]]] = {key: [] for key in counts if key in repeated}
    if groups:
        for pi, sheet_keys in enumerate(keys):
            for k in [k for k, key in enumerate(sheet_keys) if key in repeated]:
                groups[sheet_keys[k]].append((pi, k))
    for key, where in groups.items():
        if len(where) < 2:
            continue
        rows_txt = _rows_text([parsed[pi].row_numbers[k] for pi, k in where[:DUPLICATE_ROWS_SHOWN + 1]])
        for pi, k in where:
            p = parsed[pi]
            if form == "HTX":
                rawv = format_raw(p.raw["reg_code"][k])
                reason = (f"Mã số HTX '{key}' bị trùng: xuất hiện ở {len(where)} dòng ({rows_txt}); "
                          f"mỗi HTX chỉ ghi một dòng [duplicate_code]")
                out[pi].append(_Bad(k, "reg_code", rawv, "duplicate_code", reason))
            elif form == "CHI_TIEU":  # which target holds is ambiguous: neither counts, the rest of the plan loads
                rawv = format_raw(p.raw["code"][k])
                reason = (f"Chỉ tiêu '{key}' được ghi ở {len(where)} dòng ({rows_txt}); mỗi chỉ tiêu chỉ ghi "
                          f"một dòng — không rõ dòng nào đúng nên không dòng nào được tính (plan code '{key}' "
                          f"on {len(where)} rows: ambiguous target, none used) [duplicate_plan_code]")
                out[pi].append(_Bad(k, "code", rawv, "duplicate_plan_code", reason))
            else:
                rawv = format_raw(p.raw["name"][k])
                reason = (f"Tổ hợp tác '{p.typed['name'][k]}' bị trùng (cùng xã và tên) ở {len(where)} dòng "
                          f"({rows_txt}) [duplicate_group]")
                out[pi].append(_Bad(k, "name", rawv, "duplicate_group", reason))
    return out


def _finish_form(form: str, parsed: list[_Parsed],
                 source_file: str) -> tuple[pl.DataFrame, list[_RejectedRecord], list[SheetInfo]]:
    """Accepted rows of one form (all its sheets), rejected-row records, sheet infos.

    The form's sheets of the file are validated together: one typed frame (the sheets one
    after the other, lineage columns included), one `schemas.forms.check_frame` (the pandera
    schema of the form), one filter — a few polars calls per form and file, not per sheet."""
    from schemas.forms import FORMS, TYPED_SCHEMAS, check_frame

    dups = _duplicates(form, parsed)
    order = {c: i for i, c in enumerate(FORMS[form].column_names)}
    schema = TYPED_SCHEMAS[form]
    starts: list[int] = []
    n = 0
    for p in parsed:
        starts.append(n)
        n += len(p.row_numbers)
    data: dict[str, pl.Series] = {}
    for c, dtype in schema.items():
        if not any(c in p.typed for p in parsed):
            continue  # no sheet has it: _conform adds it (nulls, or the contract's default)
        values: list[Any] = []
        for p in parsed:
            part = p.typed.get(c)
            values += part if part is not None else [None] * len(p.row_numbers)
        data[c] = pl.Series(c, values, dtype=dtype, strict=False)
    data["source_file"] = pl.Series("source_file", [source_file] * n, dtype=pl.String)
    sheet_names: list[str] = []
    row_numbers: list[int] = []
    for p in parsed:
        sheet_names += [p.fs.name] * len(p.row_numbers)
        row_numbers += p.row_numbers
    data["sheet"] = pl.Series("sheet", sheet_names, dtype=pl.String)
    data["row_number"] = pl.Series("row_number", row_numbers, dtype=pl.Int64)
    conformed, failures = check_frame(form, pl.DataFrame(list(data.values())))  # from a list: ~2x cheaper
    per_sheet: list[list[dict[str, Any]]] = [[] for _ in parsed]
    if failures.height:
        pi = 0
        for f in failures.iter_rows(named=True):  # sorted by row: the sheets in order
            while pi + 1 < len(parsed) and f["row_index"] >= starts[pi + 1]:
                pi += 1
            per_sheet[pi].append(f)
    keep = [True] * n
    rejected: list[_RejectedRecord] = []
    infos: list[SheetInfo] = []
    for pi, p in enumerate(parsed):
        bad = list(p.bad) + dups.get(pi, [])
        seen = {(b.row, b.column) for b in bad}
        for f in per_sheet[pi]:
            col = _TYPED_SOURCE.get(f["column_name"], f["column_name"])
            k = int(f["row_index"]) - starts[pi]
            if (k, col) in seen:
                continue  # already reported by the parser (the typed cell is null)
            seen.add((k, col))
            rawv = format_raw(p.raw[col][k]) if col in p.raw else None
            bad.append(_Bad(k, col, rawv, f["reason_code"], f["reason"]))
        bad_rows = {b.row for b in bad}
        for k in bad_rows:
            keep[starts[pi] + k] = False
        bad.sort(key=lambda b: (b.row, order.get(b.column, 99)))
        for b in bad:
            rejected.append({
                "source_file": source_file, "sheet": p.fs.name, "row_number": p.row_numbers[b.row],
                "column_name": b.column, "raw_value": b.raw, "reason_code": b.code, "reason": b.reason,
            })
        infos.append(SheetInfo(p.fs.name, form, len(p.row_numbers) - len(bad_rows), len(bad_rows),
                               p.fs.header_row, dict(p.fs.skipped)))
    accepted = conformed[list(schema) + ["source_file", "sheet", "row_number"]]  # no query: plain column picks
    if not all(keep):
        accepted = accepted[[i for i, k in enumerate(keep) if k]]  # a gather, in order
    return accepted, rejected, infos


# --------------------------------------------------------------------------- per file
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sheet_blank(s: Sheet) -> bool:
    return all(k is None for col in s.kinds for k in col)


_FORM_LABEL = {"HTX": "danh sách HTX", "THT": "danh sách tổ hợp tác", "HO_TRO": "kinh phí hỗ trợ",
               "CHI_TIEU": "chỉ tiêu kế hoạch"}


def ingest_path(path: Path, *, year: int | None, district: District | None, source_file: str | None = None,
                reference: Reference, modified_at: datetime | None = None, province: bool | None = None) -> FileResult:
    """Read one file. `district` None = the province folder (unless `province=False`, used
    by `coop validate` when the district is not known: every form is then allowed).
    Never raises: failures become FileIssues."""
    path = Path(path)
    source = source_file or path.name
    try:
        st = path.stat()
        mtime = modified_at or datetime.fromtimestamp(st.st_mtime, tz=UTC)
        digest = _sha256(path)
    except OSError as e:
        res = FileResult(source, year, district.code if district else None, "", modified_at or datetime.now(UTC))
        res.file_issues.append(file_issue(source, "unreadable_file", os_error_text(e)))
        res.transient = True  # readable again once restored or its permissions fixed
        return res
    res = FileResult(source, year, district.code if district else None, digest, mtime)
    try:
        _ingest_into(res, path, st.st_size, year, district, reference, province)
    except BaseException as e:  # noqa: BLE001 — one bad file never stops the others (panics included)
        if is_fatal(e):
            raise
        log.exception("reading %s failed", source)
        res.forms, res.sheets = {}, []
        res.rejected_rows = pl.DataFrame(schema=REJECTED_ROW_SCHEMA)
        if isinstance(e, MemoryError):
            res.file_issues = [file_issue(source, "resource_limit", "Không đủ bộ nhớ để xử lý tệp; tệp quá lớn")]
        else:
            res.file_issues = [file_issue(source, "unreadable_file", reader_error_message(e, path.suffix, path=path))]
        res.transient = True  # not a property of the file's bytes: try again next run
    return res


def os_error_text(e: OSError) -> str:
    """A Vietnamese sentence for an error opening a file, the technical detail after it."""
    detail = f"({type(e).__name__}: {e.strerror or e})"
    if isinstance(e, PermissionError):
        return f"Không có quyền đọc tệp trên máy chủ {detail}; kiểm tra quyền của tệp/thư mục"
    if isinstance(e, FileNotFoundError):
        return f"Tệp không còn ở đó (bị xoá, đổi tên hoặc liên kết hỏng) {detail}"
    return f"Không mở được tệp {detail}"


def _ingest_into(res: FileResult, path: Path, size: int, year: int | None, district: District | None,
                 reference: Reference, province: bool | None) -> None:
    source = res.source_file
    if size == 0:
        res.file_issues.append(file_issue(source, "empty_file", "Tệp rỗng (0 byte), không có dữ liệu"))
        return
    from coop.ingest.isolation import IsolatedReadError, ingest_limited

    try:  # read and normalized in the reader worker (or here when isolation is off)
        part = ingest_limited(path, reference, IngestJob(source, year, district, province, path.suffix))
    except IsolatedReadError as e:  # over a reading limit, the reader crashed, or not readable now
        res.file_issues.append(file_issue(source, e.reason_code, str(e)))
        res.transient = e.transient
        return
    except ReadError as e:  # the reader's message: Vietnamese sentence, then the technical detail
        res.file_issues.append(file_issue(source, "unreadable_file",
                                          reader_error_message(str(e) or type(e).__name__, path.suffix, path=path)))
        return
    res.forms, res.rejected_rows, res.sheets = part.forms, part.rejected_rows, part.sheets
    res.file_issues += part.file_issues


@dataclass(frozen=True)
class IngestJob:
    """What normalizing a file's sheets needs besides the sheets and the Reference (sent with
    the file to the reader worker, `coop.ingest.isolation.ingest_limited`)."""

    source_file: str
    year: int | None
    district: District | None
    province: bool | None
    suffix: str  # the file's extension, for the reader's messages


_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def ingest_sheets(sheets: list[Sheet], job: IngestJob, reference: Reference) -> FileResult:
    """Everything after reading: the sheets of one file -> its forms, quarantine, issues and
    sheet infos (a FileResult whose hash and time the caller fills). Runs in the reader worker
    process, so both cores parse while the parent only waits and stores."""
    res = FileResult(job.source_file, job.year, job.district.code if job.district else None, "", _NO_TIME)
    _normalize_sheets(res, sheets, job.suffix, job.year, job.district, reference, job.province)
    return res


def _normalize_sheets(res: FileResult, sheets: list[Sheet], suffix: str, year: int | None,
                      district: District | None, reference: Reference, province: bool | None) -> None:
    from schemas.forms import DISTRICT_FORMS, FORMS, PROVINCE_FORMS

    source = res.source_file
    from coop.ingest.legacy_text import legacy_issues

    res.file_issues += legacy_issues(source, sheets)  # TCVN3/VNI text converted to Unicode, noted per sheet
    broken = [(s.name, s.error) for s in sheets if s.error]
    sheets = [s for s in sheets if not s.error and not _sheet_blank(s)]
    for name, error in broken:
        res.file_issues.append(file_issue(source, "unreadable_file",
                                          reader_error_message(error, suffix, sheet=name), sheet=name))
    if not sheets and broken:
        res.file_issues.append(file_issue(source, "unreadable_file", "Không đọc được trang tính nào của tệp"))
        return
    if not sheets:
        res.file_issues.append(file_issue(source, "empty_file", "Tệp không có trang tính nào chứa dữ liệu"))
        return
    is_province = (district is None) if province is None else province
    allowed = (tuple(FORMS) if province is False and district is None
               else (PROVINCE_FORMS if is_province else DISTRICT_FORMS))
    found: list[FormSheet] = []
    unrecognized: list[Sheet] = []
    not_allowed: list[FormSheet] = []
    two_tables: list[FormSheet] = []
    for s in sheets:
        fs = form_sheet(s)
        if fs is None:
            unrecognized.append(s)
        elif fs.other_tables:  # two forms side by side: never mixed, never half read
            two_tables.append(fs)
        elif fs.form not in allowed:
            fs2 = form_sheet(s, allowed)  # a header that also fits an allowed form
            (found if fs2 is not None else not_allowed).append(fs2 or fs)
        else:
            found.append(fs)
    for fs in two_tables:  # per sheet, even when no other sheet is usable (the sheet says why)
        res.file_issues.append(file_issue(source, "two_tables_on_sheet", _two_tables_text(fs), sheet=fs.name))
    if not found:
        if not_allowed:
            where = "thư mục tỉnh (province) chỉ nhận biểu chỉ tiêu kế hoạch" if is_province else \
                "thư mục huyện không nhận biểu chỉ tiêu kế hoạch của tỉnh"
            forms = ", ".join(sorted({_FORM_LABEL[f.form] for f in not_allowed}))
            res.file_issues.append(file_issue(source, "form_not_allowed_here",
                                              f"Biểu {forms} không đặt ở thư mục này: {where}"))
        if not two_tables and not not_allowed:
            res.file_issues.append(file_issue(
                source, "no_recognized_form",
                "Không có trang tính nào có dòng tiêu đề của một biểu mẫu (HTX, THT, hỗ trợ, chỉ tiêu); "
                "kiểm tra tên các cột theo mẫu"))
        tt = {fs.name: fs for fs in two_tables}
        res.sheets = [SheetInfo(s.name, tt[s.name].form if s.name in tt else None, 0, 0,
                                tt[s.name].header_row if s.name in tt else None) for s in sheets]
        return
    for fs in not_allowed:
        where = "thư mục tỉnh chỉ nhận biểu chỉ tiêu kế hoạch" if is_province else \
            "thư mục huyện không nhận biểu chỉ tiêu kế hoạch"
        res.file_issues.append(file_issue(source, "form_not_allowed_here",
                                          f"Trang '{fs.name}' là biểu {_FORM_LABEL[fs.form]}: {where}",
                                          sheet=fs.name))
    for s in unrecognized:
        res.file_issues.append(file_issue(
            source, "unrecognized_sheet",
            f"Trang '{s.name}' không có dòng tiêu đề của biểu mẫu nào, đã bỏ qua", sheet=s.name, severity="ignored"))
    by_form: dict[str, list[_Parsed]] = defaultdict(list)
    for fs in found:
        by_form[fs.form].append(_parse_sheet(fs, year, reference))
    rejected: list[_RejectedRecord] = []
    infos: dict[str, SheetInfo] = {}
    for form in FORMS:
        if form not in by_form:
            continue
        accepted, rej, sinfos = _finish_form(form, by_form[form], source)
        res.forms[form] = accepted
        rejected += rej
        infos.update({i.name: i for i in sinfos})
    res.rejected_rows = pl.DataFrame(rejected, schema=REJECTED_ROW_SCHEMA) if rejected else \
        _no_rejected()
    na = {fs.name: fs for fs in not_allowed + two_tables}
    res.sheets = [infos.get(s.name) or SheetInfo(s.name, na[s.name].form if s.name in na else None, 0, 0,
                                                 na[s.name].header_row if s.name in na else None)
                  for s in sheets]


def _two_tables_text(fs: FormSheet) -> str:
    """Vietnamese first, then the technical detail: sheet, header row, which tables in which columns."""
    a, b = fs.table_columns
    others = "; ".join(f"{_FORM_LABEL.get(f, f) if f else 'một bảng khác'} ở cột {x}–{y}"
                       for f, x, y in fs.other_tables)
    tech = ", ".join(f"{f or 'another table'} in columns {x}-{y}" for f, x, y in fs.other_tables)
    return (f"Trang '{fs.name}' có hai bảng đặt cạnh nhau: {_FORM_LABEL.get(fs.form, fs.form)} ở cột {a}–{b} "
            f"và {others} (dòng tiêu đề {fs.header_row}); mỗi biểu phải ở một trang tính riêng — trang này chưa "
            f"được đọc, hãy chuyển một bảng sang trang tính khác rồi gửi lại (sheet '{fs.name}', header row "
            f"{fs.header_row}: {fs.form} in columns {a}-{b}, {tech}: two tables side by side, not read)")


def _from_raw_dir(path: Path, raw_dir: Path, reference: Reference) -> RawFile:
    path = Path(path)
    rel = path.resolve().relative_to(Path(raw_dir).resolve())
    parts = rel.parts
    year = int(parts[0])
    district = None if reference.is_province_folder(parts[1]) else reference.find_unit(parts[1], year).unit
    st = path.stat()
    return RawFile(path, rel.as_posix(), year, district, st.st_size,
                   datetime.fromtimestamp(st.st_mtime, tz=UTC))


def ingest_file(raw: RawFile | Path, reference: Reference | None = None, *, raw_dir: Path | None = None) -> FileResult:
    """Read one discovered file. (Also accepts a path under `raw_dir`, laid out as
    `<year>/<district>/<file>`, for convenience in tests.)"""
    if reference is None:
        from coop.reference import load_reference

        reference = load_reference()
    if not isinstance(raw, RawFile):
        raw = _from_raw_dir(Path(raw), Path(raw_dir) if raw_dir else Path(raw).parents[2], reference)
    return ingest_path(raw.path, year=raw.year, district=raw.district, source_file=raw.source_file,
                       reference=reference, modified_at=raw.modified_at)


def ingest_many(raws: Iterable[RawFile], reference: Reference) -> list[FileResult]:
    return [ingest_file(r, reference) for r in raws]


# --------------------------------------------------------------------------- resubmissions
def _form_sheets(r: FileResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    bad = {i.sheet for i in r.file_issues if i.sheet is not None and i.severity == "rejected"}
    for s in r.sheets:
        if s.form and s.name not in bad:
            out[s.form].append(s.name)
    return out


def select_submissions(results: list[FileResult]) -> list[FileResult]:
    """Resolve resubmissions (see module doc). Returns new FileResult objects; the input is
    not modified. Order of the input is kept."""
    groups: dict[tuple[int | None, str | None], list[int]] = defaultdict(list)
    for idx, r in enumerate(results):
        if not r.rejected:
            groups[(r.year, r.unit_code)].append(idx)
    lost: dict[int, dict[str, int]] = defaultdict(dict)   # loser idx -> form -> winner idx
    for idxs in groups.values():
        if len(idxs) < 2:
            continue
        forms: dict[str, list[int]] = defaultdict(list)
        for idx in idxs:
            for form in _form_sheets(results[idx]):
                forms[form].append(idx)
        for form, holders in forms.items():
            if len(holders) < 2:
                continue
            win = max(holders, key=lambda i: (results[i].modified_at, results[i].source_file))
            for i in holders:
                if i != win:
                    lost[i][form] = win
    if not lost:
        return list(results)
    out: list[FileResult | None] = []
    carry: dict[int, list[FileIssue]] = defaultdict(list)
    for idx, r in enumerate(results):
        if idx not in lost:
            out.append(r)
            continue
        sheets_of = _form_sheets(r)
        gone_sheets: set[str] = set()
        issues = list(r.file_issues)
        for form, win in lost[idx].items():
            w = results[win]
            for sname in sheets_of[form]:
                gone_sheets.add(sname)
                issues.append(file_issue(
                    r.source_file, "superseded",
                    f"Biểu {_FORM_LABEL.get(form, form)} (trang '{sname}') đã được thay bằng bản nộp lại mới hơn "
                    f"'{w.source_file}' (sửa lúc {w.modified_at:%d/%m/%Y %H:%M}); số liệu của trang này không dùng",
                    sheet=sname, severity="superseded"))
        kept_forms = {f: df for f, df in r.forms.items() if f not in lost[idx]}
        rej = r.rejected_rows
        if rej is not None and rej.height:
            rej = rej.filter(~pl.col("sheet").is_in(sorted(gone_sheets)))
        new = replace(r, forms=kept_forms, rejected_rows=rej, file_issues=issues)
        if any(f not in lost[idx] for f in _form_sheets(r)):
            out.append(new)
        else:  # wholly superseded: dropped; its issues travel with the winner
            out.append(None)
            win = next(iter(lost[idx].values()))
            carry[win] += issues
    final: list[FileResult] = []
    for idx, kept in enumerate(out):
        if kept is None:
            continue
        if carry.get(idx):
            kept = replace(kept, file_issues=list(kept.file_issues) + carry[idx])
        final.append(kept)
    # a carried issue whose winner was itself dropped: attach to the first kept file
    kept_idx = {idx for idx, kept in enumerate(out) if kept is not None}
    orphans = [i for w, iss in carry.items() if w not in kept_idx for i in iss]
    if orphans and final:
        final[0] = replace(final[0], file_issues=list(final[0].file_issues) + orphans)
    return final
