"""State kept between runs, beside the warehouse in `.state/` (default `data/warehouse/.state/`).

- `hashes.json` — stat cache: absolute path -> size, mtime_ns, ctime_ns, inode, sha256. When a
  file's path and all four equal the entry, its hash is reused without reading its bytes (ctime
  moves with every write, even one that puts the old mtime back).
- `cache/<key>.result` — one parsed `FileResult` per file, in one file: a fixed prefix (magic
  with the layout's version, header length, sha256 of the header), a JSON header (the key it
  was written under; source, year, unit, hash, issues, sheets; the byte length of each frame;
  sha256 of the payload), then the payload: `rejected_rows` and each accepted form as an Arrow
  IPC stream (lz4). Written to a temporary file and renamed into place, so a crash never leaves
  a half entry under its name. The key is `cache_key` (reader fingerprint, content hash, source
  file). An entry is used only when the magic, the lengths, both digests and the key it records
  all check; anything else (torn, truncated, zero-filled, misplaced, the former `cache/<key>/`
  folder layout) is a cache miss: the file is read again.
- `published.json` — fingerprint of the inputs of the last published build and the identity
  of the file published (the "nothing changed" check of `coop.run.plan.is_unchanged`).
- `pending_runs.jsonl` — runs not recorded in any published warehouse yet (no-op and failed
  runs); the next published build copies them into `audit.runs`.
- `unchanged.json` — the quick "nothing changed" check's record: a stat snapshot of the
  inputs and what the no-op run reported (coop.run.quick).
- `model_deps.json` — the SQL models' parsed dependencies by SQL text (coop.warehouse.models).
- `retry.json` — files whose last read failed in a way the same bytes may not repeat (not
  readable right now, time limit, killed reader: `FileResult.transient`): source_file ->
  hash. Such a result is never cached, and while a file is listed no run is a no-op.

The small JSON files are read and written by coop.run.state (standard library only), the hash
ledger and the cache here. Every write is atomic (temporary file or folder, then rename). A
damaged state file is only a cache: it is ignored with a warning. Plain functions; no Prefect.

Cache entries are not fsync'ed (the other state files are): a power cut may leave an entry
renamed into place whose bytes never reached the disk (empty, short or zero-filled). Such an
entry fails its length or digest check on load, which is a cache miss like a missing entry:
the file is read again. Nothing else trusts an entry's bytes (`cached_keys` only plans which
files to read; `load_result`/`load_meta` decide), so a lost entry costs one re-read, never a
wrong result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import shutil
import struct
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import polars as pl

from coop.ingest.normalize import FileIssue, FileResult, SheetInfo

# the small state files live in coop.run.state (standard library only); named here too for the
# callers that reach every state of `.state/` through this module
from coop.run.state import append_pending_run as append_pending_run
from coop.run.state import atomic_write_text, read_json
from coop.run.state import clear_pending_runs as clear_pending_runs
from coop.run.state import from_json_value as from_json_value
from coop.run.state import note_retry as note_retry
from coop.run.state import read_pending_runs as read_pending_runs
from coop.run.state import read_published as read_published
from coop.run.state import read_retry as read_retry
from coop.run.state import state_dir as state_dir
from coop.run.state import to_json_value as to_json_value
from coop.run.state import write_published as write_published

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def utc_from_ns(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)


@dataclass
class HashedFile:
    source_file: str
    path: Path
    size: int
    mtime_ns: int
    file_hash: str
    hashed_now: bool  # bytes were read to compute the hash in this run

    @property
    def modified_at(self) -> datetime:
        return utc_from_ns(self.mtime_ns)


def hash_files(paths: Mapping[str, Path], state: Path) -> dict[str, HashedFile]:
    """sha256 of each file (source_file -> path). Reuses the stored hash when path, size,
    mtime, ctime and inode equal the stat cache's entry; updates the cache. Files that vanished are skipped; a
    file that cannot be stat'ed or read (no permission, I/O error) gets an empty hash and no
    stat-cache entry (the reader then rejects it with the reason; never fatal to the run)."""
    cache_file = Path(state) / "hashes.json"
    known: dict[str, Any] = read_json(cache_file, {})
    out: dict[str, HashedFile] = {}
    fresh: dict[str, Any] = {}
    wanted: set[str] = set()
    for source, path in sorted(paths.items()):
        try:
            ident = str(Path(path).resolve())  # keyed by absolute path: another raw folder is another file
        except (OSError, RuntimeError):  # a link loop
            ident = str(Path(path).absolute())
        wanted.add(ident)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        except OSError as e:  # no permission on the folder, a link loop, I/O error
            log.warning("Cannot stat %s: %s", source, e)
            out[source] = HashedFile(source, Path(path), 0, 0, "", True)
            continue
        k = known.get(ident)
        if (k and k.get("size") == st.st_size and k.get("mtime_ns") == st.st_mtime_ns
                and k.get("ctime_ns") == st.st_ctime_ns and k.get("ino") == st.st_ino and k.get("sha256")):
            digest, now = k["sha256"], False
        else:
            try:
                digest, now = sha256_file(Path(path)), True
            except OSError as e:  # no read permission, vanished meanwhile, I/O error
                log.warning("Cannot hash %s: %s", source, e)
                out[source] = HashedFile(source, Path(path), st.st_size, st.st_mtime_ns, "", True)
                continue
        out[source] = HashedFile(source, Path(path), st.st_size, st.st_mtime_ns, digest, now)
        fresh[ident] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino,
                        "sha256": digest}
    # keep entries of files outside this run's scope (e.g. other years); drop vanished ones
    merged = {s: v for s, v in {**known, **fresh}.items() if s in fresh or s not in wanted}
    if merged != known:  # ASCII JSON: a path that is not UTF-8 is stored escaped, never an encode error
        atomic_write_text(cache_file, json.dumps(merged, ensure_ascii=True, sort_keys=True, indent=0))
    return out


def cache_key(reader_fp: str, file_hash: str, source_file: str) -> str:
    return hashlib.sha256(f"{reader_fp}\0{file_hash}\0{source_file}".encode()).hexdigest()[:32]


def _cache_root(state: Path) -> Path:
    return Path(state) / "cache"


_T = TypeVar("_T")


def _build(cls: type[_T], data: Mapping[str, Any]) -> _T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # always a dataclass here
    return cls(**{k: v for k, v in data.items() if k in names})


#: A cache entry's file name: `<key>` + this suffix, in `cache/`.
_ENTRY_SUFFIX: Final = ".result"
#: First bytes of an entry; the digit is the layout's version (another version: a cache miss).
_MAGIC: Final = b"COOPRES1"
_LEN: Final = struct.Struct("<Q")  # the header's length in bytes
_PREFIX: Final = len(_MAGIC) + _LEN.size + 32  # magic, header length, sha256 of the header
#: Arrow IPC stream compression of the frames: cheap to write and read (parquet cost ~10x the
#: CPU), a third of the uncompressed size.
_IPC_COMPRESSION: Final = "lz4"


def _entry_path(state: Path, key: str) -> Path:
    return _cache_root(state) / f"{key}{_ENTRY_SUFFIX}"


def _frame_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_ipc_stream(buf, compression=_IPC_COMPRESSION)
    return buf.getvalue()


def _encode_entry(key: str, result: FileResult) -> bytes:
    """One FileResult as the bytes of one entry (layout in the module docstring)."""
    forms = result.forms or {}
    blobs = [_frame_bytes(result.rejected_rows), *(_frame_bytes(df) for df in forms.values())]
    payload = b"".join(blobs)
    header = json.dumps({
        "key": key,
        "fields": {f.name: to_json_value(getattr(result, f.name)) for f in dataclasses.fields(result)
                   if f.name not in ("forms", "rejected_rows")},
        "rejected": len(blobs[0]),
        "forms": [[form, len(blob)] for form, blob in zip(forms, blobs[1:], strict=True)],
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }, ensure_ascii=False).encode("utf-8")
    return b"".join((_MAGIC, _LEN.pack(len(header)), hashlib.sha256(header).digest(), header, payload))


def _header_length(prefix: bytes) -> int:
    if len(prefix) != _PREFIX or not prefix.startswith(_MAGIC):
        raise ValueError("not a cache entry of this layout (or torn)")
    n: int = _LEN.unpack_from(prefix, len(_MAGIC))[0]
    return n


def _checked_header(key: str, prefix: bytes, header: bytes) -> dict[str, Any]:
    """The entry's header, once its length, its digest and the key it records all check.
    Raises ValueError otherwise (a torn, damaged or misplaced entry)."""
    if len(header) != _header_length(prefix) or hashlib.sha256(header).digest() != prefix[-32:]:
        raise ValueError("header torn or damaged")
    meta = json.loads(header.decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("key") != key:
        raise ValueError("the entry was written for another key")
    return meta


def _result_fields(meta: Mapping[str, Any], modified_at: datetime | None) -> dict[str, Any]:
    """The FileResult fields of a checked header, but the frames."""
    fields: dict[str, Any] = from_json_value(meta["fields"])
    fields["file_issues"] = [_build(FileIssue, i) for i in fields.get("file_issues") or []]
    fields["sheets"] = [_build(SheetInfo, s) for s in fields.get("sheets") or []]
    if modified_at is not None and "modified_at" in fields:
        fields["modified_at"] = modified_at
    return fields


def store_result(state: Path, key: str, result: FileResult, replace: bool = False) -> Path:
    """Write one FileResult as `cache/<key>.result` (temporary file + rename: crash-safe; not
    fsync'ed, see the module docstring). An existing entry is kept, or with `replace=True`
    swapped for the new one (the rename replaces it atomically)."""
    final = _entry_path(state, key)
    if final.exists() and not replace:
        return final
    data = _encode_entry(key, result)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{key}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, final)  # a concurrent writer of the same key wrote the same content
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return final


def load_result(state: Path, key: str, modified_at: datetime | None = None) -> FileResult | None:
    """The cached FileResult of `cache/<key>.result`, or None (missing entry; or an unreadable,
    torn or damaged one: its lengths or digests do not check, or it records another key)."""
    path = _entry_path(state, key)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("Ignoring unreadable cache entry %s: %s", path, e)
        return None
    try:
        end = _PREFIX + _header_length(data[:_PREFIX])
        meta = _checked_header(key, data[:_PREFIX], data[_PREFIX:end])
        sizes: list[int] = [meta["rejected"], *(size for _, size in meta["forms"])]
        if len(data) - end != sum(sizes) or \
                hashlib.sha256(memoryview(data)[end:]).hexdigest() != meta["payload_sha256"]:
            raise ValueError("payload torn or damaged")
        frames: list[pl.DataFrame] = []
        for size in sizes:
            frames.append(pl.read_ipc_stream(data[end:end + size]))
            end += size
        fields = _result_fields(meta, modified_at)
        fields["rejected_rows"] = frames[0]
        fields["forms"] = {form: df for (form, _), df in zip(meta["forms"], frames[1:], strict=True)}
        return _build(FileResult, fields)
    except Exception as e:  # noqa: BLE001 — a damaged entry (any shape, any error) is only a cache miss
        log.warning("Ignoring damaged cache entry %s: %s", path, e)
        return None


def load_meta(state: Path, key: str, modified_at: datetime | None = None) -> FileResult | None:
    """The light part of the cached FileResult of `cache/<key>.result`: source, year, unit, hash,
    file issues and sheets from the entry's header (checked), with empty forms and quarantine
    (the frames are not read). Enough for `select_submissions` to decide which file wins a form
    (the incremental build, docs/architecture.md "Incremental build"). None when missing or
    unreadable."""
    path = _entry_path(state, key)
    try:
        with open(path, "rb") as f:
            prefix = f.read(_PREFIX)
            header = f.read(_header_length(prefix))
        fields = _result_fields(_checked_header(key, prefix, header), modified_at)
        fields["forms"] = {}
        return _build(FileResult, fields)
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 — a damaged entry (any shape, any error) is only a cache miss
        log.warning("Ignoring damaged cache entry %s: %s", path, e)
        return None


def cached_keys(state: Path) -> set[str]:
    """Keys with an entry in `cache/` (whether it loads is for `load_result` to say)."""
    root = _cache_root(state)
    if not root.is_dir():
        return set()
    with os.scandir(root) as it:
        return {e.name[:-len(_ENTRY_SUFFIX)] for e in it
                if e.name.endswith(_ENTRY_SUFFIX) and not e.name.startswith(".") and e.is_file()}


def prune_cache(state: Path, keep: Iterable[str]) -> int:
    """Remove cache entries not in `keep`, entries of the former folder layout (`cache/<key>/`,
    never read now) and leftover temp files. Returns entries removed."""
    root = _cache_root(state)
    if not root.is_dir():
        return 0
    keep = set(keep)
    n = 0
    for p in root.iterdir():
        temp = p.name.startswith(".tmp-")
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif temp or (p.name.endswith(_ENTRY_SUFFIX) and p.name[:-len(_ENTRY_SUFFIX)] not in keep):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        else:
            continue
        n += 0 if temp else 1
    return n


