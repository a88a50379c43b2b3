"""Reading limits: every spreadsheet is checked before it is parsed, then parsed in a worker
process with a memory and a time limit, so one hostile or broken file is rejected alone and
the run goes on (docs/operations.md, "Reading limits").

- `precheck(path)` looks at the container only (no parse): the file size; for .xlsx/.xlsm/.ods
  (zip) the number of entries, the total uncompressed size and the compression ratio of each
  large entry; for .xlsx/.xlsm the number of sheets, the size of `sharedStrings.xml` and the
  declared used range `<dimension ref="A1:P120"/>` of each worksheet. Over a limit ->
  `ResourceLimit` (reason code `resource_limit`, a Vietnamese sentence with the figure).
- `read_sheets_limited(path)` = precheck, then `coop.ingest.read.read_sheets` in a worker process:
  address space limited (RLIMIT_AS) and a wall-time limit. A worker that aborts (a Rust
  `memory allocation of … bytes failed`, exit 134), runs out of memory or time is replaced;
  the file gets `ResourceLimit` or `IsolatedReadError` (`unreadable_file`). The worker is
  reused for many files (started once, ~0.5 s; replaced after `worker_files` files, after a
  crash, or when idle), so the cost per file is the pickling of its sheets (a few ms).
- `ingest_limited(path, reference, job)` = the same, but the worker also normalizes the sheets
  (`coop.ingest.normalize.ingest_sheets`) and answers with the file's result: reading and
  normalizing run in one worker process per core (`workers`, default: the cores), in parallel
  and outside the run process's interpreter lock; the Reference is sent to each worker once.
  An exception of the normalizing step is sent back as itself and raised in the caller.
- Every error raised here is a `coop.ingest.read.ReadError` with `.reason_code` and `.transient`:
  transient failures (time limit, killed worker, file not readable right now) must not be
  cached as the file's result; the others depend only on the file's bytes and the limits.

Limits are module constants, each overridable by the environment `COOP_READ_<NAME>`
(e.g. `COOP_READ_MEMORY_MB=4096`); `limits()` reads them at call time. `COOP_READ_ISOLATION=0`
reads in the calling process (pre-checks still apply): for debugging only.
"""

from __future__ import annotations

import atexit
import html
import logging
import os
import pickle
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from coop.ingest.read import ReadError
from coop.paths import PROJECT_ROOT

if TYPE_CHECKING:
    from collections.abc import Callable

    from coop.ingest.normalize import FileResult, IngestJob
    from coop.ingest.read import Sheet
    from coop.reference import Reference

log = logging.getLogger(__name__)

__all__ = ["Limits", "limits", "limits_key", "ResourceLimit", "IsolatedReadError", "precheck",
           "read_sheets_limited", "ingest_limited", "worker_count", "shutdown_workers", "DEFAULTS"]

# --------------------------------------------------------------------------- settings
#: name -> default. Sized so that every real district file passes by a wide margin (the
#: sample's 323 files: at most 26 kB, 14 entries, ratio 15:1, 106 rows / 1,500 cells a sheet,
#: 25 kB of shared strings, 5 sheets); 30,000 rows x 16 columns (1.5 MB) read in 2-4 s, ~280 MB.
DEFAULTS: dict[str, int | float] = {
    "max_file_mb": 100,            # any file, on disk
    "max_zip_entries": 10_000,     # .xlsx/.xlsm/.ods: entries in the zip
    "max_uncompressed_mb": 500,    # .xlsx/.xlsm/.ods: all entries together, uncompressed
    "max_compression_ratio": 100,  # .xlsx/.xlsm/.ods: uncompressed / compressed of an entry >= 1 MB
    "max_sheets": 200,             # .xlsx/.xlsm: sheets in the workbook
    "max_sheet_rows": 200_000,     # .xlsx/.xlsm: last row of a sheet's declared used range
    "max_sheet_cells": 5_000_000,  # .xlsx/.xlsm: rows (from row 1) x columns of the declared range
    "max_shared_strings_mb": 100,  # .xlsx/.xlsm: xl/sharedStrings.xml, uncompressed
    "memory_mb": 2048,             # worker address space (RLIMIT_AS); ~250 MB of it is the reader itself
    "time_s": 120,                 # wall time to read one file
    "workers": 0,                  # worker processes reading at once (0: one per core)
    "worker_files": 1000,          # files a worker reads before it is replaced
    "isolation": 1,                # 0 = read in the calling process (debugging only)
}
_LARGE_ENTRY = 1 << 20  # the compression ratio is checked on entries of at least 1 MB
_IDLE_S = 60.0  # a worker unused this long is retired (it exits by itself after 2x this)
_MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_file_mb: float
    max_zip_entries: int
    max_uncompressed_mb: float
    max_compression_ratio: float
    max_sheets: int
    max_sheet_rows: int
    max_sheet_cells: int
    max_shared_strings_mb: float
    memory_mb: int
    time_s: float
    workers: int
    worker_files: int
    isolation: int


def limits() -> Limits:
    """The limits in force: `DEFAULTS`, each overridden by `COOP_READ_<NAME>` when set."""
    values: dict[str, Any] = {}
    for f in fields(Limits):
        default = DEFAULTS[f.name]
        env = os.environ.get(f"COOP_READ_{f.name.upper()}")
        value: Any = default
        if env not in (None, ""):
            try:
                value = float(env)
            except ValueError:
                log.warning("Ignoring COOP_READ_%s=%r (not a number)", f.name.upper(), env)
        values[f.name] = int(value) if f.type in ("int", int) else float(value)
    return Limits(**values)


def limits_key(lim: Limits | None = None) -> str:
    """The limits that decide a file's result (part of the reader fingerprint)."""
    d = asdict(lim or limits())
    for k in ("workers", "worker_files", "isolation", "time_s"):
        d.pop(k)
    return ",".join(f"{k}={v}" for k, v in sorted(d.items()))


# --------------------------------------------------------------------------- errors
class IsolatedReadError(ReadError):
    """The file could not be read. `reason_code` is `unreadable_file` or `resource_limit`;
    `transient` = the same bytes may read fine next time (do not cache the result)."""

    reason_code = "unreadable_file"

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class ResourceLimit(IsolatedReadError):
    """The file is over one of the reading limits (its message names the figure)."""

    reason_code = "resource_limit"


def _n(v: float) -> str:
    """A number the Vietnamese way: 1.048.576; 2,5."""
    if float(v).is_integer():
        return f"{int(v):,}".replace(",", ".")
    return f"{v:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def _size(nbytes: float) -> str:
    if nbytes >= 1 << 30:
        return f"{_n(round(nbytes / (1 << 30), 1))} GB"
    if nbytes >= _MB:
        return f"{_n(round(nbytes / _MB, 1))} MB"
    return f"{_n(round(nbytes / 1024, 1))} kB"


_ADVICE = "; mở tệp, xoá các ô/dòng/cột thừa hoặc tách tệp rồi gửi lại"


def _limit(message: str, setting: str, *, transient: bool = False) -> ResourceLimit:
    return ResourceLimit(f"{message} (giới hạn đọc COOP_READ_{setting.upper()})", transient=transient)


# --------------------------------------------------------------------------- pre-checks
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\b[^>]*?\bref\s*=\s*[\"']([^\"']+)[\"']")
_CELL_REF = re.compile(r"^\$?([A-Za-z]{1,3})?\$?(\d+)?$")
_TAG = re.compile(r"<(?:\w+:)?(sheet|Relationship)\b([^>]*)>", re.S)
_ATTR = re.compile(r"([\w:]+)\s*=\s*[\"']([^\"']*)[\"']")


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n


def _parse_ref(ref: str) -> tuple[int, int] | None:
    """(last row, columns) of a range like 'A1:P120', 'B3', 'A:C', '1:5'; None if unreadable."""
    parts = ref.strip().split(":")
    if not 1 <= len(parts) <= 2:
        return None
    cells = [m for p in parts if (m := _CELL_REF.match(p.strip())) is not None]
    if len(cells) != len(parts):
        return None
    first, last = cells[0], cells[-1]
    row_last = int(last.group(2)) if last.group(2) else 1_048_576
    c1 = _col_number(first.group(1)) if first.group(1) else 1
    c2 = _col_number(last.group(1)) if last.group(1) else 16_384
    return row_last, abs(c2 - c1) + 1


def _sheet_names(zf: zipfile.ZipFile, names: set[str]) -> dict[str, str]:
    """Worksheet entry -> sheet name, from xl/workbook.xml and its relationships (best effort)."""
    out: dict[str, str] = {}
    try:
        wb = next((i for i in zf.infolist() if i.filename.lower() == "xl/workbook.xml"), None)
        rels = next((i for i in zf.infolist() if i.filename.lower() == "xl/_rels/workbook.xml.rels"), None)
        if wb is None or rels is None or wb.file_size > 4 * _MB or rels.file_size > 4 * _MB:
            return out
        targets: dict[str, str] = {}
        for kind, attrs in _TAG.findall(zf.read(rels).decode("utf-8", "replace")):
            a = dict(_ATTR.findall(attrs))
            if kind == "Relationship" and "Id" in a and "Target" in a:
                t = a["Target"].lstrip("/")
                targets[a["Id"]] = t if t.lower().startswith("xl/") else f"xl/{t}"
        for kind, attrs in _TAG.findall(zf.read(wb).decode("utf-8", "replace")):
            a = dict(_ATTR.findall(attrs))
            rid = next((v for k, v in a.items() if k.endswith(":id")), None)
            if kind == "sheet" and rid in targets and "name" in a:
                out[targets[rid].lower()] = html.unescape(a["name"])
    except Exception as e:  # noqa: BLE001 — names only make the message nicer
        log.debug("sheet names of a workbook: %s", e)
    return out


def _sheet_count(zf: zipfile.ZipFile, worksheets: list[zipfile.ZipInfo]) -> int:
    wb = next((i for i in zf.infolist() if i.filename.lower() == "xl/workbook.xml"), None)
    if wb is not None and wb.file_size <= 4 * _MB:
        try:
            return sum(1 for kind, _ in _TAG.findall(zf.read(wb).decode("utf-8", "replace")) if kind == "sheet")
        except Exception:  # noqa: BLE001 — a damaged workbook.xml: count the worksheet entries instead
            pass
    return len(worksheets)


def precheck(path: Path, lim: Limits | None = None) -> None:
    """Raise `ResourceLimit` when the file's container is over a limit. Never parses a sheet;
    a file that is not the zip its name says is left to the reader (its own message)."""
    lim = lim or limits()
    path = Path(path)
    size = path.stat().st_size
    if size > lim.max_file_mb * _MB:
        raise _limit(f"Tệp nặng {_size(size)}, vượt giới hạn {_n(lim.max_file_mb)} MB cho một tệp báo cáo"
                     + _ADVICE, "max_file_mb")
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".xlsm", ".ods"):
        return
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        return  # not a zip: the reader says what it is
    with zf:
        infos = zf.infolist()
        if len(infos) > lim.max_zip_entries:
            raise _limit(f"Tệp chứa {_n(len(infos))} thành phần nén, vượt giới hạn {_n(lim.max_zip_entries)}"
                         " (không giống một bảng tính bình thường)", "max_zip_entries")
        total = sum(i.file_size for i in infos)
        if total > lim.max_uncompressed_mb * _MB:
            raise _limit(f"Tệp giải nén ra {_size(total)} (từ {_size(size)}), vượt giới hạn "
                         f"{_n(lim.max_uncompressed_mb)} MB" + _ADVICE, "max_uncompressed_mb")
        for i in infos:
            if i.file_size >= _LARGE_ENTRY:
                ratio = i.file_size / max(i.compress_size, 1)
                if ratio > lim.max_compression_ratio:
                    raise _limit(f"Tệp nén bất thường: phần '{i.filename}' giải nén ra {_size(i.file_size)} từ "
                                 f"{_size(i.compress_size)} (tỉ lệ {_n(round(ratio))}:1), vượt giới hạn "
                                 f"{_n(lim.max_compression_ratio)}:1 — có thể là tệp 'bom nén'",
                                 "max_compression_ratio")
        if suffix == ".ods":
            return
        worksheets = [i for i in infos if i.filename.lower().startswith("xl/worksheets/")
                      and i.filename.lower().endswith(".xml") and "/_rels/" not in i.filename.lower()]
        n_sheets = _sheet_count(zf, worksheets)
        if n_sheets > lim.max_sheets:
            raise _limit(f"Tệp có {_n(n_sheets)} trang tính, vượt giới hạn {_n(lim.max_sheets)}" + _ADVICE,
                         "max_sheets")
        for i in infos:
            if i.filename.lower().endswith("sharedstrings.xml") and i.file_size > lim.max_shared_strings_mb * _MB:
                raise _limit(f"Phần chữ của tệp (sharedStrings.xml) nặng {_size(i.file_size)} khi giải nén, vượt giới "
                             f"hạn {_n(lim.max_shared_strings_mb)} MB — có ô chứa đoạn văn bản quá dài" + _ADVICE,
                             "max_shared_strings_mb")
        names: dict[str, str] | None = None
        for i in worksheets:
            try:
                with zf.open(i) as fh:
                    head = fh.read(64 * 1024)
            except Exception:  # noqa: BLE001 — a damaged entry: the reader reports it
                continue
            m = _DIMENSION.search(head)
            if not m:
                continue
            ref = m.group(1).decode("ascii", "replace")
            dims = _parse_ref(ref)
            if dims is None:
                continue
            rows, cols = dims
            if rows > lim.max_sheet_rows or rows * cols > lim.max_sheet_cells:
                if names is None:
                    names = _sheet_names(zf, {w.filename.lower() for w in worksheets})
                sheet = names.get(i.filename.lower(), i.filename)
                size_text = f"{_n(rows)} dòng × {_n(cols)} cột = {_n(rows * cols)} ô"
                what, setting = ((f"{size_text}, vượt giới hạn {_n(lim.max_sheet_rows)} dòng", "max_sheet_rows")
                                 if rows > lim.max_sheet_rows else
                                 (f"{size_text}, vượt giới hạn {_n(lim.max_sheet_cells)} ô", "max_sheet_cells"))
                raise _limit(f"Trang '{sheet}' khai báo vùng dữ liệu {ref}: {what}; thường do một ô thừa hoặc định "
                             "dạng ở rất xa (bấm Ctrl+End trong Excel để thấy ô cuối), xoá các dòng/cột thừa rồi "
                             "gửi lại", setting)


# --------------------------------------------------------------------------- the worker (child side)
_HEADER = struct.Struct("<Q")


def _read_exact_fd(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _send(fd: int, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    _write_all(fd, _HEADER.pack(len(data)) + data)


def _worker_main() -> None:
    """The worker: reads requests `(path, time_s)` on stdin, answers on the original stdout.
    Started by `_Worker`; exits on EOF, when idle for long, or by its limits."""
    out = os.dup(1)
    os.dup2(2, 1)  # a stray print must not corrupt the answers
    try:
        import resource

        mem = int(os.environ.get("COOP_READ__WORKER_AS", "0") or 0)
        if mem > 0:
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    except (ImportError, ValueError, OSError):
        resource = None  # type: ignore[assignment]
    import fastexcel  # noqa: F401  (loaded once, before the first file)

    from coop.ingest.normalize import ingest_sheets
    from coop.ingest.read import read_sheets

    reference: Any = None  # the Reference of the last job: sent once, kept for the next files
    idle = float(os.environ.get("COOP_READ__WORKER_IDLE", str(2 * _IDLE_S)))
    _send(out, ("ready", os.getpid()))
    while True:
        ready, _, _ = select.select([0], [], [], idle)
        if not ready:
            return  # unused for long: the parent starts a new one when needed
        head = _read_exact_fd(0, _HEADER.size)
        if head is None:
            return  # the parent is gone
        body = _read_exact_fd(0, _HEADER.unpack(head)[0])
        if body is None:
            return
        path, time_s, job, sent = pickle.loads(body)
        if sent is not None:
            reference = sent
        if resource is not None:  # a CPU-time backstop, should the parent die mid-read
            try:
                used = resource.getrusage(resource.RUSAGE_SELF)
                cpu = int(used.ru_utime + used.ru_stime) + int(time_s) + 10
                hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
                soft = cpu if hard == resource.RLIM_INFINITY else min(cpu, hard)
                resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
            except (ValueError, OSError):
                pass
        answer: tuple[str, object] | None
        try:
            sheets = read_sheets(Path(os.fsdecode(path)))
            if job is None:
                answer = ("ok", sheets)
            else:  # normalizing is not reading: its failure is reported as the exception it is
                try:
                    answer = ("ok", ingest_sheets(sheets, job, reference))
                except (MemoryError, KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as e:  # noqa: BLE001 — the parent's file boundary handles it
                    answer = ("raise", _picklable(e))
            del sheets
        except MemoryError:
            answer = ("memory", "")
        except ReadError as e:
            answer = ("read", str(e))
        except OSError as e:
            answer = ("os", f"{type(e).__name__}: {e.strerror or e}")
        except (KeyboardInterrupt, SystemExit):
            return
        except BaseException as e:  # noqa: BLE001 — a reader panic is a BaseException
            answer = ("error", f"{type(e).__name__}: {str(e)[:1000]}")
        try:
            _send(out, answer)
        except MemoryError:
            answer = None
            _send(out, ("memory", ""))
        answer = None


def _worker_process() -> None:
    """The worker process's entry point: `_worker_main`, then out at once. After EOF nothing is
    left to do, and the interpreter's own exit (collections over polars, pandera, the Reference
    and the parse caches, then module teardown) took ≈ 0.6 s per worker at the end of every run,
    with the run's summary printed and the parent waiting (docs/performance.md). An exception
    still ends the process the usual way (its traceback on stderr, exit code 1)."""
    _worker_main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def _picklable(e: BaseException) -> BaseException:
    """`e` itself when it survives pickling, else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(e, protocol=pickle.HIGHEST_PROTOCOL))
        return e
    except Exception:  # noqa: BLE001 — any exception type may refuse pickling
        return RuntimeError(f"{type(e).__name__}: {str(e)[:1000]}")


# --------------------------------------------------------------------------- the worker (parent side)
class _Died(Exception):
    pass


class _TimedOut(Exception):
    pass


class _Worker:
    def __init__(self, lim: Limits):
        self.memory_mb = lim.memory_mb
        self.reference: object = None  # the Reference this worker holds (sent with its first job)
        self.tasks = 0
        self.last_used = time.monotonic()
        self.err = tempfile.TemporaryFile(prefix="coop-reader-")
        env = dict(os.environ)
        env.update({
            "ARROW_DEFAULT_MEMORY_POOL": "system",  # jemalloc/mimalloc reserve ~1 GB of address space
            "MALLOC_ARENA_MAX": "2",
            "RUST_BACKTRACE": "0",  # a panic's message, not pages of frames
            "COOP_READ__WORKER_AS": str(int(lim.memory_mb) * _MB) if lim.memory_mb > 0 else "0",
            "COOP_READ__WORKER_IDLE": str(2 * _IDLE_S),
        })
        root = str(PROJECT_ROOT)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import coop.ingest.isolation as m; m._worker_process()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, env=env, cwd=root,
            bufsize=0, close_fds=True)
        try:
            hello = self._receive(time.monotonic() + max(60.0, lim.time_s))
        except (_Died, _TimedOut) as e:
            tail = self.stderr_tail()
            self.close()
            raise RuntimeError(f"the reader worker did not start ({type(e).__name__}): {tail[-500:]}") from None
        if not (isinstance(hello, tuple) and hello and hello[0] == "ready"):
            self.close()
            raise RuntimeError(f"the reader worker said {hello!r} instead of ready")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @staticmethod
    def _fd(pipe: IO[bytes] | None) -> int:
        if pipe is None:  # never: stdin and stdout are PIPEs; a worker without them is as good as dead
            raise _Died()
        return pipe.fileno()

    def _receive(self, deadline: float) -> Any:  # Any: what pickle.loads makes of the worker's reply
        fd = self._fd(self.proc.stdout)

        def exact(n: int) -> bytes:
            buf = bytearray()
            while len(buf) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _TimedOut()
                ready, _, _ = select.select([fd], [], [], left)
                if not ready:
                    raise _TimedOut()
                chunk = os.read(fd, min(n - len(buf), 1 << 20))
                if not chunk:
                    raise _Died()
                buf += chunk
            return bytes(buf)

        return pickle.loads(exact(_HEADER.unpack(exact(_HEADER.size))[0]))

    def call(self, path: Path, lim: Limits, job: IngestJob | None = None, reference: Reference | None = None) -> Any:
        self.tasks += 1
        self.last_used = time.monotonic()
        sent = reference if job is not None and reference is not self.reference else None
        body = pickle.dumps((os.fsencode(path), lim.time_s, job, sent), protocol=pickle.HIGHEST_PROTOCOL)
        if sent is not None:
            self.reference = sent
        try:
            _write_all(self._fd(self.proc.stdin), _HEADER.pack(len(body)) + body)
            answer = self._receive(time.monotonic() + lim.time_s)
        except _TimedOut:
            self.kill()
            raise _limit(f"Đọc tệp quá thời gian cho phép ({_n(lim.time_s)} giây); tệp quá lớn hoặc bất thường"
                         + _ADVICE, "time_s", transient=True) from None
        except (_Died, BrokenPipeError, ConnectionResetError, OSError):
            raise self._crash(lim, path) from None
        finally:
            self.last_used = time.monotonic()
        return answer

    def stderr_tail(self, n: int = 4000) -> str:
        try:
            self.err.flush()
            size = self.err.seek(0, os.SEEK_END)
            self.err.seek(max(0, size - n))
            return self.err.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _crash(self, lim: Limits, path: Path) -> IsolatedReadError:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        tail = self.stderr_tail()
        log.warning("The reader worker stopped (exit %s) reading %s: %s", code, path, tail.strip()[-1000:])
        m = re.search(r"memory allocation of (\d+) bytes failed", tail)
        if m or "MemoryError" in tail:
            need = f" (cần cấp thêm {_size(int(m.group(1)))})" if m else ""
            return _limit(f"Đọc tệp cần nhiều bộ nhớ hơn giới hạn {_n(lim.memory_mb)} MB của bộ đọc{need}" + _ADVICE,
                          "memory_mb")
        if code is not None and code < 0:
            sig = -code
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            if sig == signal.SIGKILL:  # the OOM killer, or an operator: try again next run
                return _limit("Bộ đọc bị hệ điều hành dừng (SIGKILL) khi đọc tệp, thường do máy hết bộ nhớ",
                              "memory_mb", transient=True)
            if sig == getattr(signal, "SIGXCPU", -1):
                return _limit(f"Đọc tệp quá thời gian cho phép ({_n(lim.time_s)} giây)", "time_s", transient=True)
            return IsolatedReadError(f"Bộ đọc bảng tính dừng đột ngột khi đọc tệp (tín hiệu {name}); tệp hỏng "
                                     "hoặc có nội dung bất thường")
        return IsolatedReadError(f"Bộ đọc bảng tính dừng đột ngột khi đọc tệp (mã thoát {code}); tệp hỏng hoặc có "
                                 "nội dung bất thường")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        """Ask the worker to stop (EOF), then make sure it has."""
        self.hang_up()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
        try:
            self.err.close()
        except OSError:
            pass

    def hang_up(self) -> None:
        """Close the worker's pipes: at EOF it exits (`close` waits for it)."""
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass


class _Pool:
    """Worker processes shared by the threads of one process (Prefect runs batches in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy = 0
        self._free = threading.Condition(self._lock)

    def _take(self, lim: Limits) -> _Worker | None:
        with self._free:
            while self._busy >= worker_count(lim):
                self._free.wait()
            self._busy += 1
            now = time.monotonic()
            while self._idle:
                w = self._idle.pop()
                if w.alive and w.memory_mb == lim.memory_mb and now - w.last_used < _IDLE_S:
                    return w
                w.close()
            return None

    def _give_back(self, w: _Worker | None, lim: Limits) -> None:
        retire = w is not None and (not w.alive or w.tasks >= max(1, lim.worker_files))
        if retire and w is not None:
            w.close()
        with self._free:
            if w is not None and not retire:
                self._idle.append(w)
            self._busy -= 1
            self._free.notify()

    def run(self, path: Path, lim: Limits, job: IngestJob | None = None, reference: Reference | None = None) -> Any:
        w = self._take(lim)
        try:
            if w is None:
                w = _Worker(lim)
            return w.call(path, lim, job, reference)
        finally:
            self._give_back(w, lim)

    def shutdown(self) -> None:
        with self._free:
            idle, self._idle = self._idle, []
        for w in idle:  # every worker told first: they exit side by side, not one after the other
            w.hang_up()
        for w in idle:
            w.close()


_POOL = _Pool()
atexit.register(_POOL.shutdown)


def shutdown_workers() -> None:
    """Stop the idle reader workers now (they also stop on their own when unused)."""
    _POOL.shutdown()


# --------------------------------------------------------------------------- the entry points
def worker_count(lim: Limits) -> int:
    """Worker processes reading at once: `workers`, or one per core when 0 (the default, as
    many as the flow's reading threads: each thread's file is read and normalized in its own
    process, so the cores work in parallel and the parent only waits and stores)."""
    return max(1, lim.workers if lim.workers > 0 else (os.cpu_count() or 1))


def read_sheets_limited(path: Path, lim: Limits | None = None) -> list[Sheet]:
    """`coop.ingest.read.read_sheets(path)` under the reading limits (see the module doc). Raises
    `ResourceLimit` / `IsolatedReadError` / `ReadError`; never anything else for a bad file."""
    from coop.ingest.read import read_sheets

    sheets: list[Sheet] = _limited(Path(path), lim or limits(), None, None, lambda p: read_sheets(p))
    return sheets


def ingest_limited(path: Path, reference: Reference, job: IngestJob, lim: Limits | None = None) -> FileResult:
    """`read_sheets` then `coop.ingest.normalize.ingest_sheets` under the reading limits, both
    in the worker process (the Reference is sent to a worker once). Raises what
    `read_sheets_limited` raises, and re-raises an exception of the normalizing step itself
    (the caller's file boundary turns it into the file's issue, as when run here)."""
    from coop.ingest.normalize import ingest_sheets
    from coop.ingest.read import read_sheets

    res: FileResult = _limited(Path(path), lim or limits(), job, reference,
                               lambda p: ingest_sheets(read_sheets(p), job, reference))
    return res


def _limited(path: Path, lim: Limits, job: IngestJob | None, reference: Reference | None,
             here: Callable[[Path], Any]) -> Any:
    """Pre-checks, then the worker's answer to (path, job) — or `here(path)` in this process
    when isolation is off or no worker can start."""
    try:
        precheck(path, lim)
    except OSError as e:
        raise IsolatedReadError(f"Không mở được tệp ({type(e).__name__}: {e.strerror or e})", transient=True) from None
    if not lim.isolation:
        try:
            return here(path)
        except MemoryError:
            raise _limit("Đọc tệp cần quá nhiều bộ nhớ", "memory_mb", transient=True) from None
    try:
        answer = _POOL.run(path, lim, job, reference)
    except RuntimeError as e:  # no worker could be started: read here rather than not at all
        log.warning("Reading %s in the main process: %s", path.name, e)
        return here(path)
    kind = answer[0] if isinstance(answer, tuple) and answer else None
    if kind == "ok":
        return answer[1]  # the worker's result, unpickled
    if kind == "raise":
        raise answer[1]
    if kind == "memory":
        raise _limit(f"Đọc tệp cần nhiều bộ nhớ hơn giới hạn {_n(lim.memory_mb)} MB của bộ đọc" + _ADVICE, "memory_mb")
    if kind == "read":
        text = str(answer[1])
        if "(os error " in text or "[Errno " in text:  # an I/O error under the reader: may not repeat
            first = (text.splitlines() or [""])[0]
            raise IsolatedReadError(f"Không đọc được tệp lúc này (lỗi vào/ra của hệ điều hành: {first})",
                                    transient=True)
        raise ReadError(text)
    if kind == "os":
        raise IsolatedReadError(f"Không mở được tệp ({answer[1]})", transient=True)
    raise IsolatedReadError(f"Bộ đọc bảng tính gặp lỗi ({answer[1] if len(answer) > 1 else answer!r})")


if __name__ == "__main__":  # pragma: no cover — `python -m coop.ingest.isolation` is a worker too
    _worker_process()
