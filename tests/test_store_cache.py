"""The parsed-file cache entry (`coop.run.store`: one `cache/<key>.result` file per result):
a stored FileResult comes back equal; an entry that does not check (torn by a power cut,
truncated, zero-filled, a flipped byte, written for another key, the former folder layout) is
a cache miss, never a wrong result; replace/keep, pruning and the temp files."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from coop.ingest.normalize import REJECTED_ROW_SCHEMA, FileIssue, FileResult, SheetInfo
from coop.run import store


def _result(n: int = 3, source: str = "2020/148/a.xlsx") -> FileResult:
    htx = pl.DataFrame({
        "ten": [f"HTX Bình Minh {i}" for i in range(n)],
        "so_thanh_vien": pl.Series([i * 10 if i % 2 else None for i in range(n)], dtype=pl.Int64),
        "von": [1.5 * i for i in range(n)],
        "ngay_thanh_lap": [date(2015, 1, 1 + i % 28) for i in range(n)],
        "hoat_dong": [i % 3 != 0 for i in range(n)],
    })
    tv = pl.DataFrame(schema={"ten": pl.String, "so": pl.Int64, "ngay": pl.Date})  # an empty form
    rejected = pl.DataFrame({"source_file": [source], "sheet": ["HTX"], "row_number": [7], "column_name": ["von"],
                             "raw_value": ["1,2,3"], "reason_code": ["bad_number"], "reason": ["Số không hợp lệ"]},
                            schema=REJECTED_ROW_SCHEMA)
    return FileResult(
        source_file=source, year=2020, unit_code="148", file_hash="ab" * 32,
        modified_at=datetime(2021, 1, 15, 8, 0, tzinfo=UTC), forms={"htx": htx, "thanh_vien": tv},
        rejected_rows=rejected,
        file_issues=[FileIssue(source_file=source, sheet="Tổng hợp", reason_code="unrecognized_sheet",
                               reason="Trang 'Tổng hợp' không có dòng tiêu đề [unrecognized_sheet]",
                               severity="ignored")],
        sheets=[SheetInfo("HTX", "htx", n, 1, 4, {"title": 2, "total": 1}), SheetInfo("Tổng hợp", None, 0, 0, None)])


def _assert_same(back: FileResult | None, r: FileResult) -> None:
    assert back is not None and type(back) is FileResult and back.transient is False
    assert (back.source_file, back.year, back.unit_code, back.file_hash, back.modified_at) == \
        (r.source_file, r.year, r.unit_code, r.file_hash, r.modified_at)
    assert list(back.forms) == list(r.forms)
    for form, df in r.forms.items():
        assert back.forms[form].schema == df.schema and back.forms[form].equals(df, null_equal=True)
    assert back.rejected_rows.schema == r.rejected_rows.schema and back.rejected_rows.equals(r.rejected_rows)
    assert back.file_issues == r.file_issues and back.sheets == r.sheets


def test_round_trip_and_meta(tmp_path: Path) -> None:
    r = _result()
    path = store.store_result(tmp_path, "k1", r)
    assert path == tmp_path / "cache" / "k1.result"
    _assert_same(store.load_result(tmp_path, "k1"), r)
    later = datetime(2022, 3, 4, tzinfo=UTC)
    assert store.load_result(tmp_path, "k1", modified_at=later).modified_at == later  # type: ignore[union-attr]
    meta = store.load_meta(tmp_path, "k1")
    assert meta is not None and meta.forms == {} and meta.rejected_rows.height == 0
    assert (meta.file_issues, meta.sheets, meta.file_hash) == (r.file_issues, r.sheets, r.file_hash)
    assert store.cached_keys(tmp_path) == {"k1"}
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["k1.result"]  # no temp file left


def test_missing_entry_is_a_silent_miss(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert store.load_result(tmp_path, "nope") is None and store.load_meta(tmp_path, "nope") is None
    assert store.cached_keys(tmp_path) == set() and not caplog.records


def _damaged(data: bytes) -> list[tuple[str, bytes]]:
    """What a power cut or a bad disk can leave under the entry's name."""
    half = len(data) // 2
    out = [("empty", b""), ("zero-filled", bytes(len(data))), ("zero tail", data[:half] + bytes(len(data) - half))]
    out += [(f"truncated at {n}", data[:n]) for n in range(0, len(data), max(1, len(data) // 97))]
    out += [(f"byte {n} flipped", data[:n] + bytes([data[n] ^ 0x40]) + data[n + 1:])
            for n in range(0, len(data), max(1, len(data) // 89))]
    out += [("appended", data + b"\0")]
    return out


def test_a_damaged_entry_is_a_cache_miss_never_a_wrong_result(tmp_path: Path) -> None:
    r = _result(50)
    path = store.store_result(tmp_path, "k1", r)
    good = path.read_bytes()
    header_end = store._PREFIX + store._header_length(good[:store._PREFIX])
    for what, data in _damaged(good):
        path.write_bytes(data)
        assert store.load_result(tmp_path, "k1") is None, what
        meta = store.load_meta(tmp_path, "k1")  # reads the header alone: checked when the header is hit
        if len(data) < header_end or data[:header_end] != good[:header_end]:
            assert meta is None, what
        else:
            assert meta is not None and meta.sheets == r.sheets, what
    store.store_result(tmp_path, "k1", r, replace=True)  # the next read stores it again
    _assert_same(store.load_result(tmp_path, "k1"), r)


def test_an_entry_under_another_keys_name_is_not_used(tmp_path: Path) -> None:
    store.store_result(tmp_path, "k1", _result(source="2020/148/a.xlsx"))
    (tmp_path / "cache" / "k1.result").rename(tmp_path / "cache" / "k2.result")
    assert store.cached_keys(tmp_path) == {"k2"}  # planned as cached ...
    assert store.load_result(tmp_path, "k2") is None and store.load_meta(tmp_path, "k2") is None  # ... never used


def test_the_former_folder_layout_is_a_miss_and_pruned(tmp_path: Path) -> None:
    old = tmp_path / "cache" / "k1"
    old.mkdir(parents=True)
    (old / "meta.json").write_text('{"fields": {}, "forms": {}}')
    (old / "rejected.parquet").write_bytes(b"PAR1")
    assert store.cached_keys(tmp_path) == set() and store.load_result(tmp_path, "k1") is None
    store.store_result(tmp_path, "k1", _result())
    assert store.cached_keys(tmp_path) == {"k1"}
    assert store.prune_cache(tmp_path, {"k1"}) == 1 and not old.exists()  # the old folder goes
    _assert_same(store.load_result(tmp_path, "k1"), _result())


def test_keep_replace_prune_and_temp_files(tmp_path: Path) -> None:
    a, b = _result(2), _result(5)
    store.store_result(tmp_path, "k1", a)
    store.store_result(tmp_path, "k1", b)  # kept
    _assert_same(store.load_result(tmp_path, "k1"), a)
    store.store_result(tmp_path, "k1", b, replace=True)  # swapped
    _assert_same(store.load_result(tmp_path, "k1"), b)
    store.store_result(tmp_path, "k2", a)
    (tmp_path / "cache" / ".tmp-k3-1-abcdef").write_bytes(b"half")  # a crash's leftover
    assert store.prune_cache(tmp_path, {"k2"}) == 1
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["k2.result"]


def test_a_failed_write_leaves_no_entry_and_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.store_result(tmp_path, "k0", _result())

    def full_disk(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", full_disk)
    with pytest.raises(OSError):
        store.store_result(tmp_path, "k1", _result())
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["k0.result"]
