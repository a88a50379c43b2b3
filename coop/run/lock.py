"""One run at a time per warehouse, crash leftovers, and the test-only stage pause hook.

The lock is a file next to the warehouse (`data/warehouse/.coop.lock` for
`data/warehouse/coop.duckdb`) locked with `fcntl.flock`. The kernel releases a flock when
the process holding it dies, however it dies (SIGKILL included), so a killed run never
leaves a stale lock behind: the lock file may stay on disk, but nobody holds it. The file
carries who holds it (pid, host, start time, command) only so that a second run can say
who is in the way.

The lock is re-entrant inside one process: `coop run` takes it before starting the
Prefect flow and the flow takes it again (it may also be started by `coop serve`); the
inner `run_lock` is then a no-op.

Only the lock holder may call `cleanup_stale`, which removes the private build files and
temporary folders that a killed run left next to the warehouse.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from coop.context import REPORTS_DIR, STATE_DIR, WarehouseFiles

log = logging.getLogger(__name__)

#: Exit code of a run that found another run going (EX_TEMPFAIL: try again later).
EXIT_BUSY = 75

#: Stages at which a run can be paused by the test-only hook (and killed by tests); the flow
#: calls `stage_checkpoint` at the start of each. `rename` is inside publish, after the build
#: file is checkpointed, closed and synced, just before the atomic rename.
STAGES = ("reading", "loading", "models", "tests", "publish")
PUBLISH_RENAME = "rename"

PAUSE_ENV = "COOP_TEST_PAUSE_AT"
PAUSE_DIR_ENV = "COOP_TEST_PAUSE_DIR"
PAUSE_SECONDS_ENV = "COOP_TEST_PAUSE_SECONDS"


# --------------------------------------------------------------------------- file names
def lock_path(warehouse: Path) -> Path:
    """`data/warehouse/coop.duckdb` -> `data/warehouse/.coop.lock` (named by `WarehouseFiles`)."""
    return WarehouseFiles(warehouse).lock


def build_path(warehouse: Path, run_id: str) -> Path:
    """The private file a run builds in (named by `WarehouseFiles.build`)."""
    return WarehouseFiles(warehouse).build(run_id)


def temp_dir(warehouse: Path, run_id: str) -> Path:
    """A private scratch folder for one run (named by `WarehouseFiles.temp`)."""
    return WarehouseFiles(warehouse).temp(run_id)


def _leftover_patterns(warehouse: Path) -> list[str]:
    name = Path(warehouse).name
    return [
        f".{name}.build-*",  # build file, its .wal, its temp dir
        f".{name}.tmp-*",  # per-run scratch folders / cache staging
        f".{name}.publish-*",  # copy staged for publish
    ]


# --------------------------------------------------------------------------- the lock
@dataclass(frozen=True)
class LockHolder:
    pid: int | None
    host: str | None
    started_at: str | None
    command: str | None

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid else "another process"
        if self.host and self.host != os.uname().nodename:
            who += f" on {self.host}"
        from coop.settings import local_time  # the operators' zone, named (the file keeps ISO 8601)

        since = f", started {local_time(self.started_at)}" if self.started_at else ""
        cmd = f" ({self.command})" if self.command else ""
        return f"{who}{since}{cmd}"


class RunLockBusy(RuntimeError):
    """Another run holds the warehouse lock."""

    def __init__(self, warehouse: Path, holder: LockHolder):
        self.warehouse = Path(warehouse)
        self.holder = holder
        super().__init__(
            f"Another coop run is already working on {self.warehouse}: {holder.describe()}. "
            f"Nothing was changed. Try again later, or use --wait to wait for it "
            f"(lock file {lock_path(self.warehouse)})."
        )


class RunLockUnavailable(RuntimeError):
    """The lock file cannot be created next to the warehouse (a read-only mount, no write
    permission): no run can publish there. The message is for the operator, Vietnamese first."""

    def __init__(self, warehouse: Path, error: OSError):
        self.warehouse = Path(warehouse)
        self.error = error
        folder = self.warehouse.parent
        super().__init__(
            f"Không ghi được vào thư mục kho dữ liệu {folder} (ổ đĩa gắn chỉ đọc hoặc không có quyền ghi): "
            f"không tạo được tệp khóa {lock_path(self.warehouse)}; không có gì thay đổi — gắn lại ổ với quyền ghi "
            f"hoặc chọn --warehouse khác. (The warehouse folder is read-only or not writable: "
            f"{type(error).__name__}: {error.strerror or error}; nothing was changed.)"
        )


class _ChildRecord(TypedDict):
    pid: int
    starttime: int  # clock ticks since boot (/proc/<pid>/stat): tells a reused pid apart


class _LockRecord(TypedDict):
    """The lock file's JSON: who holds it, and (`record_children`) its child processes."""

    pid: int
    host: str
    started_at: str
    command: str | None
    children: NotRequired[list[_ChildRecord]]


_held: dict[str, int] = {}  # lock path -> re-entrancy depth in this process
_held_fd: dict[str, int] = {}  # lock path -> our open, flock'd descriptor
_held_info: dict[str, _LockRecord] = {}  # lock path -> the record we wrote
_previous: dict[str, dict[str, Any]] = {}  # lock path -> the record left by the previous holder (any JSON object)
_held_guard = threading.Lock()


def read_holder(warehouse: Path) -> LockHolder | None:
    """Who holds the lock now, or None when nobody does. Never blocks, never takes it."""
    path = lock_path(warehouse)
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            # Probe with a shared lock: succeeds only when no run holds it exclusively.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            return _parse_holder(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _parse_holder(path: Path) -> LockHolder:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        data = {}
    return LockHolder(
        pid=data.get("pid"), host=data.get("host"), started_at=data.get("started_at"), command=data.get("command")
    )


@contextmanager
def run_lock(warehouse: Path, wait: bool = False, poll_seconds: float = 1.0) -> Iterator[Path]:
    """Hold the one-run-at-a-time lock of `warehouse` for the duration of the block.

    When another process holds it: raise `RunLockBusy` at once, or with `wait=True` log who
    is in the way and block until it is released. Re-entrant within one process.
    Yields the lock file's path.
    """
    path = lock_path(warehouse)
    key = str(path.resolve())
    with _held_guard:
        if key in _held:
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield path
        finally:
            with _held_guard:
                _held[key] -= 1
        return

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:  # a read-only mount, no write permission: said in words, not a traceback
        raise RunLockUnavailable(warehouse, e) from None
    try:
        waited = False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = _parse_holder(path)
            for _ in range(20):  # the holder may be between taking the lock and writing who it is
                if holder.pid is not None:
                    break
                time.sleep(0.025)
                holder = _parse_holder(path)
            if not wait:
                raise RunLockBusy(warehouse, holder) from None
            log.warning("Waiting for the run already going on %s: %s", warehouse, holder.describe())
            while True:  # poll, so that a waiting run stays interruptible (Ctrl-C)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc2:
                    if exc2.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    time.sleep(poll_seconds)
            waited = True
        else:
            waited = False
        try:  # what the previous holder left (a killed run: its child processes to reap)
            prev = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8") or "{}")
        except (OSError, ValueError):
            prev = {}
        info: _LockRecord = {
            "pid": os.getpid(),
            "host": os.uname().nodename,
            "started_at": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else None,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        if waited:
            log.info("The other run finished; going on.")
        with _held_guard:
            _held[key] = 1
            _held_fd[key] = fd
            _held_info[key] = info
            _previous[key] = prev if isinstance(prev, dict) else {}
        try:
            yield path
        finally:
            with _held_guard:
                _held.pop(key, None)
                _held_fd.pop(key, None)
                _held_info.pop(key, None)
                _previous.pop(key, None)
            try:
                os.ftruncate(fd, 0)  # the file stays (deleting a flock'd file races); it says nobody
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holds_lock(warehouse: Path) -> bool:
    """True when this process holds the lock of `warehouse` (inside `run_lock`)."""
    return str(lock_path(warehouse).resolve()) in _held


# --------------------------------------------------------------------------- crash leftovers
def cleanup_stale(warehouse: Path) -> list[Path]:
    """Remove what killed runs left next to `warehouse`: build files (and their .wal),
    per-run scratch folders. Call only while holding `run_lock` (then no live run owns
    them). Never touches the published warehouse, the lock file or the reports.
    Returns the removed paths.
    """
    warehouse = Path(warehouse)
    if not holds_lock(warehouse):
        raise RuntimeError("cleanup_stale() must be called while holding run_lock()")
    reap_orphans(warehouse)
    folder = warehouse.parent
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    seen: set[Path] = set()
    for pattern in _leftover_patterns(warehouse):
        for p in sorted(folder.glob(pattern)):
            if p in seen or p == warehouse or p == lock_path(warehouse):
                continue
            seen.add(p)
            try:
                if p.is_dir() and not p.is_symlink():
                    import shutil  # here: only a leftover needs it (the quick check calls this every run)

                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed.append(p)
            except FileNotFoundError:
                pass
    # half-written temp files/folders of the state cache (coop.run.cache) and the run reports
    for sub in (STATE_DIR, REPORTS_DIR):
        root = folder / sub
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in list(dirnames) + filenames:
                if not (name.startswith(".tmp-") or (name.startswith(".") and ".tmp-" in name)):
                    continue
                p = Path(dirpath) / name
                try:
                    if p.is_dir() and not p.is_symlink():
                        import shutil

                        shutil.rmtree(p)
                        dirnames.remove(name)
                    else:
                        p.unlink()
                    removed.append(p)
                except FileNotFoundError:
                    pass
    if removed:
        log.info("Removed %d leftover file(s) of an interrupted run: %s", len(removed),
                 ", ".join(p.name for p in removed))
    return removed


# --------------------------------------------------------------------------- child processes
def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, starttime in clock ticks) of a live process, from /proc; None when gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()  # after "pid (comm) "
    try:
        return int(fields[1]), int(fields[19])  # ppid, starttime
    except (IndexError, ValueError):
        return None


def _children(pid: int) -> list[_ChildRecord]:
    out: list[_ChildRecord] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for name in entries:
        if not name.isdigit():
            continue
        st = _proc_stat(int(name))
        if st and st[0] == pid:
            out.append({"pid": int(name), "starttime": st[1]})
    return out


def record_children() -> None:
    """Note this process's child processes (e.g. Prefect's ephemeral API server) in the lock
    files it holds, so that if this run is killed, the next run can stop them
    (`reap_orphans`). Called at every stage boundary; cheap; Linux /proc only."""
    with _held_guard:
        held = [(k, _held_fd[k], _held_info[k]) for k in _held if k in _held_fd]
    if not held:
        return
    kids = _children(os.getpid())
    for _key, fd, info in held:
        if info.get("children") == kids:
            continue
        info["children"] = kids
        data = json.dumps(info).encode("utf-8")
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        except OSError:
            pass


def reap_orphans(warehouse: Path, grace_seconds: float = 5.0) -> list[int]:
    """Stop the child processes a killed previous holder recorded (only those still alive
    with the very same start time, so a reused pid is never touched). Lock holder only.
    Returns the pids signalled."""
    key = str(lock_path(warehouse).resolve())
    with _held_guard:
        prev = _previous.get(key) or {}
    targets = []
    for child in prev.get("children") or []:
        try:
            pid, start = int(child["pid"]), int(child["starttime"])
        except (KeyError, TypeError, ValueError):
            continue
        st = _proc_stat(pid)
        if st is not None and st[1] == start and pid != os.getpid():
            targets.append((pid, start))
    if not targets:
        return []
    for pid, _ in targets:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any((st := _proc_stat(p)) and st[1] == s for p, s in targets):
        time.sleep(0.1)
    for pid, start in targets:
        st = _proc_stat(pid)
        if st is not None and st[1] == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    log.info("Stopped %d process(es) left running by an interrupted run: %s",
             len(targets), ", ".join(str(p) for p, _ in targets))
    with _held_guard:
        if key in _previous:
            _previous[key] = {k: v for k, v in _previous[key].items() if k != "children"}
    return [p for p, _ in targets]


# --------------------------------------------------------------------------- test-only pause hook
def stage_checkpoint(stage: str, files: int | None = None) -> None:
    """Stage boundary hook: prints the stage's console line on stderr
    (`coop.outputs.run_report.stage_line`: 'Đang đọc 320 tệp… (reading 320 files…)', with
    the number of `files` where the stage has one; nothing for `rename`) and records this
    run's child processes in the lock file (`record_children`). Otherwise a no-op unless the
    test-only variable `COOP_TEST_PAUSE_AT` names this stage: then write the marker file
    `$COOP_TEST_PAUSE_DIR/<stage>` (holding the pid) and sleep (`COOP_TEST_PAUSE_SECONDS`,
    default 600) so that a test can kill the process at a known point. Call it at each of
    `STAGES` (and at discover, hashing, report for their console lines).
    """
    from coop.outputs.run_report import stage_line

    stage_line(stage, files)
    record_children()
    wanted = os.environ.get(PAUSE_ENV)
    if not wanted or wanted != stage:
        return
    marker_dir = Path(os.environ.get(PAUSE_DIR_ENV) or ".")
    marker_dir.mkdir(parents=True, exist_ok=True)
    tmp = marker_dir / f".{stage}.tmp"
    tmp.write_text(str(os.getpid()), encoding="utf-8")
    tmp.replace(marker_dir / stage)
    time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV) or 600))
